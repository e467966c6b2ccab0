#include "ops/util.h"

#include <algorithm>

namespace kiln::ops {

std::optional<Shape> in_shape(const InferContext& ctx, size_t k) {
  if (!ctx.has_input(k)) return std::nullopt;
  if (ctx.in[k].shape) return ctx.in[k].shape;
  if (ctx.in[k].value) return make_shape(ctx.in[k].value->dims());
  return std::nullopt;
}

std::optional<Shape> broadcast_shapes(const InferContext& ctx, const std::vector<std::optional<Shape>>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) {
    if (!s) return std::nullopt;
    rank = std::max(rank, s->size());
  }
  Shape out(rank, Dim(1));
  for (const auto& s : shapes) {
    const size_t off = rank - s->size();
    for (size_t k = 0; k < s->size(); ++k) {
      Dim& o = out[off + k];
      const Dim& d = (*s)[k];
      if (d.is_static() && d.value == 1) continue;
      if (o.is_static() && o.value == 1) { o = d; continue; }
      if (o.is_static() && d.is_static()) {
        if (o.value != d.value)
          ctx.fail("cannot broadcast shapes: dimension " + std::to_string(d.value) + " vs " +
                   std::to_string(o.value) + " (shapes " + [&] {
                     std::string all;
                     for (const auto& x : shapes) all += (all.empty() ? "" : ", ") + to_string(*x);
                     return all;
                   }() + ")");
        continue;
      }
      if (d.is_static()) { o = d; continue; }  // symbol or unknown meets a static size > 1
      if (o.is_static()) continue;
      if (o == d) continue;  // same symbol
      o = Dim();             // two different unknowns: the size isn't known here
    }
  }
  return out;
}

std::vector<int64_t> broadcast_dims(const KernelContext& ctx, const std::vector<std::vector<int64_t>>& dims) {
  size_t rank = 0;
  for (const auto& d : dims) rank = std::max(rank, d.size());
  std::vector<int64_t> out(rank, 1);
  for (const auto& d : dims) {
    const size_t off = rank - d.size();
    for (size_t k = 0; k < d.size(); ++k) {
      int64_t& o = out[off + k];
      if (d[k] == 1) continue;
      if (o != 1 && o != d[k])
        ctx.fail("cannot broadcast dimension " + std::to_string(d[k]) + " against " + std::to_string(o));
      o = d[k];
    }
  }
  return out;
}

int64_t numel(const std::vector<int64_t>& dims) {
  auto n = checked_numel(dims);
  if (!n) throw Error("shape " + to_string(make_shape(dims)) + " has an element count that overflows 64 bits");
  return *n;
}

bool static_size_fits(DType dtype, const Shape& shape) {
  std::vector<int64_t> known;
  for (const Dim& d : shape)
    if (d.is_static()) known.push_back(d.value);
  return checked_nbytes(dtype, known).has_value();
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int64_t k = static_cast<int64_t>(dims.size()) - 2; k >= 0; --k) s[k] = s[k + 1] * dims[k + 1];
  return s;
}

std::vector<int64_t> broadcast_strides(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& out_dims) {
  std::vector<int64_t> in_strides = strides_of(in_dims);
  std::vector<int64_t> s(out_dims.size(), 0);
  const size_t off = out_dims.size() - in_dims.size();
  for (size_t k = 0; k < in_dims.size(); ++k) s[off + k] = in_dims[k] == 1 ? 0 : in_strides[k];
  return s;
}

Shape dims_to_shape(const std::vector<int64_t>& dims) {
  Shape s;
  for (int64_t d : dims) s.push_back(d < 0 ? Dim() : Dim(d));
  return s;
}

size_t element_size(const KernelContext& ctx, const TensorData& t) {
  size_t n = dtype_size(t.dtype());
  if (n == 0) unsupported(ctx, t.dtype());
  return n;
}

std::optional<std::vector<int64_t>> ints_arg(const InferContext& ctx, size_t k, const std::string& attr,
                                             const std::vector<int64_t>& def) {
  if (ctx.has_input(k)) {
    const TensorData* v = ctx.value(k);
    if (!v) return std::nullopt;
    return v->to_int64_vector();
  }
  return ctx.node.attrs.get_ints(attr, def);
}

std::vector<int64_t> ints_arg(const KernelContext& ctx, size_t k, const std::string& attr,
                              const std::vector<int64_t>& def) {
  if (ctx.has_input(k)) return ctx.input(k).to_int64_vector();
  return ctx.node.attrs.get_ints(attr, def);
}

std::optional<int64_t> known_length(const InferContext& ctx, size_t k) {
  if (!ctx.has_input(k)) return std::nullopt;
  if (ctx.value(k)) return ctx.value(k)->numel();
  auto s = in_shape(ctx, k);
  if (s && s->size() == 1 && (*s)[0].is_static()) return (*s)[0].value;
  return std::nullopt;
}

