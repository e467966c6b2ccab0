// An out-of-tree kiln plugin: ScaledTanh, y = alpha * tanh(beta * x), elementwise, fp32 on the CPU.
// Built as a shared library against an installed kiln (see CMakeLists.txt) and loaded at run time:
//   kiln exec --plugins=libscaled_tanh_plugin.so --onnx=scaled_tanh.onnx
#include <kiln/plugin.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace {

class ScaledTanh final : public kiln::Plugin {
 public:
  ScaledTanh(float alpha, float beta) : alpha_(alpha), beta_(beta) {}
  std::string name() const override { return "ScaledTanh"; }
  int num_outputs() const override { return 1; }
  std::vector<kiln::DType> output_dtypes(const std::vector<kiln::DType>& in) const override { return {in.at(0)}; }
  std::vector<kiln::Shape> output_shapes(const std::vector<kiln::Shape>& in) const override { return {in.at(0)}; }
  bool supports(const std::string& device, const std::vector<kiln::PluginTensorDesc>& in,
                const std::vector<kiln::PluginTensorDesc>& out) const override {
    return device == "cpu" && in.size() == 1 && out.size() == 1 && in[0].dtype == kiln::DType::Float &&
           out[0].dtype == kiln::DType::Float;
  }
  void enqueue(const kiln::PluginContext&, const std::vector<kiln::PluginTensor>& in,
               const std::vector<kiln::PluginTensor>& out) const override {
    int64_t n = 1;
    for (int64_t d : in[0].dims) n *= d;
    const auto* x = static_cast<const float*>(in[0].data);
    auto* y = static_cast<float*>(out[0].data);
    for (int64_t i = 0; i < n; ++i) y[i] = alpha_ * std::tanh(beta_ * x[i]);
  }
  std::string serialize() const override {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a %a", static_cast<double>(alpha_), static_cast<double>(beta_));
    return buf;
  }
  std::unique_ptr<kiln::Plugin> clone() const override { return std::make_unique<ScaledTanh>(*this); }

 private:
  float alpha_, beta_;
};

class ScaledTanhCreator final : public kiln::PluginCreator {
 public:
  std::string name() const override { return "ScaledTanh"; }
  std::vector<kiln::PluginField> fields() const override {
    return {{"alpha", kiln::PluginFieldType::Float, true, 1.0f}, {"beta", kiln::PluginFieldType::Float, false, 1.0f}};
  }
  std::unique_ptr<kiln::Plugin> create(const kiln::Attributes& f) const override {
    return std::make_unique<ScaledTanh>(f.get_float("alpha", 1.f), f.get_float("beta", 1.f));
  }
  std::unique_ptr<kiln::Plugin> deserialize(const std::string& state) const override {
    char* end = nullptr;
    const double alpha = std::strtod(state.c_str(), &end);
    const double beta = std::strtod(end, &end);
    if (*end != '\0') throw kiln::Error("ScaledTanh: corrupt serialized state");
    return std::make_unique<ScaledTanh>(static_cast<float>(alpha), static_cast<float>(beta));
  }
};

}  // namespace

KILN_PLUGIN_LIBRARY(ScaledTanhCreator)
