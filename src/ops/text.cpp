// Text ops over string (and token id) tensors: StringNormalizer and TfIdfVectorizer.
#include <algorithm>
#include <cctype>
#include <map>

#include "ops/util.h"

namespace kiln::ops {
namespace {

std::vector<std::string> strings_attr(const Node& n, const std::string& name) {
  const Attribute* a = n.attrs.find(name);
  const auto* v = a ? std::get_if<std::vector<std::string>>(&a->value) : nullptr;
  return v ? *v : std::vector<std::string>{};
}

// Case changes are ASCII only: bytes of multi-byte UTF-8 characters are left as they are.
std::string change_case(std::string s, bool upper) {
  for (char& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) c = static_cast<char>(upper ? std::toupper(u) : std::tolower(u));
  }
  return s;
}

// ---------------------------------------------------------------------------------------- StringNormalizer
// X: [C] or [1, C] strings. Drops the stopwords (compared ignoring case unless is_case_sensitive), then
// changes case (case_change_action LOWER/UPPER/NONE). When every string is dropped the output holds one empty
// string.
void infer_normalizer(InferContext& ctx) {
  const InputInfo& x = ctx.input(0);
  if (x.dtype != DType::Undefined && x.dtype != DType::String)
    ctx.fail(std::string("X must be string, not ") + dtype_name(x.dtype));
  const std::optional<Shape> s = in_shape(ctx, 0);
  if (s && (s->empty() || s->size() > 2 || (s->size() == 2 && (*s)[0].is_static() && (*s)[0].value != 1)))
    ctx.fail("X must be [C] or [1, C], not " + to_string(*s));
  set_out(ctx, 0, DType::String,
          s ? std::optional<Shape>(s->size() == 1 ? Shape{Dim()} : Shape{1, Dim()}) : std::nullopt);
}

void normalizer_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.dtype() != DType::String) ctx.fail(std::string("X must be string, not ") + dtype_name(x.dtype()));
  if (x.rank() < 1 || x.rank() > 2 || (x.rank() == 2 && x.dims()[0] != 1))
    ctx.fail("X must be [C] or [1, C], not " + describe_tensor(x.dtype(), x.dims()));
  const std::string action = ctx.node.attrs.get_string("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER")
    ctx.fail("case_change_action '" + action + "' is not NONE, LOWER or UPPER");
  const bool sensitive = ctx.node.attrs.get_int("is_case_sensitive", 0) != 0;
  std::vector<std::string> stop = strings_attr(ctx.node, "stopwords");
  if (!sensitive)
    for (std::string& w : stop) w = change_case(w, false);
  std::vector<std::string> kept;
  for (const std::string& s : x.strings()) {
    if (std::find(stop.begin(), stop.end(), sensitive ? s : change_case(s, false)) != stop.end()) continue;
    kept.push_back(action == "NONE" ? s : change_case(s, action == "UPPER"));
  }
  if (kept.empty()) kept.emplace_back();
  const auto c = static_cast<int64_t>(kept.size());
  TensorData out(DType::String, x.rank() == 1 ? std::vector<int64_t>{c} : std::vector<int64_t>{1, c});
  out.strings() = std::move(kept);
  ctx.out[0] = out;
}
KILN_REGISTER_OP(
    {.op = "StringNormalizer", .since_opset = 10, .infer = infer_normalizer, .reference = normalizer_kernel});

// ----------------------------------------------------------------------------------------- TfIdfVectorizer
// X: [C] or [N, C] tokens (int32, int64 or string). Counts, per row, the n-grams of the pool (pool_int64s or
// pool_strings: ngram_counts[n-1] is where the n-grams of length n start) with min_gram_length <= n <=
// max_gram_length; an n-gram of n >= 2 takes every (k+1)-th token for each skip 0 <= k <= max_skip_count. The
// j-th pool n-gram counts into output ngram_indexes[j]. mode TF: the counts; IDF: weights[j] where counted;
// TFIDF: counts times weights (weights default to 1).
struct Pool {
  std::map<std::vector<std::string>, int64_t> grams;  // n-gram (tokens as text) -> output index
  int64_t width = 0;
};

