// The per-run CUDA executor. Each layer, in order: its output shapes are inferred from this run's inputs
// (small inputs — up to kHostValueElements — copied to the host first, since inference reads values such as
// a Range's limit), a CUDA kernel is chosen for those shapes (the small inputs' values given to the factory
// as constants, the kernel kept per shapes and values), its outputs are allocated and it is enqueued. A layer
// whose outputs no inference can size (NonZero, Unique), whose values are host-only (strings, sequences,
// optionals) or that no CUDA kernel takes runs its reference kernel on the host when the build allows host
// fallback; otherwise the run fails naming it. No CUDA graph: the work differs run to run.
#include "backends/cuda/cuda_per_run_executor.h"

#include <chrono>
#include <cstring>
#include <map>
#include <unordered_map>

#include "backends/cuda/cuda_common.h"
#include "device/per_run.h"
#include "device/plan.h"
#include "ops/op.h"

namespace kiln::cuda {
namespace {

// Inputs this small are copied to the host for shape inference and handed to the factory as constants.
constexpr int64_t kHostValueElements = 64;

// A value of this run: on the device, on the host, or both (each copy made when first needed).
struct Value {
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  std::shared_ptr<DeviceBuffer> device;  // shared: a constant's upload is kept across runs
  std::optional<TensorData> host;
};

class PerRunExecutor final : public Executor {
 public:
  explicit PerRunExecutor(const EnginePlan& plan) : plan_(plan), kernels_(plan.layers.size()) {
    KILN_CUDA_CHECK(cudaSetDevice(0));
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    for (const Tensor* t : plan.graph->inputs)
      if (!t->is_constant()) input_tensors_.push_back(t);
    inputs_.resize(input_tensors_.size());
    for (size_t k = 0; k < plan.layers.size(); ++k)
      for (const Tensor* t : plan.layers[k].node->inputs())
        if (t) last_use_[t] = k;
    for (const Tensor* t : plan.graph->outputs) last_use_[t] = plan.layers.size();
  }
  ~PerRunExecutor() override {
    values_.clear();
    kernels_.clear();
    for (void* p : staging_) cudaFreeHost(p);
    if (stream_) cudaStreamDestroy(stream_);
  }

  void set_input(size_t index, const TensorData& value) override { inputs_[index] = value; }

  // Shape inference reads values on the host, so device memory comes and goes through it here (on the
  // caller's stream, which is synchronized before returning).
  void set_input_device(size_t index, const void* src, const std::vector<int64_t>& dims,
                        void* stream) override {
    const auto caller = static_cast<cudaStream_t>(stream);
    TensorData value(input_tensors_[index]->dtype, dims);
    if (value.nbytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(value.raw(), src, value.nbytes(), cudaMemcpyDeviceToHost, caller));
    KILN_CUDA_CHECK(cudaStreamSynchronize(caller));
    inputs_[index] = std::move(value);
  }
  void copy_output_to_device(size_t index, void* dst, void* stream) override {
    const auto caller = static_cast<cudaStream_t>(stream);
    const TensorData value = output(index);
    if (value.nbytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(dst, value.raw(), value.nbytes(), cudaMemcpyHostToDevice, caller));
    KILN_CUDA_CHECK(cudaStreamSynchronize(caller));  // `value` is pageable and freed on return
  }

  void run(const RunOptions& options, std::vector<double>& layer_ms, RunTimes& times) override {
    const auto start = std::chrono::steady_clock::now();
    values_.clear();
    for (size_t k = 0; k < input_tensors_.size(); ++k) {
      if (inputs_[k].empty_type()) throw Error("input '" + input_tensors_[k]->name + "' was not set");
      values_[input_tensors_[k]] = Value{inputs_[k].dtype(), inputs_[k].dims(), nullptr, inputs_[k]};
    }
    layer_ms.assign(options.profiling ? plan_.layers.size() : 0, 0.0);
    for (size_t k = 0; k < plan_.layers.size(); ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        run_layer(k);
      } catch (const std::exception& e) {
        cudaStreamSynchronize(stream_);
        cudaGetLastError();
        throw Error("layer '" + plan_.layers[k].info.name + "' (" + plan_.layers[k].info.op +
                    "): " + e.what());
      }
      if (options.profiling) {
        KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
        layer_ms[k] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      }
    }
    for (const Tensor* t : plan_.graph->outputs) host_of(value(t));  // the outputs, downloaded
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
    times = {};
    times.compute_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }

  TensorData output(size_t index) override {
    const Tensor* t = plan_.graph->outputs.at(index);
    if (auto* c = dynamic_cast<const Constant*>(t)) return c->values();
    auto it = values_.find(t);
    if (it == values_.end()) throw Error("output '" + t->name + "' was not computed (run() first)");
    return host_of(it->second);
  }

