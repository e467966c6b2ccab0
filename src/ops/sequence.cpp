// Sequence ops: SequenceEmpty, SequenceConstruct, SequenceAt, SequenceInsert, SequenceErase, SequenceLength,
// SplitToSequence, ConcatFromSequence. A sequence is a rank-0 TensorData of dtype Sequence holding tensors of
// one dtype (TensorData::sequence); ops build new sequences and share the element tensors (values are
// immutable).
#include <algorithm>

#include "ops/graph_eval.h"
#include "ops/sequence_util.h"
#include "ops/util.h"

namespace kiln::ops {

std::shared_ptr<const ElementType> element_type(DType dtype, std::optional<Shape> shape) {
  auto e = std::make_shared<ElementType>();
  e->dtype = dtype;
  e->shape = std::move(shape);
  return e;
}

void set_container_out(InferContext& ctx, size_t k, DType dtype, std::shared_ptr<const ElementType> element) {
  set_out(ctx, k, dtype, Shape{});
  if (k < ctx.out.size()) ctx.out[k].element = std::move(element);
}

// The element type of the sequence operand k as inference knows it: declared, or from its value.
std::shared_ptr<const ElementType> element_of(const InferContext& ctx, size_t k) {
  const InputInfo& in = ctx.input(k);
  if (in.element) return in.element;
  if (in.value && in.value->dtype() == DType::Sequence) {
    const std::vector<TensorData>& items = in.value->elements();
    std::optional<Shape> shape;
    if (!items.empty()) shape = make_shape(items[0].dims());
    for (const TensorData& item : items) shape = merge_shapes(shape, make_shape(item.dims()));
    return element_type(in.value->element_dtype(), shape);
  }
  return nullptr;
}

namespace {

// The sequence operand k (inference: its dtype must be Sequence when known).
void check_sequence(const InferContext& ctx, size_t k) {
  const DType t = ctx.input(k).dtype;
  if (t != DType::Undefined && t != DType::Sequence)
    ctx.fail("input " + std::to_string(k) + " must be a sequence, not " + dtype_name(t));
}
const TensorData& sequence_input(const KernelContext& ctx, size_t k) {
  const TensorData& s = ctx.input(k);
  if (s.dtype() != DType::Sequence)
    ctx.fail("input " + std::to_string(k) + " must be a sequence, not " + dtype_name(s.dtype()));
  return s;
}

// A tensor to put in a sequence: not a container, and of the sequence's element dtype when that is known.
void check_element(const KernelContext& ctx, const TensorData& t, DType element_dtype) {
  if (dtype_is_container(t.dtype()))
    ctx.fail(std::string("sequences hold tensors, not a ") + dtype_name(t.dtype()));
  if (element_dtype != DType::Undefined && t.dtype() != element_dtype)
    ctx.fail(std::string("cannot put a ") + dtype_name(t.dtype()) + " tensor in a sequence of " +
             dtype_name(element_dtype));
}

// The position operand k (a one-element int32/int64 tensor) checked against [-n, n + extra).
int64_t position(const KernelContext& ctx, size_t k, int64_t n, int64_t extra) {
  const TensorData& p = ctx.input(k);
  if ((p.dtype() != DType::Int64 && p.dtype() != DType::Int32) || p.numel() != 1)
    ctx.fail("position must be a one-element int32 or int64 tensor, got " +
             describe_tensor(p.dtype(), p.dims()));
  const int64_t pos = p.as_int64(0);
  if (pos < -n || pos >= n + extra)
    ctx.fail("position " + std::to_string(pos) + " is out of range for a sequence of " + std::to_string(n) +
             " tensors");
  return pos < 0 ? pos + n : pos;
}

// ------------------------------------------------------------------------------------- build and edit
DType empty_dtype(const Node& n) {
  return static_cast<DType>(n.attrs.get_int("dtype", static_cast<int64_t>(DType::Float)));
}

void infer_empty(InferContext& ctx) {
  const DType t = empty_dtype(ctx.node);
  if (static_cast<int64_t>(t) <= 0 || t > DType::BFloat16)
    ctx.fail("dtype " + std::to_string(static_cast<int64_t>(t)) + " is not a tensor type");
  set_container_out(ctx, 0, DType::Sequence, element_type(t, std::nullopt));
}
void empty_kernel(KernelContext& ctx) {
  ctx.out[0] = TensorData::sequence(empty_dtype(ctx.node), {});
}
KILN_REGISTER_OP({.op = "SequenceEmpty",
                  .since_opset = 11,
                  .min_inputs = 0,
                  .max_inputs = 0,
                  .infer = infer_empty,
                  .reference = empty_kernel});

void infer_construct(InferContext& ctx) {
  std::optional<Shape> shape = in_shape(ctx, 0);
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    if (ctx.input(k).dtype != ctx.input(0).dtype)
      ctx.fail("input " + std::to_string(k) + " is " + dtype_name(ctx.input(k).dtype) + " but input 0 is " +
               dtype_name(ctx.input(0).dtype));
    shape = merge_shapes(shape, in_shape(ctx, k));
  }
  set_container_out(ctx, 0, DType::Sequence, element_type(ctx.input(0).dtype, shape));
}
void construct_kernel(KernelContext& ctx) {
  std::vector<TensorData> items;
  for (size_t k = 0; k < ctx.in.size(); ++k) {
    check_element(ctx, ctx.input(k), ctx.input(0).dtype());
    items.push_back(ctx.input(k));
  }
  ctx.out[0] = TensorData::sequence(ctx.input(0).dtype(), std::move(items));
}
KILN_REGISTER_OP({.op = "SequenceConstruct",
                  .since_opset = 11,
                  .max_inputs = kVariadic,
                  .infer = infer_construct,
                  .reference = construct_kernel});

void infer_insert(InferContext& ctx) {
  check_sequence(ctx, 0);
  std::shared_ptr<const ElementType> e = element_of(ctx, 0);
  const DType t = ctx.input(1).dtype;
  if (e && e->dtype != DType::Undefined && t != DType::Undefined && e->dtype != t)
    ctx.fail(std::string("cannot insert a ") + dtype_name(t) + " tensor in a sequence of " +
             dtype_name(e->dtype));
  set_container_out(ctx, 0, DType::Sequence,
                    element_type(t != DType::Undefined ? t
                                 : e                   ? e->dtype
                                                       : t,
                                 e ? merge_shapes(e->shape, in_shape(ctx, 1)) : std::nullopt));
}
void insert_kernel(KernelContext& ctx) {
  const TensorData& s = sequence_input(ctx, 0);
  const TensorData& x = ctx.input(1);
  check_element(ctx, x, s.element_dtype());
  std::vector<TensorData> items = s.elements();
  const auto n = static_cast<int64_t>(items.size());
  const int64_t at = ctx.has_input(2) ? position(ctx, 2, n, 1) : n;
  items.insert(items.begin() + at, x);
  ctx.out[0] = TensorData::sequence(x.dtype(), std::move(items));
}
KILN_REGISTER_OP({.op = "SequenceInsert",
                  .since_opset = 11,
                  .min_inputs = 2,
                  .max_inputs = 3,
                  .infer = infer_insert,
                  .reference = insert_kernel});

void infer_erase(InferContext& ctx) {
  check_sequence(ctx, 0);
  set_container_out(ctx, 0, DType::Sequence, element_of(ctx, 0));
}
void erase_kernel(KernelContext& ctx) {
  const TensorData& s = sequence_input(ctx, 0);
  std::vector<TensorData> items = s.elements();
  const auto n = static_cast<int64_t>(items.size());
  if (n == 0) ctx.fail("cannot erase from an empty sequence");
  const int64_t at = ctx.has_input(1) ? position(ctx, 1, n, 0) : n - 1;
  items.erase(items.begin() + at);
  ctx.out[0] = TensorData::sequence(s.element_dtype(), std::move(items));
}
KILN_REGISTER_OP({.op = "SequenceErase",
                  .since_opset = 11,
                  .min_inputs = 1,
                  .max_inputs = 2,
                  .infer = infer_erase,
                  .reference = erase_kernel});

// ------------------------------------------------------------------------------------------ read
void infer_at(InferContext& ctx) {
  check_sequence(ctx, 0);
  if (const TensorData* s = ctx.value(0);
      s && s->dtype() == DType::Sequence && ctx.value(1) && ctx.value(1)->numel() == 1) {
    const auto n = static_cast<int64_t>(s->elements().size());
    int64_t pos = ctx.value(1)->as_int64(0);
    if (pos < -n || pos >= n)
      ctx.fail("position " + std::to_string(pos) + " is out of range for a sequence of " + std::to_string(n) +
               " tensors");
    const TensorData& item = s->elements()[static_cast<size_t>(pos < 0 ? pos + n : pos)];
    set_out(ctx, 0, item.dtype(), make_shape(item.dims()));
    return;
  }
  std::shared_ptr<const ElementType> e = element_of(ctx, 0);
  set_out(ctx, 0, e ? e->dtype : DType::Undefined, e ? e->shape : std::nullopt);
}
void at_kernel(KernelContext& ctx) {
  const TensorData& s = sequence_input(ctx, 0);
  ctx.out[0] =
      s.elements()[static_cast<size_t>(position(ctx, 1, static_cast<int64_t>(s.elements().size()), 0))];
}
KILN_REGISTER_OP({.op = "SequenceAt",
                  .since_opset = 11,
                  .min_inputs = 2,
                  .max_inputs = 2,
                  .infer = infer_at,
                  .reference = at_kernel});

void infer_length(InferContext& ctx) {
  check_sequence(ctx, 0);
  set_out(ctx, 0, DType::Int64, Shape{});
}
void length_kernel(KernelContext& ctx) {
  ctx.out[0] = TensorData::scalar_int64(static_cast<int64_t>(sequence_input(ctx, 0).elements().size()));
}
KILN_REGISTER_OP(
    {.op = "SequenceLength", .since_opset = 11, .infer = infer_length, .reference = length_kernel});

// ------------------------------------------------------------------------------ split and concatenate
void infer_split(InferContext& ctx) {
  set_container_out(ctx, 0, DType::Sequence, element_type(ctx.input(0).dtype, std::nullopt));
}

// SplitToSequence(input, split?): pieces along `axis` of the lengths in split (a 1-D list), of split's size
// each (a scalar; the last piece takes the rest), or of 1 (no split: then keepdims=0 drops the axis).
void split_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.dtype() == DType::String || dtype_is_container(x.dtype())) unsupported(ctx, x.dtype());
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), x.rank());
  const int64_t dim = x.dims()[static_cast<size_t>(axis)];
  std::vector<int64_t> lengths;
  const bool keep = !ctx.has_input(1) && ctx.node.attrs.get_int("keepdims", 1) == 0;
  if (!ctx.has_input(1)) {
    lengths.assign(static_cast<size_t>(dim), 1);
  } else if (const TensorData& s = ctx.input(1); s.rank() == 0) {
    const int64_t each = s.as_int64(0);
    if (each <= 0) ctx.fail("split " + std::to_string(each) + " must be positive");
    for (int64_t start = 0; start < dim; start += each) lengths.push_back(std::min(each, dim - start));
  } else {
    if (s.rank() != 1) ctx.fail("split must be a scalar or a 1-D tensor");
    lengths = s.to_int64_vector();
    int64_t sum = 0;
    for (int64_t l : lengths) {
      if (l < 0) ctx.fail("split has a negative length " + std::to_string(l));
      sum += l;
      if (sum > dim) break;
    }
    if (sum != dim) ctx.fail("split lengths do not add up to the axis size " + std::to_string(dim));
  }
  const size_t es = element_size(ctx, x);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dims()[static_cast<size_t>(d)];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dims()[static_cast<size_t>(d)];
  std::vector<TensorData> items;
  int64_t start = 0;
  for (int64_t len : lengths) {
    std::vector<int64_t> dims = x.dims();
    dims[static_cast<size_t>(axis)] = len;
    TensorData piece(x.dtype(), dims);
    const size_t row = static_cast<size_t>(len * inner) * es;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<char*>(piece.raw()) + static_cast<size_t>(o) * row,
                  static_cast<const char*>(x.raw()) +
                      (static_cast<size_t>(o * dim + start)) * static_cast<size_t>(inner) * es,
                  row);
    if (keep) dims.erase(dims.begin() + axis);
    items.push_back(piece.reshaped(dims));
    start += len;
  }
  ctx.out[0] = TensorData::sequence(x.dtype(), std::move(items));
}
KILN_REGISTER_OP({.op = "SplitToSequence",
                  .since_opset = 11,
                  .min_inputs = 1,
                  .max_inputs = 2,
                  .infer = infer_split,
                  .reference = split_kernel});

