// The plugin registry, and what makes a registered plugin an op like any other: each plugin name gets an
// OpSchema (shape/type inference through the plugin) and a "plugin" kernel factory per device it supports.
#include <dlfcn.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "device/kernel.h"
#include "kiln/plugin.h"
#include "ops/op.h"
#ifdef KILN_HAVE_CUDA
#include "backends/cuda/plugin_cuda.h"
#endif

namespace kiln {
namespace {

bool is_reserved_attribute(const std::string& name) {
  return name == "plugin_version" || name == "plugin_namespace" || name.rfind("kiln_", 0) == 0;
}

bool has_type(const AttributeValue& v, PluginFieldType t) {
  switch (t) {
    case PluginFieldType::Int: return std::holds_alternative<int64_t>(v);
    case PluginFieldType::Float: return std::holds_alternative<float>(v);
    case PluginFieldType::String: return std::holds_alternative<std::string>(v);
    case PluginFieldType::Ints: return std::holds_alternative<std::vector<int64_t>>(v);
    case PluginFieldType::Floats: return std::holds_alternative<std::vector<float>>(v);
  }
  return false;
}

std::unique_ptr<Plugin> plugin_for(const Node& node) {
  const PluginCreator* creator = plugin_creator_for(node);
  if (!creator)
    throw Error("node " + node.label() + ": no plugin '" + node.op + "' version '" +
                node.attrs.get_string("plugin_version", "1") + "' namespace '" +
                node.attrs.get_string("plugin_namespace", "") + "' is registered");
  return creator->create(plugin_fields_of(node, *creator));
}

// ---- the op side: inference through the plugin
void infer_plugin(ops::InferContext& ctx) {
  std::unique_ptr<Plugin> plugin = plugin_for(ctx.node);
  std::vector<DType> dtypes;
  std::vector<Shape> shapes;
  bool shapes_known = true;
  for (const ops::InputInfo& in : ctx.in) {
    dtypes.push_back(in.dtype);
    if (in.shape) shapes.push_back(*in.shape);
    else shapes_known = false;
  }
  if (static_cast<int>(ctx.out.size()) != plugin->num_outputs())
    ctx.fail("plugin " + plugin->name() + " has " + std::to_string(plugin->num_outputs()) + " outputs, the node " +
             std::to_string(ctx.out.size()));
  std::vector<DType> out_dtypes = plugin->output_dtypes(dtypes);
  std::vector<Shape> out_shapes;
  if (shapes_known) out_shapes = plugin->output_shapes(shapes);
  for (size_t k = 0; k < ctx.out.size(); ++k) {
    if (k < out_dtypes.size()) ctx.out[k].dtype = out_dtypes[k];
    if (k < out_shapes.size()) ctx.out[k].shape = out_shapes[k];
  }
}

// ---- the kernel side: a layer running Plugin::enqueue
class PluginKernel final : public backend::Kernel {
 public:
  PluginKernel(std::unique_ptr<Plugin> plugin, std::string device, int threads, size_t workspace)
      : plugin_(std::move(plugin)), device_(std::move(device)), threads_(threads), workspace_(workspace) {}

  void run(const std::vector<backend::TensorView>& in, const std::vector<backend::TensorView>& out) const override {
    std::vector<PluginTensor> ins, outs;
    for (const auto& v : in) ins.push_back({v.dtype, v.dims, v.data});
    for (const auto& v : out) outs.push_back({v.dtype, v.dims, v.data});
    std::vector<unsigned char> workspace(workspace_);  // per call: one kernel serves every context
    PluginContext ctx;
    ctx.device = device_;
    ctx.threads = threads_;
    ctx.workspace = workspace.empty() ? nullptr : workspace.data();
    plugin_->enqueue(ctx, ins, outs);
  }
  std::string serialize() const override { return plugin_->serialize(); }

