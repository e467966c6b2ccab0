// cuda.tfidf: TfIdfVectorizer (src/ops/text.cpp is the oracle) over int32 / int64 tokens X [C] or [N, C],
// float output [W] or [N, W]. The pool (pool_int64s, ngram_counts, ngram_indexes), the gram lengths, the
// mode and the weights are attributes, parsed at create time as the reference parses them and uploaded:
//   - a pool n-gram that appears twice keeps its last output index (the reference's map);
//   - only n-grams of length min_gram_length..min(max_gram_length, lengths in ngram_counts) are counted;
//   - the output width W is the largest index of any pool n-gram plus one.
// The n-grams are grouped by output column (several may share one). One thread per (row, column) counts,
// for each of the column's n-grams, the windows that match: every start, and for n >= 2 every skip
// 0..min(max_skip_count, C) (taking every (skip+1)-th token). Counts are float increments of 1, as in the
// reference, so they are exact (bit for bit). mode TF: the count; IDF: the weight where counted; TFIDF:
// count times weight (weights default to 1).
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cuda/cuda_device.cuh"

namespace kiln::cuda {
namespace {

using backend::KernelFactory;
using backend::LayerDesc;
using backend::TensorView;

constexpr int kThreads = 128;

enum class Mode { TF, IDF, TFIDF };

// The uploaded pool: column j's n-grams are gram numbers col_begin[j] .. col_begin[j + 1]; gram g's tokens
// are tokens[gram_begin[g] .. gram_begin[g + 1]).
struct PoolView {
  const int64_t* col_begin;
  const int64_t* gram_begin;
  const int64_t* tokens;
  const float* weights;  // null: all 1
};

template <typename I>
__global__ void tfidf_kernel(const I* x, float* y, PoolView pool, int64_t rows, int64_t cols, int64_t width,
                             int64_t max_skip, Mode mode) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < rows * width;
       e += stride) {
    const int64_t r = e / width, j = e % width;
    const I* row = x + r * cols;
    float count = 0;
    for (int64_t g = pool.col_begin[j]; g < pool.col_begin[j + 1]; ++g) {
      const int64_t* gram = pool.tokens + pool.gram_begin[g];
      const int64_t n = pool.gram_begin[g + 1] - pool.gram_begin[g];
      const int64_t top_skip = n == 1 ? 0 : min(max_skip, cols);
      for (int64_t skip = 0; skip <= top_skip; ++skip)
        for (int64_t start = 0; start + (n - 1) * (skip + 1) < cols; ++start) {
          bool match = true;
          for (int64_t t = 0; t < n && match; ++t)
            match = static_cast<int64_t>(row[start + t * (skip + 1)]) == gram[t];
          if (match) count += 1.0f;
        }
    }
    const float w = pool.weights ? pool.weights[j] : 1.0f;
    y[e] = mode == Mode::TF ? count : mode == Mode::IDF ? (count > 0 ? w : 0.0f) : count * w;
  }
}

struct Plan {
  DType dtype = DType::Undefined;
  int64_t rows = 1, cols = 0, width = 0, max_skip = 0;
  Mode mode = Mode::TF;
  std::vector<int64_t> col_begin, gram_begin, tokens;
  std::vector<float> weights;
};