Pool read_pool(const KernelContext& ctx) {
  const Attributes& a = ctx.node.attrs;
  const std::vector<int64_t> counts = a.get_ints("ngram_counts"), indexes = a.get_ints("ngram_indexes");
  std::vector<std::string> pool = strings_attr(ctx.node, "pool_strings");
  for (int64_t v : a.get_ints("pool_int64s")) pool.push_back(std::to_string(v));
  Pool p;
  size_t j = 0;  // n-gram number, across lengths
  for (size_t n = 1; n <= counts.size(); ++n) {
    const int64_t begin = counts[n - 1],
                  end = n < counts.size() ? counts[n] : static_cast<int64_t>(pool.size());
    if (begin < 0 || end < begin || end > static_cast<int64_t>(pool.size()) ||
        (end - begin) % static_cast<int64_t>(n))
      ctx.fail("ngram_counts " + std::to_string(n - 1) + " gives pool range [" + std::to_string(begin) +
               ", " + std::to_string(end) + "), not whole " + std::to_string(n) + "-grams of a pool of " +
               std::to_string(pool.size()));
    for (int64_t i = begin; i < end; i += static_cast<int64_t>(n), ++j) {
      if (j >= indexes.size()) ctx.fail("ngram_indexes has fewer entries than the pool has n-grams");
      if (indexes[j] < 0 || indexes[j] > (int64_t{1} << 30))
        ctx.fail("ngram_indexes entry " + std::to_string(indexes[j]) + " is out of range");
      p.grams[std::vector<std::string>(pool.begin() + i, pool.begin() + i + static_cast<int64_t>(n))] =
          indexes[j];
      p.width = std::max(p.width, indexes[j] + 1);
    }
  }
  return p;
}

void infer_tfidf(InferContext& ctx) {
  const std::optional<Shape> s = in_shape(ctx, 0);
  if (s && (s->empty() || s->size() > 2)) ctx.fail("X must be [C] or [N, C], not " + to_string(*s));
  const std::vector<int64_t> idx = ctx.node.attrs.get_ints("ngram_indexes");
  const Dim width = idx.empty() ? Dim() : Dim(*std::max_element(idx.begin(), idx.end()) + 1);
  std::optional<Shape> out;
  if (s) out = s->size() == 1 ? Shape{width} : Shape{(*s)[0], width};
  set_out(ctx, 0, DType::Float, out);
}

void tfidf_kernel(KernelContext& ctx) {
  const TensorData& x = ctx.input(0);
  if (x.dtype() != DType::String && x.dtype() != DType::Int32 && x.dtype() != DType::Int64)
    ctx.fail(std::string("X must be string, int32 or int64, not ") + dtype_name(x.dtype()));
  if (x.rank() < 1 || x.rank() > 2)
    ctx.fail("X must be [C] or [N, C], not " + describe_tensor(x.dtype(), x.dims()));
  const Attributes& a = ctx.node.attrs;
  const int64_t min_n = a.get_int("min_gram_length", 1), max_n = a.get_int("max_gram_length", 1);
  const int64_t max_skip = a.get_int("max_skip_count", 0);
  if (min_n < 1 || max_n < min_n || max_skip < 0)
    ctx.fail("needs 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0");
  const std::string mode = a.get_string("mode", "TF");
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF")
    ctx.fail("mode '" + mode + "' is not TF, IDF or TFIDF");
  if ((x.dtype() == DType::String) != a.has("pool_strings"))
    ctx.fail(x.dtype() == DType::String ? "string tokens need pool_strings"
                                        : "integer tokens need pool_int64s");
  const Pool pool = read_pool(ctx);
  // No pool n-gram is longer than ngram_counts has lengths (nor a row): longer windows count nothing.
  const int64_t top_n =
      std::min({max_n, static_cast<int64_t>(a.get_ints("ngram_counts").size()), x.dims().back()});
  std::vector<float> weights = a.get_floats("weights");
  if (!weights.empty() && static_cast<int64_t>(weights.size()) < pool.width)
    ctx.fail("weights has fewer entries than the output");
  const int64_t rows = x.rank() == 2 ? x.dims()[0] : 1, cols = x.dims().back();
  auto token = [&](int64_t i) {
    return x.dtype() == DType::String ? x.strings()[static_cast<size_t>(i)] : std::to_string(x.as_int64(i));
  };
  TensorData out(DType::Float,
                 x.rank() == 2 ? std::vector<int64_t>{rows, pool.width} : std::vector<int64_t>{pool.width});
  float* y = out.data<float>();
  std::vector<std::string> gram;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> count(static_cast<size_t>(pool.width), 0.0f);
    for (int64_t n = min_n; n <= top_n; ++n)
      for (int64_t skip = 0; skip <= (n == 1 ? 0 : std::min(max_skip, cols)); ++skip)
        for (int64_t start = 0; start + (n - 1) * (skip + 1) < cols; ++start) {
          gram.clear();
          for (int64_t t = 0; t < n; ++t) gram.push_back(token(r * cols + start + t * (skip + 1)));
          if (auto it = pool.grams.find(gram); it != pool.grams.end())
            count[static_cast<size_t>(it->second)] += 1;
        }
    for (int64_t j = 0; j < pool.width; ++j) {
      const float w = weights.empty() ? 1.0f : weights[static_cast<size_t>(j)],
                  c = count[static_cast<size_t>(j)];
      y[r * pool.width + j] = mode == "TF" ? c : mode == "IDF" ? (c > 0 ? w : 0.0f) : c * w;
    }
  }
  ctx.out[0] = out;
}
KILN_REGISTER_OP(
    {.op = "TfIdfVectorizer", .since_opset = 9, .infer = infer_tfidf, .reference = tfidf_kernel});

}  // namespace
}  // namespace kiln::ops
