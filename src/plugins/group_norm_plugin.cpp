// GroupNormalizationPlugin, built in, with TensorRT's contract so graphs prepared for TensorRT run unchanged:
// name "GroupNormalizationPlugin", version "1", namespace ""; fields eps (float, default 1e-5) and num_groups
// (int, required); inputs X [N, C, ...], scale [C], bias [C]; one output shaped like X.
// The CPU enqueue is the optimized plane_norm (the same code as cpu.groupnorm); its oracle is kiln.GroupNorm's
// reference kernel (tests).
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "backends/cpu/normalization_cpu.h"
#include "kiln/plugin.h"
#ifdef KILN_HAVE_CUDA
#include "backends/cuda/normalization_cuda.h"
#endif

namespace kiln {
namespace {

struct Dims3 {
  int64_t n = 0, c = 0, spatial = 1;
};
[[maybe_unused]] Dims3 dims3(const std::vector<int64_t>& d) {
  Dims3 s;
  s.n = d.size() > 0 ? d[0] : 0;
  s.c = d.size() > 1 ? d[1] : 0;
  for (size_t k = 2; k < d.size(); ++k) s.spatial *= d[k];
  return s;
}

class GroupNormalizationPlugin final : public Plugin {
 public:
  GroupNormalizationPlugin(float eps, int64_t groups) : eps_(eps), groups_(groups) {
    if (groups_ <= 0) throw Error("GroupNormalizationPlugin: num_groups must be positive");
  }
  std::string name() const override { return "GroupNormalizationPlugin"; }
  int num_outputs() const override { return 1; }
  std::vector<DType> output_dtypes(const std::vector<DType>& in) const override { return {in.at(0)}; }
  std::vector<Shape> output_shapes(const std::vector<Shape>& in) const override {
    if (in.size() != 3) throw Error("GroupNormalizationPlugin takes 3 inputs (X, scale, bias)");
    const Shape& x = in[0];
    if (x.size() < 3) throw Error("GroupNormalizationPlugin: X must have rank >= 3, got " + to_string(x));
    if (x[1].is_static() && x[1].value % groups_ != 0)
      throw Error("GroupNormalizationPlugin: num_groups " + std::to_string(groups_) + " does not divide " +
                  std::to_string(x[1].value) + " channels");
    return {x};
  }
  bool supports(const std::string& device, const std::vector<PluginTensorDesc>& in,
                const std::vector<PluginTensorDesc>& out) const override {
    if (in.size() != 3 || out.size() != 1) return false;
    if (device == "cpu") {
      for (const auto* list : {&in, &out})
        for (const PluginTensorDesc& d : *list)
          if (d.dtype != DType::Float || d.layout != "linear") return false;
#ifdef KILN_HAVE_CUDA
    } else if (device == "cuda") {
      // fp32 / fp16, linear; X and Y of one dtype, scale and bias of one dtype.
      for (const auto* list : {&in, &out})
        for (const PluginTensorDesc& d : *list)
          if ((d.dtype != DType::Float && d.dtype != DType::Float16) || d.layout != "linear") return false;
      if (out[0].dtype != in[0].dtype || in[1].dtype != in[2].dtype || out[0].dims != in[0].dims) return false;
#endif
    } else {
      return false;
    }
    const int64_t c = in[0].dims.size() >= 2 ? in[0].dims[1] : -1;
    return c > 0 && c % groups_ == 0 && in[1].dims == std::vector<int64_t>{c} && in[2].dims == std::vector<int64_t>{c};
  }
  void enqueue(const PluginContext& ctx, const std::vector<PluginTensor>& in,
               const std::vector<PluginTensor>& out) const override {
#ifdef KILN_HAVE_CUDA
    if (ctx.device == "cuda") {
      const Dims3 s = dims3(in[0].dims);
      cuda::launch_group_norm(in[0].dtype, in[0].data, out[0].data, in[1].data, in[2].data, in[1].dtype, s.n, s.c,
                              s.spatial, groups_, eps_, ops::Activation::None, 1.f, ctx.workspace,
                              cuda::group_norm_workspace_bytes(s.n, s.c, s.spatial, groups_),
                              static_cast<cudaStream_t>(ctx.stream));
      return;
    }
#endif
    backend::plane_norm(static_cast<const float*>(in[0].data), static_cast<float*>(out[0].data), in[0].dims,
                        in[0].dims[1] / groups_, static_cast<const float*>(in[1].data),
                        static_cast<const float*>(in[2].data), eps_, ops::ActivationParams{}, ctx.threads);
  }
  size_t workspace_size(const std::vector<PluginTensorDesc>& in, const std::vector<PluginTensorDesc>&) const override {
#ifdef KILN_HAVE_CUDA
    // The CUDA enqueue's partial statistics (the size does not depend on the device; the CPU ignores it).
    if (!in.empty() && in[0].dims.size() >= 2) {
      const Dims3 s = dims3(in[0].dims);
      return cuda::group_norm_workspace_bytes(s.n, s.c, s.spatial, groups_);
    }
#endif
    return 0;
  }
  std::string serialize() const override {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a %lld", static_cast<double>(eps_), static_cast<long long>(groups_));
    return buf;  // hex float: exact round trip
  }
  std::unique_ptr<Plugin> clone() const override { return std::make_unique<GroupNormalizationPlugin>(*this); }

 private:
  float eps_;
  int64_t groups_;
};

class GroupNormalizationPluginCreator final : public PluginCreator {
 public:
  std::string name() const override { return "GroupNormalizationPlugin"; }
  std::vector<PluginField> fields() const override {
    return {{"eps", PluginFieldType::Float, false, 1e-5f}, {"num_groups", PluginFieldType::Int, true, int64_t{0}}};
  }
  std::unique_ptr<Plugin> create(const Attributes& f) const override {
    return std::make_unique<GroupNormalizationPlugin>(f.get_float("eps", 1e-5f), f.get_int("num_groups", 0));
  }
  std::unique_ptr<Plugin> deserialize(const std::string& state) const override {
    char* end = nullptr;
    const double eps = std::strtod(state.c_str(), &end);
    const long long groups = std::strtoll(end, &end, 10);
    if (end == state.c_str() || *end != '\0' || !std::isfinite(eps))
      throw Error("GroupNormalizationPlugin: corrupt serialized state '" + printable(state) + "'");
    return std::make_unique<GroupNormalizationPlugin>(static_cast<float>(eps), groups);
  }
};

KILN_REGISTER_PLUGIN(GroupNormalizationPluginCreator);

}  // namespace
}  // namespace kiln