void infer_concat(InferContext& ctx) {
  check_sequence(ctx, 0);
  std::shared_ptr<const ElementType> e = element_of(ctx, 0);
  set_out(ctx, 0, e ? e->dtype : DType::Undefined, std::nullopt);
}

// ConcatFromSequence: the tensors joined along `axis`, or stacked along a new axis `axis` when new_axis=1.
void concat_kernel(KernelContext& ctx) {
  const TensorData& s = sequence_input(ctx, 0);
  const std::vector<TensorData>& items = s.elements();
  if (items.empty()) ctx.fail("cannot concatenate an empty sequence");
  const bool new_axis = ctx.node.attrs.get_int("new_axis", 0) != 0;
  const std::vector<int64_t>& first = items[0].dims();
  const auto rank = static_cast<int64_t>(first.size());
  const int64_t axis = normalize_axis(ctx, ctx.node.attrs.get_int("axis", 0), rank + (new_axis ? 1 : 0));
  if (!new_axis && rank == 0) ctx.fail("cannot concatenate scalars without new_axis=1");
  int64_t total = 0;
  for (const TensorData& t : items) {
    bool same = t.dtype() == items[0].dtype() && t.rank() == rank;
    for (int64_t d = 0; same && d < rank; ++d)
      same =
          d == axis && !new_axis ? true : t.dims()[static_cast<size_t>(d)] == first[static_cast<size_t>(d)];
    if (!same)
      ctx.fail("cannot join " + describe_tensor(t.dtype(), t.dims()) + " with " +
               describe_tensor(items[0].dtype(), first));
    total += new_axis ? 1 : t.dims()[static_cast<size_t>(axis)];
  }
  std::vector<int64_t> dims = first;
  if (new_axis)
    dims.insert(dims.begin() + axis, total);
  else
    dims[static_cast<size_t>(axis)] = total;
  TensorData out(items[0].dtype(), dims);
  const size_t es = element_size(ctx, out);
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
  const size_t out_row = static_cast<size_t>(out.numel() / std::max<int64_t>(outer, 1)) * es;
  size_t offset = 0;  // bytes into each output row written so far
  for (const TensorData& t : items) {
    const size_t row = static_cast<size_t>(t.numel() / std::max<int64_t>(outer, 1)) * es;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(static_cast<char*>(out.raw()) + static_cast<size_t>(o) * out_row + offset,
                  static_cast<const char*>(t.raw()) + static_cast<size_t>(o) * row, row);
    offset += row;
  }
  ctx.out[0] = out;
}
KILN_REGISTER_OP(
    {.op = "ConcatFromSequence", .since_opset = 11, .infer = infer_concat, .reference = concat_kernel});

}  // namespace
}  // namespace kiln::ops
