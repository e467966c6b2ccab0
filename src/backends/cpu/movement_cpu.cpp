// cpu.movement: ops that only move bytes — Transpose, DepthToSpace/SpaceToDepth, Concat, Pad (constant
// mode) and nearest Resize/Upsample with integer factors — for any 4-byte dtype (elements are copied as bits).
//
// Transpose and DepthToSpace/SpaceToDepth share one engine: the permutation is simplified (size-1 axes
// dropped, axes that stay adjacent merged), then the output is written in contiguous runs. When the output's
// innermost axis is not the input's, the innermost two axes are copied as small 2-D tiles, with unrolled
// paths for the (de)interleaving of two rows that space-to-depth / depth-to-space with block 2 reduce to.
// Large tensors are split over LayerDesc.threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <thread>

#include "backends/cpu/cpu_util.h"
#include "device/kernel.h"
#include "ops/depth_space.h"
#include "ops/util.h"

namespace kiln::backend {
namespace {

using Elem = uint32_t;  // any 4-byte element

// Copies are cheap per element, so threads pay off earlier than for arithmetic (kParallelMin).
constexpr int64_t kMoveParallelMin = kParallelMin / 4;

template <class F>
void parallel_for_moves(int64_t n, int64_t work, int threads, const F& f) {
  parallel_for(n, work, threads, f, kMoveParallelMin);
}

bool four_byte(DType t) { return t != DType::String && t != DType::Undefined && dtype_size(t) == 4; }

// The first `n` inputs and the single output are present, 4-byte and of one dtype.
bool data_ok(const LayerDesc& d, size_t n) {
  if (d.outputs.size() != 1 || !d.outputs[0].present || !four_byte(d.outputs[0].dtype) || d.inputs.size() < n)
    return false;
  for (size_t k = 0; k < n; ++k)
    if (!d.inputs[k].present || d.inputs[k].dtype != d.outputs[0].dtype) return false;
  return true;
}

// ------------------------------------------------------------------------------------ permuted copy
// dst[j*ldd + i] = src[i*lds + j] for i < na, j < nb: a 2-D tile of the two innermost axes (i is the
// output's innermost axis, j the input's).
KILN_SIMD_CLONES void copy_tile(Elem* __restrict dst, int64_t ldd, const Elem* __restrict src, int64_t lds,
                                int64_t na, int64_t nb) {
  if (nb == 2 && lds == 2) {  // deinterleave one row of pairs into two rows (space-to-depth, block 2)
    Elem* __restrict d1 = dst + ldd;
    for (int64_t i = 0; i < na; ++i) {
      dst[i] = src[2 * i];
      d1[i] = src[2 * i + 1];
    }
    return;
  }
  if (na == 2 && ldd == 2) {  // interleave two rows into one row of pairs (depth-to-space, block 2)
    const Elem* __restrict s1 = src + lds;
    for (int64_t j = 0; j < nb; ++j) {
      dst[2 * j] = src[j];
      dst[2 * j + 1] = s1[j];
    }
    return;
  }
  if (nb == 1) {
    for (int64_t i = 0; i < na; ++i) dst[i] = src[i * lds];
    return;
  }
  constexpr int64_t B = 16;  // blocks keep both the strided reads and the strided writes in cache
  for (int64_t j0 = 0; j0 < nb; j0 += B)
    for (int64_t i0 = 0; i0 < na; i0 += B) {
      const int64_t j1 = std::min(nb, j0 + B), i1 = std::min(na, i0 + B);
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) dst[j * ldd + i] = src[i * lds + j];
    }
}

// out[idx] = in[Σ idx[k]·stride[k]] for a contiguous output of `dims`.
struct Permutation {
  std::vector<int64_t> dims, strides;
};

// Output axis k reads input axis perm[k]. Size-1 axes are dropped, and output axes that are also adjacent
// (in order) in the input are merged: PackNet's [N,C,H/2,2,W/2,2] → [0,1,3,5,2,4] becomes 5-D, depth-to-
// space's 6-D view becomes 4-D.
Permutation simplify(const std::vector<int64_t>& in_dims, const std::vector<int64_t>& perm) {
  const auto in_strides = ops::strides_of(in_dims);
  Permutation p;
  for (int64_t a : perm) {
    const int64_t d = in_dims[static_cast<size_t>(a)], s = in_strides[static_cast<size_t>(a)];
    if (d == 1) continue;
    if (!p.dims.empty() && p.strides.back() == d * s) {
      p.dims.back() *= d;
      p.strides.back() = s;
    } else {
      p.dims.push_back(d);
      p.strides.push_back(s);
    }
  }
  if (p.dims.empty()) p = {{1}, {1}};
  return p;
}

class PermuteKernel final : public Kernel {
 public:
  PermuteKernel(Permutation p, int threads) : p_(std::move(p)), threads_(threads) {
    const int r = static_cast<int>(p_.dims.size());
    a_ = r - 1;
    // The input's innermost axis: after dropping size-1 axes some output axis always has stride 1.
    for (int k = 0; k < r; ++k)
      if (p_.strides[static_cast<size_t>(k)] == 1) b_ = k;
    ostrides_ = ops::strides_of(p_.dims);
    // Outer loop: every axis but a and b (b == a: contiguous runs along a).
    for (int k = 0; k < r; ++k)
      if (k != a_ && k != b_) outer_.push_back(k);
    tiles_ = 1;
    for (int k : outer_) tiles_ *= p_.dims[static_cast<size_t>(k)];
    // Few tiles (a plain 2-D transpose is one): split them along b so every thread has work.
    const int64_t nb = b_ == a_ ? 1 : p_.dims[static_cast<size_t>(b_)];
    splits_ = tiles_ == 0 ? 1 : std::min<int64_t>(nb, std::max<int64_t>(1, (4 * threads + tiles_ - 1) / tiles_));
  }

  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const Elem* src = static_cast<const Elem*>(in[0].data);
    Elem* dst = static_cast<Elem*>(out[0].data);
    if (out[0].numel() == 0) return;
    const auto& dims = p_.dims;
    const auto& st = p_.strides;
    const int64_t na = dims[static_cast<size_t>(a_)], lds = st[static_cast<size_t>(a_)];
    const int64_t nb = b_ == a_ ? 1 : dims[static_cast<size_t>(b_)];
    const int64_t ldd = b_ == a_ ? 0 : ostrides_[static_cast<size_t>(b_)];
    parallel_for_moves(tiles_ * splits_, out[0].numel(), threads_, [&](int64_t begin, int64_t end) {
      if (begin >= end) return;
      // Odometer over the outer axes, starting at tile begin / splits_.
      std::vector<int64_t> idx(outer_.size());
      int64_t t = begin / splits_, so = 0, doff = 0;
      for (size_t q = outer_.size(); q-- > 0;) {
        const size_t k = static_cast<size_t>(outer_[q]);
        idx[q] = t % dims[k];
        t /= dims[k];
        so += idx[q] * st[k];
        doff += idx[q] * ostrides_[k];
      }
      for (int64_t u = begin; u < end; ++u) {
        const int64_t part = u % splits_;
        if (b_ == a_) {
          std::memcpy(dst + doff, src + so, static_cast<size_t>(na) * sizeof(Elem));
        } else {
          const int64_t j0 = nb * part / splits_, j1 = nb * (part + 1) / splits_;
          copy_tile(dst + doff + j0 * ldd, ldd, src + so + j0, lds, na, j1 - j0);
        }
        if (part + 1 < splits_) continue;
        for (size_t q = outer_.size(); q-- > 0;) {  // next tile
          const size_t k = static_cast<size_t>(outer_[q]);
          so += st[k];
          doff += ostrides_[k];
          if (++idx[q] < dims[k]) break;
          so -= dims[k] * st[k];
          doff -= dims[k] * ostrides_[k];
          idx[q] = 0;
        }
      }
    });
  }

