#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "device/device_backend.h"
#include "device/kernel.h"
#include "ops/op.h"

namespace kiln::backend {
namespace {

std::string canonical_domain(const std::string& d) {
  return d == "ai.onnx" ? "" : d;
}

// A deque: pointers handed out by kernels_for stay valid when a plugin library registers more factories
// later. One mutex guards it and the reference factories made on demand (builds may run on several threads).
std::deque<KernelFactory>& registry() {
  static std::deque<KernelFactory> factories;
  return factories;
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

// Runs the op's reference kernel on views of the layer's buffers.
class ReferenceKernel final : public Kernel {
 public:
  ReferenceKernel(const LayerDesc& desc, const ops::OpSchema& schema)
      : node_(desc.node), opset_(desc.opset), schema_(schema) {}

  void run(const std::vector<TensorView>& inputs, const std::vector<TensorView>& outputs) const override {
    ops::KernelContext ctx(*node_, opset_);
    std::vector<TensorData> held;
    held.reserve(inputs.size());
    for (const TensorView& v : inputs) {
      if (v.dtype == DType::Undefined) {  // omitted optional input
        ctx.in.push_back(nullptr);
        continue;
      }
      held.push_back(TensorData::view(v.dtype, v.dims, v.data));
      ctx.in.push_back(&held.back());
    }
    ctx.out.resize(outputs.size());
    ops::run_reference(schema_, ctx);
    for (size_t k = 0; k < outputs.size(); ++k) {
      const TensorView& dst = outputs[k];
      if (!dst.data) continue;
      const TensorData& src = ctx.out[k];
      if (src.dtype() != dst.dtype || src.dims() != dst.dims)
        throw Error("node " + node_->label() + ": reference kernel produced " + dtype_name(src.dtype()) +
                    " " + to_string(make_shape(src.dims())) + ", the plan expected " + dtype_name(dst.dtype) +
                    " " + to_string(make_shape(dst.dims)));
      std::memcpy(dst.data, src.raw(), dst.nbytes());
    }
  }

 private:
  const Node* node_;
  int64_t opset_;
  const ops::OpSchema& schema_;
};

}  // namespace

bool register_kernel(KernelFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  factory.domain = canonical_domain(factory.domain);
  for (const auto& f : registry())
    if (f.name == factory.name && f.op == factory.op && f.device == factory.device) {
      std::fprintf(stderr, "kiln: kernel '%s' for %s registered twice\n", f.name.c_str(), f.op.c_str());
      std::abort();
    }
  registry().push_back(std::move(factory));
  return true;
}

std::vector<const KernelFactory*> kernels_for(const std::string& device, const std::string& domain,
                                              const std::string& op) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<const KernelFactory*> out;
  for (const auto& f : registry())
    if (f.device == device && f.domain == canonical_domain(domain) && f.op == op) out.push_back(&f);
  // The reference runs on host devices for every op that has one; other devices bring their own kernels.
  if (const DeviceBackend* b = find_device_backend(device); b && b->host) {
    static std::map<std::string, KernelFactory> reference_factories;  // guarded by registry_mutex
    const std::string key = device + "::" + canonical_domain(domain) + "::" + op;
    const ops::OpSchema* schema = ops::find_op(domain, op);
    if (schema && schema->reference) {
      auto [it, inserted] = reference_factories.try_emplace(key);
      if (inserted) {
        KernelFactory& f = it->second;
        f.name = "reference";
        f.device = device;
        f.op = op;
        f.domain = canonical_domain(domain);
        f.priority = -100;
        f.supports = [](const LayerDesc&) { return true; };
        f.create = make_reference_kernel;
      }
      out.push_back(&it->second);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->priority > b->priority; });
  return out;
}

std::vector<const KernelFactory*> registered_kernels() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<const KernelFactory*> out;
  for (const auto& f : registry()) out.push_back(&f);
  return out;
}

const KernelFactory* first_supporting(const std::string& device, const LayerDesc& desc, bool reference_only) {
  for (const KernelFactory* f : kernels_for(device, desc.node->domain, desc.node->op)) {
    if (reference_only && f->name != "reference") continue;
    if (f->supports(desc)) return f;
  }
  return nullptr;
}

const KernelFactory* find_kernel(const std::string& device, const std::string& domain, const std::string& op,
                                 const std::string& name) {
  for (const KernelFactory* f : kernels_for(device, domain, op))
    if (f->name == name) return f;
  return nullptr;
}

std::unique_ptr<Kernel> make_reference_kernel(const LayerDesc& desc) {
  const ops::OpSchema* schema = ops::find_op(desc.node->domain, desc.node->op);
  if (!schema || !schema->reference) throw Error("node " + desc.node->label() + ": no reference kernel");
  return std::make_unique<ReferenceKernel>(desc, *schema);
}

}  // namespace kiln::backend