std::optional<Shape> shape_of_known_rank(const InferContext& ctx, size_t k) {
  auto n = known_length(ctx, k);
  if (!n) return std::nullopt;
  if (*n < 0 || *n > kMaxInferredRank)
    ctx.fail("shape operand " + std::to_string(k) + " has " + std::to_string(*n) + " entries; at most " +
             std::to_string(kMaxInferredRank) + " dimensions are supported");
  return Shape(static_cast<size_t>(*n), Dim());
}

std::vector<int64_t> inferred_dims(const KernelContext& ctx, size_t k) {
  const OpSchema* schema = find_op(ctx.node.domain, ctx.node.op);
  InferContext ictx(ctx.node, ctx.opset);
  for (const TensorData* t : ctx.in) {
    InputInfo info;
    if (t) {
      info.present = true;
      info.dtype = t->dtype();
      info.shape = make_shape(t->dims());
      info.value = t;
    }
    ictx.in.push_back(info);
  }
  ictx.out.resize(ctx.out.size());
  schema->infer(ictx);
  const auto& s = ictx.out.at(k).shape;
  if (!s || !is_static(*s)) ctx.fail("output shape could not be computed from the input values");
  return static_dims(*s);
}

Window read_window(const InferContext& ctx, size_t n, const std::vector<int64_t>& kernel_from_weight) {
  const Attributes& a = ctx.node.attrs;
  Window w;
  w.kernel = a.get_ints("kernel_shape", kernel_from_weight);
  w.strides = a.get_ints("strides", std::vector<int64_t>(n, 1));
  w.dilations = a.get_ints("dilations", std::vector<int64_t>(n, 1));
  w.pads = a.get_ints("pads", std::vector<int64_t>(2 * n, 0));
  w.auto_pad = a.get_string("auto_pad", "NOTSET");
  w.ceil_mode = a.get_int("ceil_mode", 0) != 0;
  auto check = [&](const char* name, const std::vector<int64_t>& v, size_t len, int64_t min) {
    if (v.size() != len)
      ctx.fail(std::string(name) + " has " + std::to_string(v.size()) + " entries, expected " + std::to_string(len));
    for (int64_t x : v)
      if (x < min && !(min > 0 && x == -1 && name == std::string("kernel_shape")))
        ctx.fail(std::string(name) + " has invalid entry " + std::to_string(x));
  };
  check("kernel_shape", w.kernel, n, 1);
  check("strides", w.strides, n, 1);
  check("dilations", w.dilations, n, 1);
  check("pads", w.pads, 2 * n, 0);
  if (w.auto_pad != "NOTSET" && w.auto_pad != "VALID" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER")
    ctx.fail("unknown auto_pad '" + w.auto_pad + "'");
  return w;
}

Dim window_out(const InferContext& ctx, const Window& w, size_t i, const Dim& in) {
  const size_t n = w.kernel.size();
  if (!in.is_static() || w.kernel[i] < 0) return Dim();
  const int64_t s = w.strides[i];
  if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") return Dim((in.value + s - 1) / s);
  const int64_t pads = w.auto_pad == "VALID" ? 0 : w.pads[i] + w.pads[i + n];
  const int64_t span = w.dilations[i] * (w.kernel[i] - 1) + 1;
  const int64_t avail = in.value + pads - span;
  if (avail < 0)
    ctx.fail("kernel extent " + std::to_string(span) + " exceeds the padded input size " + std::to_string(in.value + pads) +
             " on spatial axis " + std::to_string(i));
  int64_t out = (w.ceil_mode ? (avail + s - 1) / s : avail / s) + 1;
  // With ceil_mode, a last window that would start inside the end padding is dropped (PyTorch, ONNX >= 1.16).
  if (w.ceil_mode && (out - 1) * s >= in.value + (w.auto_pad == "VALID" ? 0 : w.pads[i])) --out;
  return Dim(out);
}

void copy_input_kernel(KernelContext& ctx) { ctx.out[0] = ctx.input(0).reshaped(inferred_dims(ctx)); }

std::vector<double> load_real(const KernelContext& ctx, const TensorData& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch_float(ctx, t.dtype(), [&](auto ty) {
    using T = decltype(ty);
    const auto* src = t.data<typename T::storage>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = T::load(src[i]);
  });
  return v;
}

TensorData store_real(const KernelContext& ctx, DType dt, const std::vector<int64_t>& dims,
                      const std::vector<double>& v) {
  TensorData out(dt, dims);
  dispatch_float(ctx, dt, [&](auto ty) {
    using T = decltype(ty);
    auto* dst = out.data<typename T::storage>();
    for (size_t i = 0; i < v.size(); ++i) dst[i] = T::store(static_cast<typename T::compute>(v[i]));
  });
  return out;
}

}  // namespace kiln::ops