 private:
  Value& value(const Tensor* t) {
    if (auto* c = dynamic_cast<const Constant*>(t)) {
      auto it = values_.find(t);
      if (it == values_.end()) {  // a constant's device copy outlives the run's values
        std::shared_ptr<DeviceBuffer>& up = constants_[c];
        if (!up) up = std::make_shared<DeviceBuffer>();
        it = values_.emplace(t, Value{c->dtype, c->values().dims(), up, c->values()}).first;
      }
      return it->second;
    }
    auto it = values_.find(t);
    if (it == values_.end()) throw Error("input '" + t->name + "' has no value");
    return it->second;
  }

  const TensorData& host_of(Value& v) {
    if (!v.host) {
      TensorData h(v.dtype, v.dims);
      if (h.nbytes())
        KILN_CUDA_CHECK(cudaMemcpyAsync(h.raw(), v.device->ptr, h.nbytes(), cudaMemcpyDeviceToHost, stream_));
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
      v.host = std::move(h);
    }
    return *v.host;
  }

  void* device_of(Value& v) {
    if (!v.device) v.device = std::make_shared<DeviceBuffer>();
    if (!v.device->ptr && v.host && v.host->nbytes()) {
      if (per_run::held_as_value(v.dtype))
        throw Error(std::string(dtype_name(v.dtype)) + " values cannot be put on the GPU");
      DeviceBuffer buffer(v.host->nbytes());
      KILN_CUDA_CHECK(
          cudaMemcpyAsync(buffer.ptr, v.host->raw(), v.host->nbytes(), cudaMemcpyHostToDevice, stream_));
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host copy may be pageable and short-lived
      *v.device = std::move(buffer);                    // for a constant, its slot kept across runs
    }
    return v.device->ptr;
  }

  void run_layer(size_t k) {
    const Node& n = *plan_.layers[k].node;
    const int64_t opset = plan_.graph->opset(n.domain);
    std::vector<per_run::Operand> ops;
    std::vector<bool> as_constant;  // small values of this run that the factory sees as constants
    for (const Tensor* t : n.inputs()) {
      per_run::Operand o;
      bool constant = false;
      if (t) {
        Value& v = value(t);
        o = {true, v.dtype, v.dims, nullptr};
        const bool small = checked_numel(v.dims).value_or(kHostValueElements + 1) <= kHostValueElements;
        if (v.host || small || per_run::held_as_value(v.dtype)) o.value = &host_of(v);
        constant = !t->is_constant() && small && !per_run::held_as_value(v.dtype);  // constants are anyway
      }
      ops.push_back(o);
      as_constant.push_back(constant);
    }
    auto outs = per_run::infer_outputs(n, opset, ops);
    bool bytes = outs.has_value();
    for (const per_run::Operand& o : ops) bytes = bytes && !(o.present && per_run::held_as_value(o.dtype));
    for (size_t i = 0; bytes && i < outs->size(); ++i)
      bytes = !((*outs)[i].present && per_run::held_as_value((*outs)[i].dtype));
    const CudaKernel* kernel = bytes ? kernel_for(k, n, opset, ops, as_constant, *outs) : nullptr;
    if (kernel) {
      enqueue(k, n, *kernel, *outs);
    } else {
      if (!plan_.options.allow_host_fallback)
        throw Error(std::string(bytes ? "no cuda kernel supports op '" + n.op + "' with these inputs"
                                      : "its outputs are sized by its data or held on the host, and no cuda "
                                        "kernel computes them") +
                    " (--allowHostFallback runs it on the host)");
      run_on_host(n, opset);
    }
    for (const Tensor* t : n.inputs())
      if (t && !t->is_constant() && last_use_.at(t) == k) values_.erase(t);
  }

  // The kernel the builder would choose for these shapes and small values, made on first use of them.
  const CudaKernel* kernel_for(size_t k, const Node& n, int64_t opset,
                               const std::vector<per_run::Operand>& ops, const std::vector<bool>& as_constant,
                               const std::vector<backend::LayerDesc::Operand>& outs) {
    const std::string key = per_run::kernel_key(ops, as_constant, outs);
    auto it = kernels_[k].find(key);
    if (it == kernels_[k].end()) {
      Made made;
      backend::LayerDesc desc;
      desc.node = &n;
      desc.opset = opset;
      desc.options = &plan_.options;
      for (size_t i = 0; i < ops.size(); ++i) {
        backend::LayerDesc::Operand o;
        if (ops[i].present) {
          const TensorData* constant = nullptr;
          if (auto* c = dynamic_cast<const Constant*>(n.input(i))) {
            constant = &c->values();
          } else if (as_constant[i]) {
            made.constants.push_back(std::make_unique<TensorData>(*ops[i].value));
            constant = made.constants.back().get();
          }
          o = {ops[i].dtype, ops[i].dims, constant, true};
        }
        desc.inputs.push_back(o);
      }
      desc.outputs = outs;
      if (const backend::KernelFactory* f = backend::first_supporting("cuda", desc, false)) {
        made.kernel = f->create(desc);
        if (!dynamic_cast<const CudaKernel*>(made.kernel.get())) made.kernel.reset();
      }
      it = kernels_[k].emplace(key, std::move(made)).first;
    }
    return static_cast<const CudaKernel*>(it->second.kernel.get());
  }

