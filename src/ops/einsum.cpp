// Einsum: a sum over products of the operands, written as an equation such as "bij,bjk->bik". Each letter
// labels a dim; "..." stands for the remaining dims (right-aligned and broadcast across operands); a letter
// repeated within one operand takes its diagonal; letters missing from the output are summed over. Without
// "->" the output is the ellipsis dims, then the letters used exactly once, in ASCII order (numpy's rule).
// The reference kernel loops over every combination of label values: obviously correct, not fast.
#include "ops/einsum.h"

#include "ops/indexing.h"

namespace kiln::ops {
namespace {

constexpr int kEllipsis = kEinsumEllipsis;
using Equation = EinsumEquation;

// Letters of one term and whether (and where) it has "..."; ellipsis_at is -1 without one.
std::vector<int> parse_term(const std::string& term, int& ellipsis_at) {
  std::vector<int> labels;
  ellipsis_at = -1;
  for (size_t i = 0; i < term.size(); ++i) {
    if (term.compare(i, 3, "...") == 0 && ellipsis_at < 0) {
      ellipsis_at = static_cast<int>(labels.size());
      i += 2;
    } else if (std::isalpha(static_cast<unsigned char>(term[i]))) {
      labels.push_back(term[i]);
    } else {
      throw Error("equation term '" + term + "' has an unexpected character at position " +
                  std::to_string(i));
    }
  }
  return labels;
}

std::vector<int> with_ellipsis(std::vector<int> labels, int at, int count, int first_id) {
  if (at < 0) return labels;
  std::vector<int> ids;
  for (int e = 0; e < count; ++e) ids.push_back(kEllipsis + first_id + e);
  labels.insert(labels.begin() + at, ids.begin(), ids.end());
  return labels;
}

}  // namespace

EinsumEquation parse_einsum(const std::string& equation, const std::vector<int64_t>& ranks) {
  std::string eq;
  for (char c : equation)
    if (!std::isspace(static_cast<unsigned char>(c))) eq += c;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms{""};
  for (char c : lhs) {
    if (c == ',')
      terms.emplace_back();
    else
      terms.back().push_back(c);
  }
  if (terms.size() != ranks.size())
    throw Error("equation '" + eq + "' has " + std::to_string(terms.size()) + " operand terms for " +
                std::to_string(ranks.size()) + " inputs");
  Equation e;
  std::vector<std::pair<std::vector<int>, int>> parsed;
  for (size_t k = 0; k < terms.size(); ++k) {
    int at = -1;
    auto labels = parse_term(terms[k], at);
    const int64_t extra = ranks[k] - static_cast<int64_t>(labels.size());
    if (extra < 0 || (at < 0 && extra != 0))
      throw Error("equation term '" + terms[k] + "' does not match input " + std::to_string(k) + " of rank " +
                  std::to_string(ranks[k]));
    e.ellipsis_rank = std::max(e.ellipsis_rank, static_cast<int>(extra));
    parsed.emplace_back(std::move(labels), at);
  }
  std::vector<int> uses(kEllipsis, 0);
  for (size_t k = 0; k < parsed.size(); ++k) {
    const int extra = static_cast<int>(ranks[k]) - static_cast<int>(parsed[k].first.size());
    for (int l : parsed[k].first) ++uses[l];
    e.operands.push_back(with_ellipsis(parsed[k].first, parsed[k].second, extra, e.ellipsis_rank - extra));
  }
  if (arrow == std::string::npos) {
    e.output = with_ellipsis({}, 0, e.ellipsis_rank, 0);
    for (int l = 0; l < kEllipsis; ++l)
      if (uses[l] == 1) e.output.push_back(l);
    return e;
  }
  int at = -1;
  const std::string rhs = eq.substr(arrow + 2);
  std::vector<int> out = parse_term(rhs, at);
  std::vector<int> seen(kEllipsis, 0);
  for (int l : out)
    if (!uses[l] || seen[l]++)
      throw Error("output label '" + std::string(1, static_cast<char>(l)) +
                  "' is repeated or not in any input");
  e.output = with_ellipsis(out, at, at < 0 ? 0 : e.ellipsis_rank, 0);
  return e;
}

namespace {

Equation parse(const auto& ctx, const std::vector<int64_t>& ranks) {
  if (!ctx.node.attrs.has("equation")) ctx.fail("attribute 'equation' is required");
  return parse_einsum(ctx.node.attrs.get_string("equation", ""), ranks);
}

// A dim's static size; -1 when it is unknown or symbolic.
int64_t static_of(int64_t n) {
  return n;
}
int64_t static_of(const Dim& d) {
  return d.value;
}

// Size of every label id (index = id), from the operands' dims: letters must agree, ellipsis dims broadcast
// (size 1 against any). A static size replaces an unknown one.
template <class D, class GetDim>
std::vector<D> label_sizes(const auto& ctx, const Equation& e, GetDim dim_of) {
  std::vector<D> size(kEllipsis + e.ellipsis_rank, D(1));
  std::vector<bool> set(size.size(), false);
  for (size_t k = 0; k < e.operands.size(); ++k)
    for (size_t d = 0; d < e.operands[k].size(); ++d) {
      const int l = e.operands[k][d];
      const D n = dim_of(k, d);
      const int64_t v = static_of(n), cur = static_of(size[l]);
      if (l >= kEllipsis && v == 1) continue;
      if (set[l] && v >= 0 && cur >= 0 && v != cur)
        ctx.fail("input " + std::to_string(k) + " dim " + std::to_string(d) + " has size " +
                 std::to_string(v) + " but its label has size " + std::to_string(cur) + " elsewhere");
      if (!set[l] || (cur < 0 && v >= 0)) size[l] = n;
      set[l] = true;
    }
  return size;
}

void infer_einsum(InferContext& ctx) {
  std::vector<int64_t> ranks;
  std::vector<Shape> shapes;
  const DType dt = ctx.input(0).dtype;
  for (size_t k = 0; k < ctx.num_inputs(); ++k) {
    if (ctx.input(k).dtype != DType::Undefined && dt != DType::Undefined && ctx.input(k).dtype != dt)
      ctx.fail("all inputs must have one dtype; input " + std::to_string(k) + " is " +
               dtype_name(ctx.input(k).dtype));
    auto s = in_shape(ctx, k);
    if (!s) return set_out(ctx, 0, dt, std::nullopt);
    ranks.push_back(static_cast<int64_t>(s->size()));
    shapes.push_back(*s);
  }
  const Equation e = parse(ctx, ranks);
  auto size = label_sizes<Dim>(ctx, e, [&](size_t k, size_t d) { return shapes[k][d]; });
  Shape out;
  for (int l : e.output) out.push_back(size[l]);
  set_out(ctx, 0, dt, out);
}

void einsum_kernel(KernelContext& ctx) {
  std::vector<int64_t> ranks;
  for (size_t k = 0; k < ctx.in.size(); ++k) {
    if (ctx.input(k).dtype() != ctx.input(0).dtype()) ctx.fail("all inputs must have one dtype");
    ranks.push_back(ctx.input(k).rank());
  }
  const Equation e = parse(ctx, ranks);
  const auto size = label_sizes<int64_t>(ctx, e, [&](size_t k, size_t d) { return ctx.input(k).dims()[d]; });
  // Loop labels: the output's, then the summed ones. Each operand's stride per loop label adds up the strides
  // of its dims with that label (a repeated label walks the diagonal); broadcast dims get none.
  std::vector<int> loop = e.output;
  std::vector<bool> in_loop(size.size(), false);
  for (int l : loop) in_loop[l] = true;
  for (const auto& labels : e.operands)
    for (int l : labels)
      if (!in_loop[l]) {
        loop.push_back(l);
        in_loop[l] = true;
      }
  std::vector<int64_t> loop_dims, out_dims;
  for (int l : loop) loop_dims.push_back(size[l]);
  for (int l : e.output) out_dims.push_back(size[l]);
  std::vector<std::vector<int64_t>> strides(e.operands.size(), std::vector<int64_t>(loop.size(), 0));
  for (size_t k = 0; k < e.operands.size(); ++k) {
    const auto& dims = ctx.input(k).dims();
    const std::vector<int64_t> s = strides_of(dims);
    for (size_t d = 0; d < dims.size(); ++d)
      if (dims[d] != 1)
        strides[k][std::find(loop.begin(), loop.end(), e.operands[k][d]) - loop.begin()] += s[d];
  }
  std::vector<int64_t> out_strides = strides_of(out_dims);
  out_strides.resize(loop.size(), 0);
  TensorData out(ctx.input(0).dtype(), out_dims);
  dispatch(ctx, out.dtype(), [&](auto ty) {
    using T = decltype(ty);
    if constexpr (T::is_bool) {
      unsupported(ctx, out.dtype());
    } else {
      // Floats accumulate in double; integers wrap in uint64 (no signed overflow).
      using Acc = std::conditional_t<T::is_float, double, uint64_t>;
      std::vector<Acc> acc(static_cast<size_t>(out.numel()), Acc(0));
      for_each_index(loop_dims, [&](const std::vector<int64_t>& at) {
        Acc p = 1;
        for (size_t k = 0; k < e.operands.size(); ++k)
          p *= static_cast<Acc>(
              T::load(ctx.input(k).template data<typename T::storage>()[dot(at, strides[k])]));
        acc[dot(at, out_strides)] += p;
      });
      auto* o = out.data<typename T::storage>();
      for (size_t i = 0; i < acc.size(); ++i) o[i] = T::store(static_cast<typename T::compute>(acc[i]));
    }
  });
  ctx.out[0] = out;
}

KILN_REGISTER_OP(
    {.op = "Einsum", .max_inputs = kVariadic, .infer = infer_einsum, .reference = einsum_kernel});

}  // namespace
}  // namespace kiln::ops
