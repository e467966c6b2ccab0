// The strided-copy engine's plan (movement_strided_cuda.cuh), made on the host: size-1 axes dropped, adjacent
// axes merged, then memcpy, tile transpose, vector gather (the widest vector whose loads the pattern allows)
// or the per-element gather.
#include <algorithm>
#include <cstdlib>

#include "backends/cuda/movement_strided_cuda.cuh"

namespace kiln::cuda::movement {
namespace {

FastDiv make_fast_div(uint32_t d) {
  uint32_t l = 0;
  while ((uint64_t{1} << l) < d) ++l;
  const uint64_t m = (uint64_t{1} << 32) * ((uint64_t{1} << l) - d) / d + 1;
  return {d, static_cast<uint32_t>(m), l};
}

// The item axes (size, input stride, output stride) left when vectors of v elements cover the innermost
// output axes, and each element's input offset within its vector; nullopt when v does not fit the axes (v
// must be a product of whole innermost axes times a divisor of the next one).
struct VecCover {
  std::vector<int64_t> dims, src, dst, delta;
};

std::optional<VecCover> vec_cover(const std::vector<int64_t>& d, const std::vector<int64_t>& s, int64_t v) {
  const int r = static_cast<int>(d.size());
  const auto os = strides_of(d);
  std::vector<std::pair<int64_t, int64_t>> sub;  // covered (size, input stride), innermost first
  int64_t rem = v, partial = 1;
  int top = r - 1;  // the outermost axis not wholly inside a vector
  while (rem > 1) {
    if (top < 0) return std::nullopt;
    const int64_t n = d[static_cast<size_t>(top)];
    if (rem % n == 0) {
      sub.push_back({n, s[static_cast<size_t>(top)]});
      rem /= n;
      --top;
    } else if (n % rem == 0) {
      sub.push_back({rem, s[static_cast<size_t>(top)]});
      partial = rem;
      rem = 1;
    } else {
      return std::nullopt;
    }
  }
  VecCover c;
  for (int k = 0; k <= top; ++k) {
    const size_t u = static_cast<size_t>(k);
    const int64_t f = k == top ? partial : 1;
    if (d[u] / f == 1) continue;
    c.dims.push_back(d[u] / f);
    c.src.push_back(s[u] * f);
    c.dst.push_back(os[u] * f);
  }
  for (int64_t e = 0; e < v; ++e) {
    int64_t t = e, off = 0;
    for (const auto& [n, st] : sub) {
      off += t % n * st;
      t /= n;
    }
    c.delta.push_back(off);
  }
  return c;
}

bool all_multiples(const std::vector<int64_t>& xs, int64_t a) {
  return std::all_of(xs.begin(), xs.end(), [a](int64_t x) { return x % a == 0; });
}

VecPlan make_vec_plan(const VecCover& c, int64_t base, int v, int mode, int k, int64_t step, int align) {
  VecPlan vp;
  vp.v = v;
  vp.mode = mode;
  vp.k = k;
  vp.align = align;
  vp.items = ops::numel(c.dims);
  VecParams& p = vp.p;
  p.rank = static_cast<int>(c.dims.size());
  p.base = static_cast<int32_t>(base);
  p.step = static_cast<int32_t>(step);
  for (size_t a = 0; a < c.dims.size(); ++a) {
    p.div[a] = make_fast_div(static_cast<uint32_t>(c.dims[a]));
    p.src[a] = static_cast<int32_t>(c.src[a]);
    p.dst[a] = static_cast<int32_t>(c.dst[a]);
  }
  for (size_t e = 0; e < c.delta.size(); ++e) p.delta[e] = static_cast<int32_t>(c.delta[e]);
  return vp;
}

// The widest vector with a fast load mode, else the widest with scalar loads (V = 1 at worst); nullopt when
// offsets or counts need 64 bits or the element size is not 2 or 4 bytes (the float dtypes).
std::optional<VecPlan> plan_vec(const std::vector<int64_t>& d, const std::vector<int64_t>& s, int64_t base,
                                size_t elem) {
  if (elem != 2 && elem != 4) return std::nullopt;
  int64_t reach = base;
  for (size_t k = 0; k < d.size(); ++k) reach += (d[k] - 1) * std::abs(s[k]);
  if (!fits32(reach) || !fits32(ops::numel(d))) return std::nullopt;
  const int vmax = static_cast<int>(16 / elem);
  std::optional<VecPlan> generic;
  for (int v = vmax; v >= 1; v /= 2) {
    const auto c = vec_cover(d, s, v);
    if (!c) continue;
    const auto& dl = c->delta;
    auto loads_aligned = [&](int64_t a, int64_t step) {
      return base % a == 0 && step % a == 0 && all_multiples(c->src, a);
    };
    if (v > 1) {
      bool contig = true;
      for (int e = 0; e < v; ++e) contig = contig && dl[static_cast<size_t>(e)] == e;
      if (contig && loads_aligned(v, 0)) return make_vec_plan(*c, base, v, kVecContig, 1, 0, v);
      for (int k : {2, 4}) {
        if (v <= k) continue;
        const int64_t step = dl[1];
        bool merge = true;
        for (int e = 0; e < v; ++e) merge = merge && dl[static_cast<size_t>(e)] == e / k + e % k * step;
        if (merge && loads_aligned(v / k, step)) return make_vec_plan(*c, base, v, kVecMerge, k, step, v / k);
      }
      for (int k : {2, 4}) {
        bool split = true;
        for (int e = 0; e < v; ++e) split = split && dl[static_cast<size_t>(e)] == int64_t{e} * k;
        if (!split) continue;
        for (size_t a = 0; a < c->dims.size(); ++a) {
          if (c->src[a] != 1 || c->dims[a] % k != 0) continue;
          VecCover sc = *c;
          const int64_t step = sc.dst[a];
          sc.dims[a] /= k;
          sc.src[a] = k;
          sc.dst[a] *= k;
          if (sc.dims[a] == 1) {
            sc.dims.erase(sc.dims.begin() + static_cast<std::ptrdiff_t>(a));
            sc.src.erase(sc.src.begin() + static_cast<std::ptrdiff_t>(a));
            sc.dst.erase(sc.dst.begin() + static_cast<std::ptrdiff_t>(a));
          }
          const int align = std::min(vmax, k * v);
          if (base % align == 0 && all_multiples(sc.src, align) && all_multiples(sc.dst, v) && step % v == 0)
            return make_vec_plan(sc, base, v, kVecSplit, k, step, align);
          break;
        }
      }
    }
    if (!generic) generic = make_vec_plan(*c, base, v, kVecGeneric, 1, 0, 1);
  }
  return generic;
}

}  // namespace

std::optional<StridedPlan> plan_strided(const std::vector<int64_t>& dims, const std::vector<int64_t>& strides,
                                        int64_t base, size_t elem) {
  StridedPlan p;
  p.n = ops::numel(dims);
  p.base = base;
  if (p.n == 0) return p;
  std::vector<int64_t> d, s;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 1) continue;
    if (!d.empty() && s.back() == strides[k] * dims[k]) {
      d.back() *= dims[k];
      s.back() = strides[k];
    } else {
      d.push_back(dims[k]);
      s.push_back(strides[k]);
    }
  }
  if (d.empty()) d = {1}, s = {1};
  const int r = static_cast<int>(d.size());
  if (r > kMaxRank) return std::nullopt;
  if (r == 1 && s[0] == 1) {
    p.kind = StridedPlan::Memcpy;
    return p;
  }
  int b = -1;  // the input's innermost axis, when it is not the output's
  for (int k = 0; k < r - 1; ++k)
    if (s[static_cast<size_t>(k)] == 1) b = k;
  constexpr int64_t kTileMin =
      16;  // shorter axes waste most of a tile: the gather's reads coalesce well enough
  if (b >= 0 && d[static_cast<size_t>(r - 1)] >= kTileMin && d[static_cast<size_t>(b)] >= kTileMin) {
    const auto os = strides_of(d);
    TileParams& t = p.tile;
    t.na = d[static_cast<size_t>(r - 1)];
    t.sa = s[static_cast<size_t>(r - 1)];
    t.nb = d[static_cast<size_t>(b)];
    t.ob = os[static_cast<size_t>(b)];
    t.base = base;
    t.tiles_a = (t.na + kTile - 1) / kTile;
    t.tiles_b = (t.nb + kTile - 1) / kTile;
    t.tiles = t.tiles_a * t.tiles_b;
    t.nbatch = 0;
    for (int k = 0; k < r - 1; ++k) {
      if (k == b) continue;
      t.bdims[t.nbatch] = d[static_cast<size_t>(k)];
      t.bsrc[t.nbatch] = s[static_cast<size_t>(k)];
      t.bdst[t.nbatch] = os[static_cast<size_t>(k)];
      t.tiles *= d[static_cast<size_t>(k)];
      ++t.nbatch;
    }
    p.kind = StridedPlan::Tile;
    return p;
  }
  p.kind = StridedPlan::Gather;
  p.gather.rank = r;
  p.gather.base = base;
  for (int k = 0; k < r; ++k) {
    p.gather.dims[k] = d[static_cast<size_t>(k)];
    p.gather.strides[k] = s[static_cast<size_t>(k)];
  }
  if (auto v = plan_vec(d, s, base, elem)) {
    p.kind = StridedPlan::Vec;
    p.vec = *v;
  }
  return p;
}

}  // namespace kiln::cuda::movement