  void enqueue(size_t k, const Node& n, const CudaKernel& kernel,
               const std::vector<backend::LayerDesc::Operand>& outs) {
    std::vector<backend::TensorView> ins, views;
    for (size_t i = 0; i < n.inputs().size(); ++i) {
      const Tensor* t = n.input(i);
      if (!t) {
        ins.emplace_back();
        continue;
      }
      Value& v = value(t);
      void* data = t->is_constant() && kernel.owns_constant_input(i) ? nullptr : device_of(v);
      ins.push_back({v.dtype, v.dims, data});
    }
    std::vector<Value> made(outs.size());
    for (size_t o = 0; o < outs.size(); ++o) {
      if (!outs[o].present || !n.output(o)) {
        views.emplace_back();
        continue;
      }
      made[o] = Value{outs[o].dtype, outs[o].dims, nullptr, std::nullopt};
      made[o].device = take_buffer(checked_nbytes(outs[o].dtype, outs[o].dims).value_or(0));
      views.push_back({outs[o].dtype, outs[o].dims, made[o].device->ptr});
    }
    if (kernel.workspace_bytes() > workspace_.bytes) workspace_ = DeviceBuffer(kernel.workspace_bytes());
    RunContext rc{stream_, workspace_.ptr, workspace_.bytes, nullptr};
    if (const size_t bytes = kernel.host_staging_bytes()) {
      void*& p = staging_by_layer_[k];
      if (staging_bytes_[k] < bytes) {
        KILN_CUDA_CHECK(cudaMallocHost(&p, bytes));
        staging_.push_back(p);
        staging_bytes_[k] = bytes;
      }
      rc.host_staging = p;
    }
    kernel.enqueue(ins, views, rc);
    if (rc.host_staging) {
      KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
      kernel.check_host_work(rc);
    }
    for (size_t o = 0; o < outs.size(); ++o)
      if (const Tensor* t = n.output(o); t && outs[o].present) values_[t] = std::move(made[o]);
  }

  // An output buffer: a spare one of about that size (from an earlier layer or run), else a new one; it goes
  // back to the spares when its value is dropped. (cudaMalloc per output per layer per run, and the
  // device-wide synchronization in each cudaFree, cost more than the layers themselves on small dynamic
  // models.) Reuse is safe: every layer runs on stream_, in order.
  std::shared_ptr<DeviceBuffer> take_buffer(size_t bytes) {
    DeviceBuffer buffer;
    auto it = spare_.lower_bound(bytes);
    if (it != spare_.end() && it->first <= 2 * bytes + 256) {
      buffer = std::move(it->second);
      spare_bytes_ -= it->first;
      spare_.erase(it);
    } else {
      buffer = DeviceBuffer(bytes);
    }
    return std::shared_ptr<DeviceBuffer>(new DeviceBuffer(std::move(buffer)), [this](DeviceBuffer* p) {
      std::unique_ptr<DeviceBuffer> owned(p);
      if (p->ptr && spare_bytes_ + p->bytes <= kMaxSpareBytes) {
        spare_bytes_ += p->bytes;
        spare_.emplace(p->bytes, std::move(*p));
      }
    });
  }

  void run_on_host(const Node& n, int64_t opset) {
    const ops::OpSchema* schema = ops::find_op(n.domain, n.op);
    if (!schema || !schema->reference)
      throw Error("op '" + n.op + "' has no reference kernel to run on the host");
    ops::KernelContext ctx(n, opset);
    for (const Tensor* t : n.inputs()) ctx.in.push_back(t ? &host_of(value(t)) : nullptr);
    ctx.out.resize(n.outputs().size());
    ops::run_reference(*schema, ctx);
    for (size_t o = 0; o < n.outputs().size(); ++o)
      if (const Tensor* t = n.output(o))
        values_[t] = Value{ctx.out[o].dtype(), ctx.out[o].dims(), nullptr, std::move(ctx.out[o])};
  }

  struct Made {
    std::vector<std::unique_ptr<TensorData>> constants;  // the values the kernel was made with
    std::unique_ptr<backend::Kernel> kernel;             // null: no CUDA kernel takes these shapes
  };

  const EnginePlan& plan_;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer workspace_;
  std::vector<const Tensor*> input_tensors_;
  std::vector<TensorData> inputs_;
  std::unordered_map<const Tensor*, size_t> last_use_;
  std::unordered_map<const Constant*, std::shared_ptr<DeviceBuffer>> constants_;
  static constexpr size_t kMaxSpareBytes = size_t{1} << 30;
  std::multimap<size_t, DeviceBuffer> spare_;  // by size; declared before values_, whose buffers return here
  size_t spare_bytes_ = 0;
  std::unordered_map<const Tensor*, Value> values_;
  std::vector<std::map<std::string, Made>> kernels_;  // per layer, per shapes and small values
  std::vector<void*> staging_;
  std::unordered_map<size_t, void*> staging_by_layer_;
  std::unordered_map<size_t, size_t> staging_bytes_;
};

}  // namespace

std::unique_ptr<Executor> make_per_run_executor(const EnginePlan& plan) {
  return std::make_unique<PerRunExecutor>(plan);
}

}  // namespace kiln::cuda
