// MaxPool / AveragePool / LpPool and the global pools: shape inference and reference kernels.
#include <cmath>
#include <limits>

#include "ops/pool.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_pool(InferContext& ctx) {
  const DType dt = ctx.input(0).dtype;
  auto x = in_shape(ctx, 0);
  set_out(ctx, 1, DType::Int64, std::nullopt);  // MaxPool's optional Indices
  if (!x) return set_out(ctx, 0, dt, std::nullopt);
  if (x->size() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...], got " + to_string(*x));
  const size_t n = x->size() - 2;
  if (!ctx.node.attrs.has("kernel_shape")) ctx.fail("kernel_shape is required");
  Window w = read_window(ctx, n, {});
  Shape out{(*x)[0], (*x)[1]};
  for (size_t i = 0; i < n; ++i) out.push_back(window_out(ctx, w, i, (*x)[i + 2]));
  set_out(ctx, 0, dt, out);
  set_out(ctx, 1, DType::Int64, out);
}

void infer_global_pool(InferContext& ctx) {
  auto x = in_shape(ctx, 0);
  if (x && x->size() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...], got " + to_string(*x));
  if (x) std::fill(x->begin() + 2, x->end(), Dim(1));
  set_out(ctx, 0, ctx.input(0).dtype, x);
}

// ------------------------------------------------------------------------------------ reference kernels
// The window as a kernel sees it (ops/pool.h), with the output dims infer computed.
struct Pool3 : PoolWindow {
  std::vector<int64_t> y_dims;
};

Pool3 pool_geometry(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  Pool3 g;
  g.y_dims = inferred_dims(ctx);
  const auto w = pool_window(ctx.node.attrs, x.dims(), g.y_dims);
  if (!w) ctx.fail(std::to_string(x.rank() - 2) + "-D pooling is not supported (1-D to 3-D only)");
  static_cast<PoolWindow&>(g) = *w;
  return g;
}

// Calls f(out_offset, plane, window) for every output element, where window(visit) calls visit(in_offset)
// for each window position inside the input and returns how many positions lay in the padded extent
// [-pad, in + pad_end) (those count for AveragePool's count_include_pad).
template <class F>
void for_each_window(const Pool3& g, F&& f) {
  const int64_t in_sz = g.in[0] * g.in[1] * g.in[2];
  int64_t y = 0;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          const int64_t start[3] = {od * g.stride[0] - g.pad[0], oh * g.stride[1] - g.pad[1], ow * g.stride[2] - g.pad[2]};
          auto window = [&](auto&& visit) {
            int64_t padded = 0;
            for (int64_t kd = 0; kd < g.k[0]; ++kd) {
              const int64_t id = start[0] + kd * g.dil[0];
              if (id < -g.pad[0] || id >= g.in[0] + g.pad_end[0]) continue;
              for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                const int64_t ih = start[1] + kh * g.dil[1];
                if (ih < -g.pad[1] || ih >= g.in[1] + g.pad_end[1]) continue;
                for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                  const int64_t iw = start[2] + kw * g.dil[2];
                  if (iw < -g.pad[2] || iw >= g.in[2] + g.pad_end[2]) continue;
                  ++padded;
                  if (id >= 0 && id < g.in[0] && ih >= 0 && ih < g.in[1] && iw >= 0 && iw < g.in[2])
                    visit(p * in_sz + (id * g.in[1] + ih) * g.in[2] + iw, id, ih, iw);
                }
              }
            }
            return padded;
          };
          f(y++, p, window);
        }
}