 private:
  Permutation p_;
  std::vector<int64_t> ostrides_;
  std::vector<int> outer_;
  int a_ = 0, b_ = 0;
  int64_t tiles_ = 1, splits_ = 1;
  int threads_;
};

std::vector<int64_t> transpose_perm(const LayerDesc& d) {
  const int64_t r = static_cast<int64_t>(d.inputs[0].dims.size());
  std::vector<int64_t> perm = d.node->attrs.get_ints("perm");
  if (perm.empty()) {
    perm.resize(static_cast<size_t>(r));
    std::iota(perm.rbegin(), perm.rend(), 0);
  }
  for (int64_t& p : perm)
    if (p < 0) p += r;
  return perm;
}

bool transpose_supported(const LayerDesc& d) {
  if (d.inputs.size() != 1 || !data_ok(d, 1)) return false;
  const auto perm = transpose_perm(d);
  const auto& x = d.inputs[0].dims;
  if (perm.size() != x.size()) return false;
  std::vector<bool> seen(x.size(), false);
  std::vector<int64_t> y;
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(x.size()) || seen[static_cast<size_t>(p)]) return false;
    seen[static_cast<size_t>(p)] = true;
    y.push_back(x[static_cast<size_t>(p)]);
  }
  return y == d.outputs[0].dims;
}

