// The per-run CPU executor (cpu_per_run_executor.h).
#include "backends/cpu/cpu_per_run_executor.h"

#include <chrono>
#include <cstring>
#include <map>
#include <unordered_map>

#include "device/kernel.h"
#include "device/per_run.h"
#include "device/plan.h"
#include "ops/op.h"

namespace kiln::cpu {
namespace {

bool byte_operands(const std::vector<const TensorData*>& in,
                   const std::vector<backend::LayerDesc::Operand>& out) {
  for (const TensorData* t : in)
    if (t && per_run::held_as_value(t->dtype())) return false;
  for (const backend::LayerDesc::Operand& o : out)
    if (o.present && per_run::held_as_value(o.dtype)) return false;
  return true;
}

std::vector<per_run::Operand> operands(const std::vector<const TensorData*>& in) {
  std::vector<per_run::Operand> ops;
  for (const TensorData* t : in) {
    per_run::Operand o;
    if (t) o = {true, t->dtype(), t->dims(), t};
    ops.push_back(o);
  }
  return ops;
}

class PerRunExecutor final : public Executor {
 public:
  explicit PerRunExecutor(const EnginePlan& plan) : plan_(plan), kernels_(plan.layers.size()) {
    const Graph& g = *plan.graph;
    for (const Tensor* t : g.inputs)
      if (!t->is_constant()) input_tensors_.push_back(t);
    inputs_.resize(input_tensors_.size());
    // A value is freed after the last layer that reads it; graph outputs are kept.
    for (size_t k = 0; k < plan.layers.size(); ++k)
      for (const Tensor* t : plan.layers[k].node->inputs())
        if (t) last_use_[t] = k;
    for (const Tensor* t : g.outputs) last_use_[t] = plan.layers.size();
  }

  void set_input(size_t index, const TensorData& value) override { inputs_[index] = value; }

  void run(const RunOptions& options, std::vector<double>& layer_ms, RunTimes& times) override {
    const auto start = std::chrono::steady_clock::now();
    values_.clear();
    for (size_t k = 0; k < input_tensors_.size(); ++k) {
      if (inputs_[k].empty_type()) throw Error("input '" + input_tensors_[k]->name + "' was not set");
      values_[input_tensors_[k]] = inputs_[k];
    }
    layer_ms.assign(options.profiling ? plan_.layers.size() : 0, 0.0);
    for (size_t k = 0; k < plan_.layers.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      run_layer(k);
      if (options.profiling)
        layer_ms[k] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    times = {};
    times.compute_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }

  TensorData output(size_t index) override {
    const Tensor* t = plan_.graph->outputs.at(index);
    if (auto* c = dynamic_cast<const Constant*>(t)) return c->values();
    auto it = values_.find(t);
    if (it == values_.end()) throw Error("output '" + t->name + "' was not computed (run() first)");
    return it->second;
  }

 private:
  const TensorData* value_of(const Tensor* t, const Node& n) const {
    if (!t) return nullptr;
    if (auto* c = dynamic_cast<const Constant*>(t)) return &c->values();
    auto it = values_.find(t);
    if (it == values_.end()) throw Error("node " + n.label() + ": input '" + t->name + "' has no value");
    return &it->second;
  }

  void run_layer(size_t k) {
    const Node& n = *plan_.layers[k].node;
    const ops::OpSchema* schema = ops::find_op(n.domain, n.op);
    std::vector<const TensorData*> in;
    for (const Tensor* t : n.inputs()) in.push_back(value_of(t, n));
    std::vector<TensorData> out(n.outputs().size());
    auto known = per_run::infer_outputs(n, plan_.graph->opset(n.domain), operands(in));
    if (known && byte_operands(in, *known)) {
      run_kernel(k, n, in, *known, out);
    } else {
      if (!schema || !schema->reference)
        throw Error("node " + n.label() + ": its output shapes depend on values and op '" + n.op +
                    "' has no reference kernel to compute them");
      ops::KernelContext ctx(n, plan_.graph->opset(n.domain));
      ctx.in = in;
      ctx.out.resize(n.outputs().size());
      ops::run_reference(*schema, ctx);
      out = std::move(ctx.out);
    }
    for (size_t o = 0; o < n.outputs().size(); ++o)
      if (const Tensor* t = n.output(o)) values_[t] = std::move(out[o]);
    for (const Tensor* t : n.inputs())
      if (t && !t->is_constant() && last_use_.at(t) == k) values_.erase(t);
  }

  // The kernel the builder would choose for these shapes, made on first use of each input signature.
  void run_kernel(size_t k, const Node& n, const std::vector<const TensorData*>& in,
                  const std::vector<backend::LayerDesc::Operand>& outs, std::vector<TensorData>& out) {
    std::unique_ptr<backend::Kernel>& kernel = kernels_[k][per_run::kernel_key(operands(in), {}, outs)];
    backend::LayerDesc desc;
    if (!kernel) {
      desc.node = &n;
      desc.opset = plan_.graph->opset(n.domain);
      desc.threads = plan_.options.threads;
      desc.options = &plan_.options;
      for (size_t i = 0; i < in.size(); ++i) {
        backend::LayerDesc::Operand o;
        if (in[i]) o = {in[i]->dtype(), in[i]->dims(), n.input(i)->is_constant() ? in[i] : nullptr, true};
        desc.inputs.push_back(o);
      }
      desc.outputs = outs;
      const backend::KernelFactory* f =
          backend::first_supporting(plan_.options.device, desc, plan_.options.reference_kernels);
      if (f) kernel = f->create(desc);
      if (!kernel)
        throw Error("node " + n.label() + ": no cpu kernel supports op '" + n.op + "' with these inputs");
    }
    std::vector<backend::TensorView> ins, views;
    for (const TensorData* t : in)
      ins.push_back(t ? backend::TensorView{t->dtype(), t->dims(), const_cast<void*>(t->raw())}
                      : backend::TensorView{});
    for (size_t o = 0; o < outs.size(); ++o) {
      if (!outs[o].present) {
        views.emplace_back();
        continue;
      }
      out[o] = TensorData(outs[o].dtype, outs[o].dims);
      views.push_back({outs[o].dtype, outs[o].dims, out[o].raw()});
    }
    kernel->run(ins, views);
  }

  const EnginePlan& plan_;
  std::vector<const Tensor*> input_tensors_;
  std::vector<TensorData> inputs_;
  std::unordered_map<const Tensor*, size_t> last_use_;
  std::unordered_map<const Tensor*, TensorData> values_;
  std::vector<std::map<std::string, std::unique_ptr<backend::Kernel>>>
      kernels_;  // per layer, per input shapes
};

}  // namespace

std::unique_ptr<Executor> make_per_run_executor(const EnginePlan& plan) {
  return std::make_unique<PerRunExecutor>(plan);
}

}  // namespace kiln::cpu
