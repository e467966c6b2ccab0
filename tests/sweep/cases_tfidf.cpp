// kiln_backend_sweep cases: TfIdfVectorizer over int32 / int64 tokens (small values, so that windows
// match): the ONNX tests' pools (bigrams with and without skips, unigrams and bigrams, a pool whose unigram
// level is empty), 1-D and 2-D inputs, modes TF / IDF / TFIDF with weights, trigrams, a repeated pool n-gram
// (the last index wins) and two n-grams counting into one column, max_gram_length beyond the pool's lengths,
// rows shorter than the n-grams, max_skip_count beyond the row, pool values no int32 token equals, and many
// rows and columns. Counts are exact, so the outputs must be bit for bit.
#include <string>

#include "cases_util.h"

namespace kiln::sweep {
namespace {

std::vector<Case> tfidf_cases(const std::string&, DType dt) {
  const Fill tokens{.lo = 0, .hi = 9, .whole = true}, few{.lo = 0, .hi = 3, .whole = true};
  struct Pool {
    std::vector<int64_t> counts, indexes, values;
  };
  auto make = [&](const std::string& label, const std::vector<int64_t>& x, Fill fill, const Pool& p,
                  int64_t min_n, int64_t max_n, int64_t skip, const std::string& mode,
                  const std::vector<float>& weights = {}) {
    Attributes a = attrs({{"min_gram_length", min_n},
                          {"max_gram_length", max_n},
                          {"max_skip_count", skip},
                          {"mode", mode},
                          {"ngram_counts", p.counts},
                          {"ngram_indexes", p.indexes},
                          {"pool_int64s", p.values}});
    if (!weights.empty()) a.set("weights", weights);
    Case c = make_case(dims_str(x) + " " + label + " " + mode + " n " + std::to_string(min_n) + ".." +
                           std::to_string(max_n) + " skip " + std::to_string(skip),
                       {input(dt, x, fill)}, std::move(a), 9);
    c.exact = true;
    return c;
  };
  const Pool onnx{{0, 4}, {0, 1, 2, 3, 4, 5, 6}, {2, 3, 5, 4, 5, 6, 7, 8, 6, 7}};
  const Pool level_empty{{0, 0}, {0, 1, 2}, {5, 6, 7, 8, 6, 7}};
  const Pool trigrams{{0, 3, 7}, {0, 1, 2, 3, 4, 5, 6, 7}, {0, 1, 2, 0, 1, 1, 2, 3, 0, 1, 2, 1, 2, 3, 0, 0}};
  // Unigram 1 twice (the second, index 2, wins: column 0 stays empty); bigrams (3, 0) and (0, 3) share 3.
  const Pool repeated{{0, 3}, {0, 1, 2, 3, 3}, {1, 2, 1, 3, 0, 0, 3}};
  const Pool wide{{0, 2}, {0, 1, 2}, {int64_t{1} << 40, 1, 1, int64_t{1} << 33}};
  const std::vector<float> weights{0.5f, 1.5f, 2.0f, 0.25f, 3.0f, 1.0f, 0.75f, 2.5f, 4.0f};
  std::vector<Case> out{
      make("onnx", {12}, tokens, onnx, 2, 2, 0, "TF"),
      make("onnx", {2, 6}, tokens, onnx, 2, 2, 5, "TF"),
      make("onnx", {2, 6}, tokens, onnx, 1, 2, 5, "TF"),
      make("onnx level empty", {12}, tokens, level_empty, 2, 2, 0, "TF"),
      make("onnx weights ignored", {3, 20}, tokens, onnx, 1, 2, 2, "TF", weights),
      make("trigrams", {5, 40}, few, trigrams, 1, 3, 2, "TFIDF", weights),
      make("trigrams", {7, 33}, few, trigrams, 2, 3, 1, "IDF", weights),
      make("trigrams no weights", {4, 25}, few, trigrams, 1, 3, 3, "TFIDF"),
      make("trigrams no weights", {4, 25}, few, trigrams, 3, 3, 0, "IDF"),
      make("repeated", {3, 30}, few, repeated, 1, 2, 1, "TF"),
      make("max_gram_length 5", {2, 30}, few, trigrams, 1, 5, 1, "TF"),
      make("short rows", {3, 1}, few, trigrams, 1, 3, 4, "TF"),
      make("skip beyond row", {2, 5}, few, trigrams, 2, 3, 10, "TF"),
      make("wide pool values", {2, 16}, few, wide, 1, 2, 3, "TF"),
      make("many rows", {64, 300}, few, trigrams, 1, 3, 4, "TFIDF", weights),
  };
  return out;
}

KILN_SWEEP_CASES(
    {.domain = "", .ops = {"TfIdfVectorizer"}, .dtypes = {DType::Int32, DType::Int64}, .cases = tfidf_cases});

}  // namespace
}  // namespace kiln::sweep