// The plan, or false when this kernel cannot run the layer (or the reference would refuse it). Throws on
// missing or mistyped attributes.
bool plan_tfidf(const LayerDesc& d, Plan& p) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1 || !d.inputs[0].present || !d.outputs[0].present)
    return false;
  const auto& x = d.inputs[0];
  if ((x.dtype != DType::Int32 && x.dtype != DType::Int64) || x.dims.empty() || x.dims.size() > 2)
    return false;
  const Attributes& a = d.node->attrs;
  if (a.has("pool_strings")) return false;  // integer tokens need pool_int64s (the reference refuses)
  const int64_t min_n = a.get_int("min_gram_length", 1), max_n = a.get_int("max_gram_length", 1);
  p.max_skip = a.get_int("max_skip_count", 0);
  if (min_n < 1 || max_n < min_n || p.max_skip < 0) return false;
  const std::string mode = a.get_string("mode", "TF");
  if (mode == "TF")
    p.mode = Mode::TF;
  else if (mode == "IDF")
    p.mode = Mode::IDF;
  else if (mode == "TFIDF")
    p.mode = Mode::TFIDF;
  else
    return false;
  // The pool as the reference reads it: n-gram -> output index, the last of repeated n-grams winning.
  const std::vector<int64_t> counts = a.get_ints("ngram_counts"), indexes = a.get_ints("ngram_indexes");
  const std::vector<int64_t> pool = a.get_ints("pool_int64s");
  const int64_t pool_size = static_cast<int64_t>(pool.size());
  std::map<std::vector<int64_t>, int64_t> grams;
  size_t j = 0;
  for (size_t n = 1; n <= counts.size(); ++n) {
    const int64_t begin = counts[n - 1], end = n < counts.size() ? counts[n] : pool_size;
    if (begin < 0 || end < begin || end > pool_size || (end - begin) % static_cast<int64_t>(n)) return false;
    for (int64_t i = begin; i < end; i += static_cast<int64_t>(n), ++j) {
      if (j >= indexes.size() || indexes[j] < 0 || indexes[j] > (int64_t{1} << 30)) return false;
      grams[std::vector<int64_t>(pool.begin() + i, pool.begin() + i + static_cast<int64_t>(n))] = indexes[j];
      p.width = std::max(p.width, indexes[j] + 1);
    }
  }
  p.dtype = x.dtype;
  p.rows = x.dims.size() == 2 ? x.dims[0] : 1;
  p.cols = x.dims.back();
  const std::vector<int64_t> out_dims =
      x.dims.size() == 2 ? std::vector<int64_t>{p.rows, p.width} : std::vector<int64_t>{p.width};
  if (d.outputs[0].dtype != DType::Float || d.outputs[0].dims != out_dims) return false;
  p.weights = a.get_floats("weights");
  if (!p.weights.empty() && static_cast<int64_t>(p.weights.size()) < p.width) return false;
  p.weights.resize(p.weights.empty() ? 0 : static_cast<size_t>(p.width));
  // Group the countable n-grams by column (CSR); longer ones than ngram_counts has lengths never match.
  const int64_t top_n = std::min(max_n, static_cast<int64_t>(counts.size()));
  std::vector<std::vector<const std::vector<int64_t>*>> by_column(static_cast<size_t>(p.width));
  for (const auto& [gram, column] : grams) {
    const int64_t n = static_cast<int64_t>(gram.size());
    if (n >= min_n && n <= top_n) by_column[static_cast<size_t>(column)].push_back(&gram);
  }
  p.col_begin.push_back(0);
  p.gram_begin.push_back(0);
  for (const auto& column : by_column) {
    for (const std::vector<int64_t>* gram : column) {
      p.tokens.insert(p.tokens.end(), gram->begin(), gram->end());
      p.gram_begin.push_back(static_cast<int64_t>(p.tokens.size()));
    }
    p.col_begin.push_back(static_cast<int64_t>(p.gram_begin.size()) - 1);
  }
  return true;
}

// Uploads a host vector. An empty one (no pool n-grams, no weights) is never read: null is fine.
template <typename V>
DeviceBuffer upload(const std::vector<V>& v) {
  return DeviceBuffer(v.data(), v.size() * sizeof(V));  // waits until the copy has landed
}

class TfIdfKernel final : public CudaKernel {
 public:
  explicit TfIdfKernel(const Plan& p)
      : p_(p),
        col_begin_(upload(p.col_begin)),
        gram_begin_(upload(p.gram_begin)),
        tokens_(upload(p.tokens)),
        weights_(upload(p.weights)) {}

  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = p_.rows * p_.width;
    if (total == 0) return;
    const PoolView pool{col_begin_.as<int64_t>(), gram_begin_.as<int64_t>(), tokens_.as<int64_t>(),
                        p_.weights.empty() ? nullptr : weights_.as<float>()};
    float* y = static_cast<float*>(out[0].data);
    const unsigned int grid = blocks_for(total, kThreads);
    if (p_.dtype == DType::Int64)
      tfidf_kernel<int64_t><<<grid, kThreads, 0, rc.stream>>>(
          static_cast<const int64_t*>(in[0].data), y, pool, p_.rows, p_.cols, p_.width, p_.max_skip, p_.mode);
    else
      tfidf_kernel<int32_t><<<grid, kThreads, 0, rc.stream>>>(
          static_cast<const int32_t*>(in[0].data), y, pool, p_.rows, p_.cols, p_.width, p_.max_skip, p_.mode);
    KILN_CUDA_CHECK_LAUNCH();
  }
  std::string describe() const override { return "one thread per (row, output column)"; }

 private:
  Plan p_;
  DeviceBuffer col_begin_, gram_begin_, tokens_, weights_;
};

KILN_REGISTER_KERNEL((planned_factory<Plan, TfIdfKernel>("cuda.tfidf", "TfIdfVectorizer", plan_tfidf)));

}  // namespace
}  // namespace kiln::cuda
