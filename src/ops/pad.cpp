// Pad: 'pads' and float 'value' attributes before opset 11; pads / constant_value / axes (18) inputs
// since. Modes constant, reflect, edge, wrap. Negative pads crop.
#include "ops/util.h"

namespace kiln::ops {
namespace {

// Full pads (rank begins, then rank ends) from the attribute or the pads/axes inputs.
template <class Ctx>
std::optional<std::vector<int64_t>> full_pads(const Ctx& ctx, int64_t rank) {
  std::optional<std::vector<int64_t>> pads, axes;
  if (ctx.opset < 11) {
    pads = ctx.node.attrs.get_ints("pads");
  } else {
    pads = ints_arg(ctx, 1, "");
    if (ctx.has_input(3)) axes = ints_arg(ctx, 3, "");
    if (!pads || (ctx.has_input(3) && !axes)) return std::nullopt;
  }
  if (!axes) {
    if (static_cast<int64_t>(pads->size()) != 2 * rank)
      ctx.fail("pads has " + std::to_string(pads->size()) + " entries for rank " + std::to_string(rank));
    return pads;
  }
  auto ax = normalize_axes(ctx, *axes, rank);
  if (pads->size() != 2 * ax.size()) ctx.fail("pads must have two entries per axis");
  std::vector<int64_t> full(2 * rank, 0);
  for (size_t j = 0; j < ax.size(); ++j) {
    full[ax[j]] = (*pads)[j];
    full[ax[j] + rank] = (*pads)[j + ax.size()];
  }
  return full;
}

template <class Ctx>
std::string read_mode(const Ctx& ctx) {
  std::string mode = ctx.node.attrs.get_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    ctx.fail("unknown mode '" + mode + "'");
  return mode;
}

void infer_pad(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  read_mode(ctx);
  auto x = in_shape(ctx, 0);
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  const int64_t r = static_cast<int64_t>(x->size());
  auto pads = full_pads(ctx, r);
  Shape out = *x;
  for (int64_t k = 0; k < r; ++k) {
    if (!pads) {
      out[k] = Dim();
      continue;
    }
    const int64_t add = (*pads)[k] + (*pads)[k + r];
    if (out[k].is_static()) {
      if (out[k].value + add < 0) ctx.fail("pads crop axis " + std::to_string(k) + " below zero");
      out[k] = Dim(out[k].value + add);
    } else if (add != 0) {
      out[k] = Dim();
    }
  }
  set_out(ctx, 0, dt, out);
}

// The fill element in x's dtype, as bytes.
std::vector<unsigned char> fill_bytes(const KernelContext& ctx, const TensorData& x) {
  std::vector<unsigned char> bytes(element_size(ctx, x), 0);
  if (ctx.opset >= 11 && ctx.has_input(2)) {
    const TensorData& v = ctx.input(2);
    if (v.dtype() != x.dtype() || v.numel() != 1) ctx.fail("constant_value must be one element of the input's dtype");
    std::memcpy(bytes.data(), v.raw(), bytes.size());
  } else if (ctx.opset < 11) {
    const float value = ctx.node.attrs.get_float("value", 0.0f);
    dispatch(ctx, x.dtype(), [&](auto ty) {
      using T = decltype(ty);
      auto s = T::store(static_cast<typename T::compute>(value));
      std::memcpy(bytes.data(), &s, sizeof(s));
    });
  }
  return bytes;
}

void pad_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const int64_t r = x.rank();
  const auto pads = *full_pads(ctx, r);
  const std::string mode = read_mode(ctx);
  std::vector<int64_t> dims = x.dims();
  for (int64_t k = 0; k < r; ++k) {
    dims[k] += pads[k] + pads[k + r];
    if (dims[k] < 0) ctx.fail("pads crop axis " + std::to_string(k) + " below zero");
    if (mode != "constant" && x.dims()[k] == 0 && dims[k] > 0) ctx.fail(mode + " padding of an empty axis");
  }
  TensorData out(x.dtype(), dims);
  const size_t es = element_size(ctx, x);
  const auto fill = fill_bytes(ctx, x);
  const auto xs = strides_of(x.dims());
  const auto* src = static_cast<const unsigned char*>(x.raw());
  auto* dst = static_cast<unsigned char*>(out.raw());
  for_each_index(dims, [&](const std::vector<int64_t>& idx) {
    int64_t off = 0;
    bool inside = true;
    for (int64_t k = 0; k < r && inside; ++k) {
      const int64_t n = x.dims()[k];
      int64_t i = idx[k] - pads[k];
      if (i < 0 || i >= n) {
        if (mode == "constant") inside = false;
        else if (mode == "edge") i = i < 0 ? 0 : n - 1;
        else if (mode == "wrap") i = ((i % n) + n) % n;
        else if (n == 1) i = 0;  // reflecting a single element repeats it (numpy)
        else {  // reflect without repeating the edge: period 2(n-1)
          const int64_t p = 2 * (n - 1);
          i = ((i % p) + p) % p;
          if (i >= n) i = p - i;
        }
      }
      off += i * xs[k];
    }
    std::memcpy(dst, inside ? src + off * es : fill.data(), es);
    dst += es;
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "Pad", .min_inputs = 1, .max_inputs = 4, .infer = infer_pad, .reference = pad_kernel});

}  // namespace
}  // namespace kiln::ops
