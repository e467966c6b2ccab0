// kiln — custom layers as plugins.
//
// A plugin is a layer kiln does not implement itself: a C++ class deriving from kiln::Plugin, built by a
// kiln::PluginCreator that declares the plugin's fields (the ONNX node's attributes). Creators live in a
// registry; an ONNX node whose op type matches a registered creator's name becomes a plugin layer, with
// optional string attributes `plugin_version` (default "1") and `plugin_namespace` (default "").
//
// Register statically inside kiln or an application:   KILN_REGISTER_PLUGIN(MyCreator);
// or build a shared library:                            KILN_PLUGIN_LIBRARY(MyCreator, OtherCreator)
// and load it with kiln::load_plugin_library("libmy.so") or `kiln exec --plugins=libmy.so`.
//
// The interface is versioned: a library reports the KILN_PLUGIN_ABI_VERSION it was compiled against and
// is refused with a clear message when it differs from the loading kiln's.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kiln/graph.h"
#include "kiln/tensor_data.h"

// Bump whenever Plugin, PluginCreator, PluginTensor or PluginContext change layout or meaning.
#define KILN_PLUGIN_ABI_VERSION 1

namespace kiln {

enum class PluginFieldType { Int, Float, String, Ints, Floats };
const char* plugin_field_type_name(PluginFieldType t);

struct PluginField {
  std::string name;
  PluginFieldType type = PluginFieldType::Int;
  bool required = false;
  AttributeValue default_value = int64_t{0};  // used when the field is optional and absent
};

// One input or output as the plugin sees it at run time.
struct PluginTensor {
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;  // static at run time
  void* data = nullptr;       // host memory on "cpu"; device memory on "cuda"
};

// What a layout/dtype query asks about (no data).
struct PluginTensorDesc {
  DType dtype = DType::Undefined;
  std::vector<int64_t> dims;
  std::string layout = "linear";  // row-major NCHW...; other layouts come with the CUDA backend
};

struct PluginContext {
  std::string device = "cpu";
  void* stream = nullptr;  // cudaStream_t on "cuda"
  int threads = 1;         // CPU worker threads the plugin may use
  void* workspace = nullptr;
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string name() const = 0;
  virtual std::string version() const { return "1"; }
  virtual std::string plugin_namespace() const { return ""; }

  virtual int num_outputs() const = 0;
  virtual std::vector<DType> output_dtypes(const std::vector<DType>& inputs) const = 0;
  // Output shapes from input shapes; dims may be symbolic or unknown (Dim with value < 0).
  virtual std::vector<Shape> output_shapes(const std::vector<Shape>& inputs) const = 0;
  // Whether this dtype/layout combination of all inputs and outputs can run on `device`.
  virtual bool supports(const std::string& device, const std::vector<PluginTensorDesc>& inputs,
                        const std::vector<PluginTensorDesc>& outputs) const = 0;
  virtual size_t workspace_size(const std::vector<PluginTensorDesc>& inputs,
                                const std::vector<PluginTensorDesc>& outputs) const {
    return 0;
  }
  // Computes the outputs. Must be thread-safe: one plugin object serves every execution context.
  virtual void enqueue(const PluginContext& ctx, const std::vector<PluginTensor>& inputs,
                       const std::vector<PluginTensor>& outputs) const = 0;

  // State that deserialize() turns back into an equal plugin (stored in engine files).
  virtual std::string serialize() const = 0;
  virtual std::unique_ptr<Plugin> clone() const = 0;
};

class PluginCreator {
 public:
  virtual ~PluginCreator() = default;
  virtual std::string name() const = 0;
  virtual std::string version() const { return "1"; }
  virtual std::string plugin_namespace() const { return ""; }
  virtual std::vector<PluginField> fields() const = 0;
  // `fields` holds every declared field: validated against fields() and completed with defaults.
  virtual std::unique_ptr<Plugin> create(const Attributes& fields) const = 0;
  virtual std::unique_ptr<Plugin> deserialize(const std::string& state) const = 0;
};

class PluginRegistry {
 public:
  static PluginRegistry& global();
  // Takes ownership. Throws kiln::Error if a creator with the same name, version and namespace exists.
  void add(std::unique_ptr<PluginCreator> creator);
  const PluginCreator* find(const std::string& name, const std::string& version = "1",
                            const std::string& plugin_namespace = "") const;
  bool has_name(const std::string& name) const;
  std::vector<const PluginCreator*> creators() const;

 private:
  std::vector<std::unique_ptr<PluginCreator>> creators_;
};

// Checks a node's attributes against a creator's fields (unknown field, wrong type, missing required field:
// kiln::Error naming the node) and returns them completed with defaults. plugin_version/plugin_namespace and
// kiln_* attributes are not fields.
Attributes plugin_fields_of(const Node& node, const PluginCreator& creator);
// The creator a node binds to (by op type, plugin_version, plugin_namespace), or nullptr.
const PluginCreator* plugin_creator_for(const Node& node);

// dlopen()s a plugin library and registers its creators. Throws kiln::Error naming the file when it cannot be
// loaded, is not a kiln plugin library, or was built against another KILN_PLUGIN_ABI_VERSION.
void load_plugin_library(const std::string& path);

namespace detail {
bool register_plugin_creator(std::unique_ptr<PluginCreator> creator);
}  // namespace detail

}  // namespace kiln

#define KILN_PLUGIN_CONCAT_INNER(a, b) a##b
#define KILN_PLUGIN_CONCAT(a, b) KILN_PLUGIN_CONCAT_INNER(a, b)
// Registers a creator when the enclosing library loads (inside libkiln or an application).
#define KILN_REGISTER_PLUGIN(Creator)                                                  \
  static const bool KILN_PLUGIN_CONCAT(kiln_plugin_registered_, __COUNTER__) = \
      ::kiln::detail::register_plugin_creator(std::make_unique<Creator>())

// Defines a plugin library's entry points: its ABI version and a function registering its creators.
#define KILN_PLUGIN_LIBRARY(...)                                                                      \
  extern "C" int kiln_plugin_abi_version() { return KILN_PLUGIN_ABI_VERSION; }                     \
  extern "C" void kiln_register_plugins(::kiln::PluginRegistry& registry) {                         \
    ::kiln::detail::add_creators<__VA_ARGS__>(registry);                                            \
  }

namespace kiln::detail {
template <class... Creators>
void add_creators(PluginRegistry& registry) {
  (registry.add(std::make_unique<Creators>()), ...);
}
}  // namespace kiln::detail
