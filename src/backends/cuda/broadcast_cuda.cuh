// Numpy broadcasting of N operands onto one output, for the CUDA kernels of logic_cuda.cu and
// int_arith_cuda.cu: planned on the host (per-operand strides, 0 along broadcast axes; size-1 axes dropped
// and adjacent axes merged where every operand walks them contiguously), then each output index is split into
// its operands' offsets on the device.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda::bcast {

constexpr int kMaxRank = 8;

template <int N>
struct Params {
  int rank;
  int64_t dims[kMaxRank];        // the output's, innermost last
  int64_t strides[N][kMaxRank];  // per operand
};

// The broadcast of `in` (numpy rules); nullopt when they do not broadcast.
inline std::optional<std::vector<int64_t>> broadcast_of(const std::vector<std::vector<int64_t>>& in) {
  size_t rank = 0;
  for (const auto& d : in) rank = d.size() > rank ? d.size() : rank;
  std::vector<int64_t> out(rank, 1);
  for (const auto& d : in)
    for (size_t k = 0; k < d.size(); ++k) {
      int64_t& o = out[rank - d.size() + k];
      if (d[k] == o || d[k] == 1) continue;
      if (o != 1) return std::nullopt;
      o = d[k];
    }
  return out;
}

// The plan of N operands `in` broadcast to `out`; nullopt unless `out` is exactly their broadcast and the
// merged rank fits kMaxRank.
template <int N>
std::optional<Params<N>> plan(const std::vector<std::vector<int64_t>>& in, const std::vector<int64_t>& out) {
  if (static_cast<int>(in.size()) != N || broadcast_of(in) != out) return std::nullopt;
  const size_t r = out.size();
  std::vector<std::vector<int64_t>> s(N, std::vector<int64_t>(r, 0));
  for (int j = 0; j < N; ++j) {
    const auto& d = in[static_cast<size_t>(j)];
    int64_t acc = 1;
    for (size_t k = d.size(); k-- > 0;) {
      s[static_cast<size_t>(j)][r - d.size() + k] = d[k] == 1 ? 0 : acc;
      acc *= d[k];
    }
  }
  std::vector<int64_t> md;
  std::vector<std::vector<int64_t>> ms(N);
  for (size_t k = 0; k < r; ++k) {
    if (out[k] == 1) continue;
    bool merge = !md.empty();
    for (int j = 0; j < N && merge; ++j)
      merge = ms[static_cast<size_t>(j)].back() == s[static_cast<size_t>(j)][k] * out[k];
    if (merge) {
      md.back() *= out[k];
      for (int j = 0; j < N; ++j) ms[static_cast<size_t>(j)].back() = s[static_cast<size_t>(j)][k];
    } else {
      md.push_back(out[k]);
      for (int j = 0; j < N; ++j) ms[static_cast<size_t>(j)].push_back(s[static_cast<size_t>(j)][k]);
    }
  }
  if (md.empty()) {  // a one-element output
    md.push_back(1);
    for (auto& v : ms) v.push_back(0);
  }
  if (md.size() > static_cast<size_t>(kMaxRank)) return std::nullopt;
  Params<N> p{};
  p.rank = static_cast<int>(md.size());
  for (size_t k = 0; k < md.size(); ++k) {
    p.dims[k] = md[k];
    for (int j = 0; j < N; ++j) p.strides[j][k] = ms[static_cast<size_t>(j)][k];
  }
  return p;
}

// The operands' offsets of output element i. I: the index type (32-bit when the output fits).
template <int N, typename I>
__device__ __forceinline__ void offsets(const Params<N>& p, I i, int64_t (&off)[N]) {
#pragma unroll
  for (int j = 0; j < N; ++j) off[j] = 0;
  I t = i;
#pragma unroll
  for (int k = kMaxRank - 1; k >= 0; --k) {
    if (k >= p.rank) continue;
    const I d = static_cast<I>(p.dims[k]);
    const I q = t / d;
    const int64_t c = static_cast<int64_t>(t - q * d);
#pragma unroll
    for (int j = 0; j < N; ++j) off[j] += c * p.strides[j][k];
    t = q;
  }
}

inline bool fits32(int64_t n) {
  return n < (int64_t{1} << 31);
}

}  // namespace kiln::cuda::bcast