// The largest element of each window (padding never wins). Indices: flat index of the maximum in X, the
// spatial part row-major, or column-major with storage_order = 1; the first maximum wins ties.
void max_pool_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  const Pool3 g = pool_geometry(ctx);
  const bool col_major = ctx.node.attrs.get_int("storage_order", 0) != 0;
  const size_t n = static_cast<size_t>(x.rank()) - 2;
  const int64_t in_sz = g.in[0] * g.in[1] * g.in[2];
  TensorData out(x.dtype(), g.y_dims), idx(DType::Int64, g.y_dims);
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    using C = typename T::compute;
    if constexpr (T::is_bool) {
      unsupported(ctx, x.dtype());
    } else {
      const S* src = x.data<S>();
      for_each_window(g, [&](int64_t y, int64_t plane, auto&& window) {
        bool any = false;
        C best = std::numeric_limits<C>::lowest();
        int64_t at = -1;
        window([&](int64_t off, int64_t id, int64_t ih, int64_t iw) {
          const C v = T::load(src[off]);
          if (!any || v > best) {
            any = true, best = v;
            // Column-major over the real spatial dims: the first spatial index varies fastest.
            const int64_t col = n == 3 ? id + ih * g.in[0] + iw * g.in[0] * g.in[1] : n == 2 ? ih + iw * g.in[1] : iw;
            at = col_major ? plane * in_sz + col : off;
          }
        });
        out.data<S>()[y] = T::store(best);
        idx.data<int64_t>()[y] = at;
      });
    }
  });
  ctx.out[0] = out;
  if (ctx.out.size() > 1) ctx.out[1] = idx;
}

// AveragePool (p = 0: mean over the window's input elements, or over its whole padded extent with
// count_include_pad) and LpPool (p > 0: (sum |x|^p)^(1/p), padding contributing zeros).
void average_or_lp_kernel(KernelContext& ctx, double p_norm) {
  const TensorData& x = ctx.input(0);
  const Pool3 g = pool_geometry(ctx);
  const bool include_pad = ctx.node.attrs.get_int("count_include_pad", 0) != 0;
  TensorData out(x.dtype(), g.y_dims);
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (!T::is_float) {
      unsupported(ctx, x.dtype());
    } else {
      const S* src = x.data<S>();
      for_each_window(g, [&](int64_t y, int64_t, auto&& window) {
        double sum = 0;
        int64_t count = 0;
        const int64_t padded = window([&](int64_t off, int64_t, int64_t, int64_t) {
          const double v = T::load(src[off]);
          sum += p_norm > 0 ? std::pow(std::fabs(v), p_norm) : v;
          ++count;
        });
        const double v = p_norm > 0 ? std::pow(sum, 1.0 / p_norm) : sum / static_cast<double>(include_pad ? padded : count);
        out.data<S>()[y] = T::store(static_cast<typename T::compute>(v));
      });
    }
  });
  ctx.out[0] = out;
}
void average_pool_kernel(KernelContext& ctx) { average_or_lp_kernel(ctx, 0); }
void lp_pool_kernel(KernelContext& ctx) {
  const int64_t p = ctx.node.attrs.get_int("p", 2);
  if (p < 1) ctx.fail("p must be >= 1");
  average_or_lp_kernel(ctx, static_cast<double>(p));
}

// Mean or max over all spatial positions of each (n, c).
template <bool is_max>
void global_pool_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.rank() < 3) ctx.fail("input must be at least 3-D [N, C, spatial...]");
  const int64_t planes = x.dims()[0] * x.dims()[1], inner = numel({x.dims().begin() + 2, x.dims().end()});
  std::vector<int64_t> y_dims = x.dims();
  std::fill(y_dims.begin() + 2, y_dims.end(), 1);
  TensorData out(x.dtype(), y_dims);
  dispatch(ctx, x.dtype(), [&](auto ty) {
    using T = decltype(ty);
    using S = typename T::storage;
    if constexpr (!T::is_float) {
      unsupported(ctx, x.dtype());
    } else {
      for (int64_t p = 0; p < planes; ++p) {
        const S* src = x.data<S>() + p * inner;
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t i = 0; i < inner; ++i) acc = is_max ? std::max(acc, double(T::load(src[i]))) : acc + T::load(src[i]);
        if (!is_max) acc /= static_cast<double>(inner);
        out.data<S>()[p] = T::store(static_cast<typename T::compute>(acc));
      }
    }
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP({.op = "MaxPool", .max_outputs = 2, .infer = infer_pool, .reference = max_pool_kernel});
KILN_REGISTER_OP({.op = "AveragePool", .infer = infer_pool, .reference = average_pool_kernel});
KILN_REGISTER_OP({.op = "LpPool", .infer = infer_pool, .reference = lp_pool_kernel});
KILN_REGISTER_OP({.op = "GlobalAveragePool", .infer = infer_global_pool, .reference = global_pool_kernel<false>});
KILN_REGISTER_OP({.op = "GlobalMaxPool", .infer = infer_global_pool, .reference = global_pool_kernel<true>});

}  // namespace
}  // namespace kiln::ops