 private:
  std::unique_ptr<Plugin> plugin_;
  std::string device_;
  int threads_;
  size_t workspace_;
};

std::vector<PluginTensorDesc> descs(const std::vector<backend::LayerDesc::Operand>& ops) {
  std::vector<PluginTensorDesc> out;
  for (const auto& o : ops) out.push_back({o.dtype, o.dims, "linear"});
  return out;
}

std::unique_ptr<backend::Kernel> wrap(std::unique_ptr<Plugin> plugin, const backend::LayerDesc& d) {
  const size_t workspace = plugin->workspace_size(descs(d.inputs), descs(d.outputs));
  return std::make_unique<PluginKernel>(std::move(plugin), "cpu", d.threads, workspace);
}

backend::KernelFactory plugin_factory(const std::string& op) {
  backend::KernelFactory f;
  f.name = "plugin";
  f.device = "cpu";
  f.op = op;
  f.priority = 0;
  f.supports = [](const backend::LayerDesc& d) {
    return plugin_for(*d.node)->supports("cpu", descs(d.inputs), descs(d.outputs));
  };
  f.create = [](const backend::LayerDesc& d) { return wrap(plugin_for(*d.node), d); };
  f.deserialize = [](const backend::LayerDesc& d, const std::string& state) {
    const PluginCreator* creator = plugin_creator_for(*d.node);
    if (!creator) throw Error("node " + d.node->label() + ": plugin '" + d.node->op + "' is not registered");
    return wrap(creator->deserialize(state), d);
  };
  return f;
}

#ifdef KILN_HAVE_CUDA
// The same plugin on "cuda": enqueue gets device pointers, the context's stream and workspace.
std::unique_ptr<backend::Kernel> wrap_cuda(std::unique_ptr<Plugin> plugin, const backend::LayerDesc& d) {
  const size_t workspace = plugin->workspace_size(descs(d.inputs), descs(d.outputs));
  return cuda::make_plugin_cuda_kernel(std::move(plugin), workspace);
}

backend::KernelFactory plugin_cuda_factory(const std::string& op) {
  backend::KernelFactory f;
  f.name = "plugin";
  f.device = "cuda";
  f.op = op;
  f.priority = 0;
  f.supports = [](const backend::LayerDesc& d) {
    return plugin_for(*d.node)->supports("cuda", descs(d.inputs), descs(d.outputs));
  };
  f.create = [](const backend::LayerDesc& d) { return wrap_cuda(plugin_for(*d.node), d); };
  f.deserialize = [](const backend::LayerDesc& d, const std::string& state) {
    const PluginCreator* creator = plugin_creator_for(*d.node);
    if (!creator) throw Error("node " + d.node->label() + ": plugin '" + d.node->op + "' is not registered");
    return wrap_cuda(creator->deserialize(state), d);
  };
  return f;
}
#endif

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

const char* plugin_field_type_name(PluginFieldType t) {
  switch (t) {
    case PluginFieldType::Int: return "int";
    case PluginFieldType::Float: return "float";
    case PluginFieldType::String: return "string";
    case PluginFieldType::Ints: return "ints";
    case PluginFieldType::Floats: return "floats";
  }
  return "?";
}

PluginRegistry& PluginRegistry::global() {
  static PluginRegistry registry;
  return registry;
}

void PluginRegistry::add(std::unique_ptr<PluginCreator> creator) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  const std::string name = creator->name();
  if (find(name, creator->version(), creator->plugin_namespace()))
    throw Error("plugin '" + name + "' version '" + creator->version() + "' namespace '" +
                creator->plugin_namespace() + "' is already registered");
  const bool first_of_name = !has_name(name);
  if (first_of_name) {
    const ops::OpSchema* existing = ops::find_op("", name);
    if (existing)
      throw Error("plugin '" + name + "' has the name of an op kiln implements; choose another name");
    ops::register_op({.op = name, .domain = "", .since_opset = 1, .min_inputs = 0, .max_inputs = 1 << 20,
                      .min_outputs = 1, .max_outputs = 1 << 20, .infer = infer_plugin, .reference = nullptr,
                      .from_plugin = true});
    backend::register_kernel(plugin_factory(name));
#ifdef KILN_HAVE_CUDA
    backend::register_kernel(plugin_cuda_factory(name));
#endif
  }
  creators_.push_back(std::move(creator));
}

const PluginCreator* PluginRegistry::find(const std::string& name, const std::string& version,
                                          const std::string& ns) const {
  for (const auto& c : creators_)
    if (c->name() == name && c->version() == version && c->plugin_namespace() == ns) return c.get();
  return nullptr;
}

bool PluginRegistry::has_name(const std::string& name) const {
  return std::any_of(creators_.begin(), creators_.end(), [&](const auto& c) { return c->name() == name; });
}

std::vector<const PluginCreator*> PluginRegistry::creators() const {
  std::vector<const PluginCreator*> out;
  for (const auto& c : creators_) out.push_back(c.get());
  return out;
}

const PluginCreator* plugin_creator_for(const Node& node) {
  return PluginRegistry::global().find(node.op, node.attrs.get_string("plugin_version", "1"),
                                       node.attrs.get_string("plugin_namespace", ""));
}

Attributes plugin_fields_of(const Node& node, const PluginCreator& creator) {
  const std::vector<PluginField> fields = creator.fields();
  auto field_names = [&] {
    std::string s;
    for (const auto& f : fields) s += (s.empty() ? "" : ", ") + f.name + " (" + plugin_field_type_name(f.type) + ")";
    return s.empty() ? std::string("none") : s;
  };
  for (const auto& [name, attr] : node.attrs.items()) {
    if (is_reserved_attribute(name)) continue;
    // Captured by an init-capture: clang before 16 cannot capture structured bindings.
    auto it = std::find_if(fields.begin(), fields.end(),
                           [&, &name = name](const PluginField& f) { return f.name == name; });
    if (it == fields.end())
      throw Error("node " + node.label() + ": plugin " + creator.name() + " has no field '" + name +
                  "' (fields: " + field_names() + ")");
    if (!has_type(attr.value, it->type))
      throw Error("node " + node.label() + ": field '" + name + "' of plugin " + creator.name() + " must be " +
                  plugin_field_type_name(it->type));
  }
  Attributes out;
  for (const PluginField& f : fields) {
    if (const Attribute* a = node.attrs.find(f.name)) {
      out.set(f.name, a->value);
    } else if (f.required) {
      throw Error("node " + node.label() + ": plugin " + creator.name() + " needs field '" + f.name + "' (" +
                  plugin_field_type_name(f.type) + ")");
    } else {
      out.set(f.name, f.default_value);
    }
  }
  return out;
}

void load_plugin_library(const std::string& path) {
  // Loading a library again (by any path to the same file: dlopen hands back the same handle) is a no-op, so
  // independent parts of a program (or tests in one process) may each load the plugins they need.
  static std::mutex mutex;
  static std::set<void*> registered;
  std::lock_guard<std::mutex> lock(mutex);
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = dlerror();
    throw Error(path + ": cannot load plugin library: " + (e ? e : "unknown error"));
  }
  if (registered.count(handle)) {
    dlclose(handle);  // drops the reference this call took; the library stays loaded
    return;
  }
  using AbiFn = int (*)();
  using RegisterFn = void (*)(PluginRegistry&);
  auto abi = reinterpret_cast<AbiFn>(dlsym(handle, "kiln_plugin_abi_version"));
  auto reg = reinterpret_cast<RegisterFn>(dlsym(handle, "kiln_register_plugins"));
  if (!abi || !reg) {
    dlclose(handle);
    throw Error(path + ": not a kiln plugin library (no KILN_PLUGIN_LIBRARY entry points)");
  }
  if (abi() != KILN_PLUGIN_ABI_VERSION) {
    const int got = abi();
    dlclose(handle);
    throw Error(path + ": built against kiln plugin ABI version " + std::to_string(got) + ", this kiln has version " +
                std::to_string(KILN_PLUGIN_ABI_VERSION) + "; rebuild the plugin against this kiln's headers");
  }
  try {
    reg(PluginRegistry::global());  // the library stays loaded: its creators live in the registry
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  registered.insert(handle);
}

namespace detail {
bool register_plugin_creator(std::unique_ptr<PluginCreator> creator) {
  PluginRegistry::global().add(std::move(creator));
  return true;
}
}  // namespace detail

}  // namespace kiln