// DepthToSpace / SpaceToDepth: a transpose of a 6-D view of the input (ops/depth_space.h).
std::optional<ops::DepthSpaceTranspose> depth_space_transpose(const LayerDesc& d) {
  if (d.inputs.size() != 1 || !data_ok(d, 1) || d.inputs[0].dims.size() != 4) return std::nullopt;
  const int64_t b = d.node->attrs.get_int("blocksize", 0);
  std::optional<ops::DepthSpaceTranspose> t;
  if (d.node->op == "DepthToSpace") {
    const std::string mode = d.node->attrs.get_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") return std::nullopt;
    t = ops::depth_to_space_transpose(d.inputs[0].dims, b, mode == "CRD");
  } else {
    t = ops::space_to_depth_transpose(d.inputs[0].dims, b);
  }
  if (!t || t->out != d.outputs[0].dims) return std::nullopt;
  return t;
}

std::unique_ptr<Kernel> create_depth_space(const LayerDesc& d) {
  const ops::DepthSpaceTranspose t = *depth_space_transpose(d);
  return std::make_unique<PermuteKernel>(simplify(t.view, t.perm), d.threads);
}

// ------------------------------------------------------------------------------------------- Concat
// The output is [outer, Σ chunk_k] where input k contributes a contiguous chunk_k = dims_k[axis]·inner per
// outer index. Threads split the output's flat range, so a single huge chunk is shared too.
class ConcatKernel final : public Kernel {
 public:
  ConcatKernel(std::vector<int64_t> chunks, int threads) : chunks_(std::move(chunks)), threads_(threads) {
    row_ = std::accumulate(chunks_.begin(), chunks_.end(), int64_t{0});
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    Elem* dst = static_cast<Elem*>(out[0].data);
    const int64_t total = out[0].numel();
    if (total == 0) return;
    const int64_t parts = std::max<int64_t>(1, threads_);
    parallel_for_moves(parts, total, threads_, [&](int64_t b, int64_t e) {
      const int64_t lo = total * b / parts, hi = total * e / parts;
      int64_t p = lo;
      while (p < hi) {
        const int64_t o = p / row_;
        int64_t r = p % row_;
        size_t k = 0;
        while (r >= chunks_[k]) r -= chunks_[k++];  // chunk k holds position r (zero-size chunks skipped)
        const int64_t len = std::min(hi - p, chunks_[k] - r);
        std::memcpy(dst + p, static_cast<const Elem*>(in[k].data) + o * chunks_[k] + r,
                    static_cast<size_t>(len) * sizeof(Elem));
        p += len;
      }
    });
  }

 private:
  std::vector<int64_t> chunks_;
  int64_t row_ = 0;
  int threads_;
};

