// Shared harness of the GPU tests: build a small graph for the CPU reference kernels (the oracle, fp32) and
// for CUDA at a precision, run both on the same fresh random inputs, compare each output by relative L2. The
// CUDA executor poisons its activation arena (NaN bytes) when it is created, so an output element a kernel
// never writes shows up as NaN and fails every bound.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/cuda_common.h"
#include "kiln/engine.h"
#include "kiln/graph.h"

namespace kiln::gpu_test {

#define KILN_REQUIRE_GPU() \
  if (!::kiln::cuda::gpu_available()) GTEST_SKIP() << ::kiln::cuda::gpu_unavailable_reason()

inline std::mt19937& rng() {
  static std::mt19937 g(20261126);
  return g;
}

// Random non-zero fp32 values in ±[lo, hi].
inline TensorData random_tensor(const std::vector<int64_t>& dims, float lo = 0.1f, float hi = 2.0f,
                                DType dtype = DType::Float) {
  TensorData t(DType::Float, dims);
  std::uniform_real_distribution<float> d(lo, hi);
  float* p = static_cast<float*>(t.raw());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng()) * ((rng()() & 1) ? -1.f : 1.f);
  if (dtype == DType::Float) return t;
  TensorData c(dtype, dims);
  for (int64_t i = 0; i < t.numel(); ++i)
    static_cast<uint16_t*>(c.raw())[i] =
        dtype == DType::Float16 ? float_to_half(p[i]) : float_to_bfloat16(p[i]);
  return c;
}

// Build options of the two precisions most tests run: strict fp32 (no TF32) and fp16.
inline BuildOptions fp32() {
  BuildOptions o;
  o.tf32 = false;
  return o;
}
inline BuildOptions fp16() {
  BuildOptions o;
  o.precision = DType::Float16;
  return o;
}

// Tolerance on relative L2 per precision (the bounds).
inline double tolerance(DType precision, bool tf32) {
  if (precision == DType::Float16) return 2e-3;
  if (precision == DType::BFloat16) return 1.6e-2;
  return tf32 ? 1e-3 : 1e-5;
}

inline double rel_l2(const TensorData& got, const TensorData& want) {
  double num = 0, den = 0;
  if (got.numel() != want.numel()) return INFINITY;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = got.as_double(i), b = want.as_double(i);
    num += (a - b) * (a - b);
    den += b * b;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Comparison {
  std::vector<double> rel_l2;          // per graph output
  std::vector<LayerInfo> cuda_layers;  // what the CUDA engine ran (kernel names)
  double worst() const {
    double w = 0;
    for (double e : rel_l2) w = std::isnan(e) || std::isnan(w) ? NAN : std::max(w, e);
    return w;
  }
  bool uses_kernel(const std::string& name) const {
    for (const LayerInfo& l : cuda_layers)
      if (l.kernel == name) return true;
    return false;
  }
};

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// Graph inputs get fresh random values (their dtype and static shape must be set); constants stay as given.
// `cuda_options` sets precision/tf32/skip_rewrites for the CUDA build; device is forced to "cuda".
inline Comparison compare_with_reference(const Graph& g, BuildOptions cuda_options = {}, float lo = 0.1f,
                                         float hi = 2.0f) {
  BuildOptions ref;
  ref.device = "cpu";
  ref.reference_kernels = true;
  ref.threads = 2;
  ref.skip_rewrites = cuda_options.skip_rewrites;
  cuda_options.device = "cuda";
  auto ref_engine = Engine::build(g, ref);
  auto cuda_engine = Engine::build(g, cuda_options);
  auto ref_ctx = ref_engine->create_context();
  auto cuda_ctx = cuda_engine->create_context();
  for (const TensorInfo& in : ref_engine->inputs()) {
    const TensorData x = random_tensor(in.dims, lo, hi, in.dtype);
    ref_ctx->set_input(in.name, x);
    cuda_ctx->set_input(in.name, x);
  }
  ref_ctx->run();
  cuda_ctx->run();
  Comparison c;
  for (const TensorInfo& out : ref_engine->outputs())
    c.rel_l2.push_back(rel_l2(cuda_ctx->output(out.name), ref_ctx->output(out.name)));
  c.cuda_layers = cuda_engine->layers();
  return c;
}

// A graph with one node: `inputs` with a value are constants, the others graph inputs of the given
// dtype/dims.
struct OperandSpec {
  std::vector<int64_t> dims;
  DType dtype = DType::Float;
  std::optional<TensorData> value;  // constant
};

inline std::unique_ptr<Graph> one_node_graph(const std::string& op, const std::vector<OperandSpec>& inputs,
                                             const Attributes& attrs = {}, const std::string& domain = "",
                                             size_t outputs = 1, int64_t opset = 17) {
  auto g = std::make_unique<Graph>();
  g->set_opset("", opset);
  if (!domain.empty()) g->set_opset(domain, 1);
  std::vector<Tensor*> ins, outs;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const std::string name = "x" + std::to_string(k);
    if (inputs[k].value) {
      ins.push_back(g->add_constant(name, *inputs[k].value));
    } else {
      Variable* v = g->add_variable(name, inputs[k].dtype, make_shape(inputs[k].dims));
      g->inputs.push_back(v);
      ins.push_back(v);
    }
  }
  for (size_t k = 0; k < outputs; ++k) outs.push_back(g->add_variable("y" + std::to_string(k)));
  Node* n = g->add_node(op, ins, outs, "the_" + op, domain);
  n->attrs = attrs;
  for (Tensor* t : outs) g->outputs.push_back(t);
  return g;
}

}  // namespace kiln::gpu_test
