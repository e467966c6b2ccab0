// A layer's kernel chosen per run by the values of its input-value operands (by_input_values_cuda.h): the
// factories see those operands as constants holding this run's values, exactly as if the model had them as
// initializers, and the kernel made for each distinct set of values is kept.
#include "backends/cuda/by_input_values_cuda.h"

#include <cstring>

#include "backends/cuda/host_fallback_cuda.h"
#include "ops/op.h"

namespace kiln::cuda {

using backend::LayerDesc;

ByInputValuesKernel::ByInputValuesKernel(const LayerDesc& desc, std::vector<size_t> operands)
    : desc_(desc), operands_(std::move(operands)) {
  if (desc.options) options_ = *desc.options;
  desc_.options = &options_;
  desc_.timing_cache = nullptr;  // the build's cache is gone by the time a run makes kernels
  for (size_t i : operands_)
    if (i >= desc_.inputs.size() || !desc_.inputs[i].present || desc_.inputs[i].constant)
      throw Error("layer '" + desc.node->name + "': operand " + std::to_string(i) +
                  " is not an engine input");
}

std::string ByInputValuesKernel::describe() const {
  std::string names;
  for (size_t i : operands_) names += (names.empty() ? "'" : ", '") + desc_.node->input(i)->name + "'";
  std::lock_guard<std::mutex> lock(mutex_);
  return "kernel chosen per run by the values of " + names + " (" + std::to_string(variants_.size()) +
         " made so far)";
}

void ByInputValuesKernel::enqueue(const std::vector<backend::TensorView>&,
                                  const std::vector<backend::TensorView>&, const RunContext&) const {
  throw Error("a layer whose kernel is chosen by input values was enqueued before its values were given");
}

const CudaKernel& ByInputValuesKernel::select(const std::vector<const void*>& values) const {
  if (values.size() != operands_.size()) throw Error("select() got the values of the wrong number of inputs");
  std::vector<size_t> sizes;
  uint64_t key = 14695981039346656037ull;  // FNV-1a over every operand's bytes
  for (size_t j = 0; j < operands_.size(); ++j) {
    const LayerDesc::Operand& o = desc_.inputs[operands_[j]];
    sizes.push_back(static_cast<size_t>(checked_numel(o.dims).value_or(0)) * dtype_size(o.dtype));
    const auto* p = static_cast<const unsigned char*>(values[j]);
    for (size_t b = 0; b < sizes[j]; ++b) key = (key ^ p[b]) * 1099511628211ull;
  }
  auto same_values = [&](const Variant& v) {
    for (size_t j = 0; j < operands_.size(); ++j)
      if (sizes[j] && std::memcmp(v.values[j].raw(), values[j], sizes[j]) != 0) return false;
    return true;
  };
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto [it, end] = variants_.equal_range(key); it != end; ++it)
    if (same_values(*it->second)) return static_cast<const CudaKernel&>(*it->second->kernel);
  const Node& n = *desc_.node;
  if (variants_.size() >= kMaxVariants)
    throw Error("the values of its inputs chose " + std::to_string(kMaxVariants) +
                " kernels already; give inputs that stay the same as initializers");
  auto variant = std::make_unique<Variant>();
  LayerDesc d = desc_;
  for (size_t j = 0; j < operands_.size(); ++j) {
    LayerDesc::Operand& o = d.inputs[operands_[j]];
    variant->values.emplace_back(o.dtype, o.dims);
    std::memcpy(variant->values.back().raw(), values[j], variant->values.back().nbytes());
  }
  for (size_t j = 0; j < operands_.size(); ++j) d.inputs[operands_[j]].constant = &variant->values[j];
  if (const backend::KernelFactory* f = backend::first_supporting(options_.device, d, false)) {
    variant->kernel = f->create(d);
  } else if (const ops::OpSchema* schema = ops::find_op(n.domain, n.op);
             options_.allow_host_fallback && schema && schema->reference) {
    variant->kernel = make_host_fallback_kernel(d);
  } else {
    std::string names;
    for (size_t i : operands_) names += (names.empty() ? "'" : ", '") + n.input(i)->name + "'";
    throw Error("no " + options_.device + " kernel supports op '" + n.op + "' with the values " + names +
                " have in this run" +
                (options_.allow_host_fallback ? "" : " (--allowHostFallback runs it on the host)"));
  }
  if (!dynamic_cast<const CudaKernel*>(variant->kernel.get()))
    throw Error("the kernel chosen for op '" + n.op + "' is not a CUDA kernel");
  const CudaKernel& kernel = static_cast<const CudaKernel&>(*variant->kernel);
  variants_.emplace(key, std::move(variant));
  return kernel;
}

std::unique_ptr<backend::Kernel> make_by_input_values_kernel(const LayerDesc& desc,
                                                             const std::vector<size_t>& operands) {
  return std::make_unique<ByInputValuesKernel>(desc, operands);
}

}  // namespace kiln::cuda