bool concat_plan(const LayerDesc& d, std::vector<int64_t>& chunks) {
  if (d.inputs.empty() || !data_ok(d, d.inputs.size())) return false;
  const auto& y = d.outputs[0].dims;
  const int64_t r = static_cast<int64_t>(y.size());
  int64_t axis = d.node->attrs.get_int("axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return false;
  const int64_t inner = ops::numel({y.begin() + axis + 1, y.end()});
  int64_t sum = 0;
  chunks.clear();
  for (const auto& o : d.inputs) {
    if (static_cast<int64_t>(o.dims.size()) != r) return false;
    for (int64_t k = 0; k < r; ++k)
      if (k != axis && o.dims[static_cast<size_t>(k)] != y[static_cast<size_t>(k)]) return false;
    chunks.push_back(o.dims[static_cast<size_t>(axis)] * inner);
    sum += o.dims[static_cast<size_t>(axis)];
  }
  return sum == y[static_cast<size_t>(axis)];
}

// ---------------------------------------------------------------------------------------------- Pad
// Constant mode: every output row (innermost axis) is either all padding or [pad | input row | pad].
// Negative pads crop, which the same clamping handles.
class PadKernel final : public Kernel {
 public:
  PadKernel(std::vector<int64_t> in_dims, std::vector<int64_t> out_dims, std::vector<int64_t> begins, Elem value,
            int threads)
      : in_(std::move(in_dims)), out_(std::move(out_dims)), begin_(std::move(begins)), value_(value),
        threads_(threads) {
    istrides_ = ops::strides_of(in_);
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const Elem* src = static_cast<const Elem*>(in[0].data);
    Elem* dst = static_cast<Elem*>(out[0].data);
    const size_t r = out_.size();
    const int64_t lo = out_[r - 1], li = in_[r - 1], pb = begin_[r - 1];
    const int64_t x0 = std::clamp<int64_t>(pb, 0, lo), x1 = std::clamp<int64_t>(pb + li, 0, lo);
    const int64_t rows = ops::numel({out_.begin(), out_.end() - 1});
    parallel_for_moves(rows, rows * lo, threads_, [&](int64_t b, int64_t e) {
      std::vector<int64_t> idx(r - 1);
      for (int64_t row = b; row < e; ++row) {
        int64_t t = row, so = 0;
        bool inside = true;
        for (size_t k = r - 1; k-- > 0;) {
          idx[k] = t % out_[k];
          t /= out_[k];
          const int64_t ic = idx[k] - begin_[k];
          inside = inside && ic >= 0 && ic < in_[k];
          so += ic * istrides_[k];
        }
        Elem* d = dst + row * lo;
        if (!inside) {
          std::fill(d, d + lo, value_);
          continue;
        }
        std::fill(d, d + x0, value_);
        std::memcpy(d + x0, src + so + (x0 - pb), static_cast<size_t>(x1 - x0) * sizeof(Elem));
        std::fill(d + x1, d + lo, value_);
      }
    });
  }

 private:
  std::vector<int64_t> in_, out_, begin_, istrides_;
  Elem value_;
  int threads_;
};

// Pads (begins; ends follow from the output dims) and the pad value's bits, from attributes (opset < 11)
// or constant inputs.
bool pad_plan(const LayerDesc& d, std::vector<int64_t>& begins, Elem& value) {
  if (!data_ok(d, 1) || d.node->attrs.get_string("mode", "constant") != "constant") return false;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  const int64_t r = static_cast<int64_t>(x.size());
  if (r == 0 || y.size() != x.size()) return false;
  std::vector<int64_t> pads;
  value = 0;
  if (d.opset < 11) {
    pads = d.node->attrs.get_ints("pads");
    const float v = d.node->attrs.get_float("value", 0.0f);
    if (d.inputs[0].dtype != DType::Float) return false;
    std::memcpy(&value, &v, sizeof value);
  } else {
    if (d.inputs.size() < 2 || !d.inputs[1].constant) return false;
    pads = d.inputs[1].constant->to_int64_vector();
    if (d.inputs.size() > 2 && d.inputs[2].present) {
      const TensorData* v = d.inputs[2].constant;
      if (!v || v->dtype() != d.inputs[0].dtype) return false;
      if (v->numel() == 1) std::memcpy(&value, v->raw(), sizeof value);
      else if (v->numel() != 0) return false;
    }
    if (d.inputs.size() > 3 && d.inputs[3].present) {  // opset 18 axes: expand to every axis
      if (!d.inputs[3].constant) return false;
      auto axes = d.inputs[3].constant->to_int64_vector();
      if (pads.size() != 2 * axes.size()) return false;
      std::vector<int64_t> full(static_cast<size_t>(2 * r), 0);
      for (size_t j = 0; j < axes.size(); ++j) {
        const int64_t a = axes[j] < 0 ? axes[j] + r : axes[j];
        if (a < 0 || a >= r) return false;
        full[static_cast<size_t>(a)] = pads[j];
        full[static_cast<size_t>(a + r)] = pads[j + axes.size()];
      }
      pads = full;
    }
  }
  if (static_cast<int64_t>(pads.size()) != 2 * r) return false;
  begins.assign(pads.begin(), pads.begin() + r);
  for (int64_t k = 0; k < r; ++k)
    if (x[static_cast<size_t>(k)] + pads[static_cast<size_t>(k)] + pads[static_cast<size_t>(k + r)] !=
        y[static_cast<size_t>(k)])
      return false;
  return true;
}

// ------------------------------------------------------------------------------------------- Resize
// Nearest with an integer factor f per axis and input index ⌊o / f⌋ (asymmetric coordinates with floor, or
// Upsample's rule when upsampling). Output rows whose source row repeats the previous one are copied
// from the previous output row.
KILN_SIMD_CLONES void expand_row(Elem* __restrict d, const Elem* __restrict s, int64_t n, int64_t f) {
  if (f == 2) {
    for (int64_t x = 0; x < n; ++x) d[2 * x] = d[2 * x + 1] = s[x];
  } else {
    for (int64_t x = 0; x < n; ++x)
      for (int64_t t = 0; t < f; ++t) d[x * f + t] = s[x];
  }
}

class ResizeKernel final : public Kernel {
 public:
  ResizeKernel(std::vector<int64_t> in_dims, std::vector<int64_t> out_dims, int threads)
      : in_(std::move(in_dims)), out_(std::move(out_dims)), threads_(threads) {
    istrides_ = ops::strides_of(in_);
  }
  void run(const std::vector<TensorView>& in, const std::vector<TensorView>& out) const override {
    const Elem* src = static_cast<const Elem*>(in[0].data);
    Elem* dst = static_cast<Elem*>(out[0].data);
    const size_t r = out_.size();
    const int64_t lo = out_[r - 1], li = in_[r - 1], f = lo / li;
    const int64_t rows = ops::numel({out_.begin(), out_.end() - 1});
    parallel_for_moves(rows, rows * lo, threads_, [&](int64_t b, int64_t e) {
      int64_t prev = -1;
      for (int64_t row = b; row < e; ++row) {
        int64_t t = row, so = 0;
        for (size_t k = r - 1; k-- > 0;) {
          so += (t % out_[k]) / (out_[k] / in_[k]) * istrides_[k];
          t /= out_[k];
        }
        Elem* d = dst + row * lo;
        if (so == prev) std::memcpy(d, d - lo, static_cast<size_t>(lo) * sizeof(Elem));
        else if (f == 1) std::memcpy(d, src + so, static_cast<size_t>(lo) * sizeof(Elem));
        else expand_row(d, src + so, li, f);
        prev = so;
      }
    });
  }

 private:
  std::vector<int64_t> in_, out_, istrides_;
  int threads_;
};

bool resize_supported(const LayerDesc& d) {
  if (!data_ok(d, 1)) return false;
  const auto& a = d.node->attrs;
  const auto& x = d.inputs[0].dims;
  const auto& y = d.outputs[0].dims;
  if (x.empty() || y.size() != x.size() || a.get_string("mode", "nearest") != "nearest" ||
      a.get_int("antialias", 0) != 0 || a.has("axes"))
    return false;
  for (size_t k = 0; k < x.size(); ++k)
    if (x[k] <= 0 || y[k] < x[k] || y[k] % x[k] != 0) return false;
  auto input = [&](size_t k) -> const LayerDesc::Operand* {
    return k < d.inputs.size() && d.inputs[k].present ? &d.inputs[k] : nullptr;
  };
  // A present input must be a constant; an empty one counts as absent (Resize-11's roi/scales).
  auto constant = [&](size_t k, bool& ok) -> const TensorData* {
    const auto* o = input(k);
    if (!o) return nullptr;
    if (!o->constant) ok = false;
    return o->constant && o->constant->numel() > 0 ? o->constant : nullptr;
  };
  const bool legacy = d.node->op == "Upsample" || d.opset < 11;
  if (!legacy && (a.get_string("coordinate_transformation_mode", "half_pixel") != "asymmetric" ||
                  a.get_string("nearest_mode", "round_prefer_floor") != "floor"))
    return false;
  // The given scales must be exactly the integer factors (the reference divides by the scale as given).
  std::vector<double> scales;
  bool ok = true;
  if (d.node->op == "Upsample" && d.opset < 9) {
    for (float s : a.get_floats("scales")) scales.push_back(s);
  } else {
    const TensorData* s = constant(legacy ? 1 : 2, ok);
    if (!legacy) {
      constant(1, ok);
      const TensorData* sizes = constant(3, ok);
      if (!s && !sizes) return false;
      if (!s && a.get_string("keep_aspect_ratio_policy", "stretch") != "stretch") return false;
    }
    if (s)
      for (int64_t i = 0; i < s->numel(); ++i) scales.push_back(static_cast<float>(s->as_double(i)));
  }
  if (!ok) return false;
  if (!scales.empty()) {
    if (scales.size() != x.size()) return false;
    for (size_t k = 0; k < x.size(); ++k)
      if (scales[k] != static_cast<double>(y[k] / x[k])) return false;
  }
  return true;
}

// ------------------------------------------------------------------------------------ registration
KernelFactory factory(const std::string& op, std::function<bool(const LayerDesc&)> supports,
                      std::function<std::unique_ptr<Kernel>(const LayerDesc&)> create) {
  return {.name = "cpu.movement", .device = "cpu", .op = op, .domain = "", .priority = 50,
          .supports = std::move(supports), .create = std::move(create)};
}

KILN_REGISTER_KERNEL(factory("Transpose", transpose_supported, [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
  return std::make_unique<PermuteKernel>(simplify(d.inputs[0].dims, transpose_perm(d)), d.threads);
}));

KILN_REGISTER_KERNEL(factory(
    "DepthToSpace", [](const LayerDesc& d) { return depth_space_transpose(d).has_value(); },
    create_depth_space));
KILN_REGISTER_KERNEL(factory(
    "SpaceToDepth", [](const LayerDesc& d) { return depth_space_transpose(d).has_value(); },
    create_depth_space));

KILN_REGISTER_KERNEL(factory(
    "Concat",
    [](const LayerDesc& d) {
      std::vector<int64_t> chunks;
      return concat_plan(d, chunks);
    },
    [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
      std::vector<int64_t> chunks;
      concat_plan(d, chunks);
      return std::make_unique<ConcatKernel>(chunks, d.threads);
    }));

KILN_REGISTER_KERNEL(factory(
    "Pad",
    [](const LayerDesc& d) {
      std::vector<int64_t> begins;
      Elem v;
      return pad_plan(d, begins, v);
    },
    [](const LayerDesc& d) -> std::unique_ptr<Kernel> {
      std::vector<int64_t> begins;
      Elem v = 0;
      pad_plan(d, begins, v);
      return std::make_unique<PadKernel>(d.inputs[0].dims, d.outputs[0].dims, begins, v, d.threads);
    }));

std::unique_ptr<Kernel> create_resize(const LayerDesc& d) {
  return std::make_unique<ResizeKernel>(d.inputs[0].dims, d.outputs[0].dims, d.threads);
}
KILN_REGISTER_KERNEL(factory("Resize", resize_supported, create_resize));
KILN_REGISTER_KERNEL(factory("Upsample", resize_supported, create_resize));

}  // namespace
}  // namespace kiln::backend
