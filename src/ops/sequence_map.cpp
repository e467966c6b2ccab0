// SequenceMap(input_sequence, additional_inputs..., captured...): runs `body` once per position i of the
// input sequence, on element i of every sequence input and on every tensor input as it is (plus captured
// outer-scope values, graph_eval.h). Output k is the sequence of the body's output k.
#include "ops/graph_eval.h"
#include "ops/sequence_util.h"
#include "ops/util.h"

namespace kiln::ops {
namespace {

void infer_map(InferContext& ctx) {
  const size_t captured = captured_count(ctx);
  const Graph& body = subgraph(ctx, "body", ctx.in.size(), static_cast<int64_t>(ctx.out.size()));
  if (ctx.input(0).dtype != DType::Undefined && ctx.input(0).dtype != DType::Sequence)
    ctx.fail(std::string("input 0 must be a sequence, not ") + dtype_name(ctx.input(0).dtype));
  std::vector<InputInfo> in;
  for (size_t k = 0; k < ctx.in.size(); ++k) {
    InputInfo i = ctx.input(k);
    if (k + captured < ctx.in.size() && i.dtype == DType::Sequence) {  // the body sees one element
      std::shared_ptr<const ElementType> e = element_of(ctx, k);
      i = InputInfo{};
      i.present = true;
      if (e) i.dtype = e->dtype, i.shape = e->shape, i.element = e->element;
    }
    in.push_back(std::move(i));
  }
  const std::vector<OutputInfo> out = infer_graph(ctx, body, in);
  for (size_t k = 0; k < ctx.out.size(); ++k)
    set_container_out(ctx, k, DType::Sequence, element_type(out[k].dtype, out[k].shape));
}

void map_kernel(KernelContext& ctx) {
  const size_t captured = captured_count(ctx);
  const Graph& body = subgraph(ctx, "body", ctx.in.size(), static_cast<int64_t>(ctx.out.size()));
  if (ctx.input(0).dtype() != DType::Sequence)
    ctx.fail(std::string("input 0 must be a sequence, not ") + dtype_name(ctx.input(0).dtype()));
  const size_t n = ctx.input(0).elements().size();
  for (size_t k = 1; k + captured < ctx.in.size(); ++k)
    if (ctx.input(k).dtype() == DType::Sequence && ctx.input(k).elements().size() != n)
      ctx.fail("sequence input " + std::to_string(k) + " has " +
               std::to_string(ctx.input(k).elements().size()) + " tensors, but input 0 has " +
               std::to_string(n));
  std::vector<std::vector<TensorData>> results(ctx.out.size());
  for (size_t i = 0; i < n; ++i) {
    std::vector<TensorData> in;
    for (size_t k = 0; k < ctx.in.size(); ++k) {
      const TensorData& x = ctx.input(k);
      in.push_back(k + captured < ctx.in.size() && x.dtype() == DType::Sequence ? x.elements()[i] : x);
    }
    std::vector<TensorData> out = run_graph(ctx, body, in);
    for (size_t k = 0; k < out.size(); ++k) results[k].push_back(std::move(out[k]));
  }
  for (size_t k = 0; k < ctx.out.size(); ++k) {
    // An empty sequence maps to empty sequences of the body's declared output dtypes.
    const DType dtype = n ? results[k][0].dtype() : body.outputs[k]->dtype;
    for (const TensorData& t : results[k])
      if (t.dtype() != dtype || dtype_is_container(t.dtype()))
        ctx.fail("body output " + std::to_string(k) + " is " + dtype_name(t.dtype()) +
                 " at one position and " + dtype_name(dtype) +
                 " at another; a sequence holds tensors of one dtype");
    ctx.out[k] = TensorData::sequence(dtype, std::move(results[k]));
  }
}

KILN_REGISTER_OP({.op = "SequenceMap",
                  .since_opset = 17,
                  .max_inputs = kVariadic,
                  .min_outputs = 1,
                  .max_outputs = kVariadic,
                  .infer = infer_map,
                  .reference = map_kernel});

}  // namespace
}  // namespace kiln::ops
