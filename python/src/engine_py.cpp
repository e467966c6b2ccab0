// kiln._kiln — Model (an imported ONNX graph), BuildOptions, Engine and Context over include/kiln/engine.h.
// The Python classes in kiln/ (InferenceSession, Builder, Engine) are written on these.
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <memory>

#include "convert.h"
#include "kiln/engine.h"
#include "kiln/error.h"
#include "kiln/onnx.h"
#include "kiln/plugin.h"
#include "log.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace kiln::py {
namespace {

// A dim as ONNX Runtime reports it: an int, the symbol's name, or None when unknown.
nb::object dim_object(const Dim& d) {
  if (d.is_static()) return nb::int_(d.value);
  if (!d.symbol.empty()) return nb::str(d.symbol.c_str());
  return nb::none();
}

// (name, type, shape) with shape a list of dims, or None when the rank is unknown.
nb::tuple describe(const Tensor& t) {
  nb::object shape = nb::none();
  if (t.shape) {
    nb::list dims;
    for (const Dim& d : *t.shape) dims.append(dim_object(d));
    shape = dims;
  }
  return nb::make_tuple(std::string(t.name), ort_type_name(t.dtype), shape);
}

nb::list describe(const std::vector<TensorInfo>& infos) {
  nb::list out;
  for (const TensorInfo& i : infos) {
    nb::list dims;
    for (int64_t d : i.dims) dims.append(d < 0 ? nb::none() : nb::object(nb::int_(d)));
    out.append(nb::make_tuple(i.name, ort_type_name(i.dtype), dims));
  }
  return out;
}

// A CUDA array's dims; kiln engines run on the first GPU (cuda:0), so arrays elsewhere are refused.
std::vector<int64_t> dims_of(const std::string& name, const CudaArray& a) {
  if (a.device_id() != 0)
    throw Error("'" + name + "' is on cuda:" + std::to_string(a.device_id()) +
                "; kiln engines run on cuda:0");
  std::vector<int64_t> dims(a.ndim());
  for (size_t k = 0; k < a.ndim(); ++k) dims[k] = a.shape(k);
  return dims;
}

struct Model {
  std::unique_ptr<Graph> graph;
};

DType precision_of(const std::string& p) {
  if (p == "fp32" || p == "tf32") return DType::Float;
  if (p == "fp16") return DType::Float16;
  if (p == "bf16") return DType::BFloat16;
  throw Error("precision must be fp32, tf32, fp16 or bf16, not '" + printable(p) + "'");
}

// The log callback calls into Python from a build that runs without the GIL.
BuildOptions with_python_log(BuildOptions o, nb::object log) {
  if (log.is_none()) return o;
  auto shared = std::make_shared<nb::object>(std::move(log));
  o.log = [shared](const std::string& message) {
    nb::gil_scoped_acquire gil;
    try {
      (*shared)(message);
    } catch (nb::python_error& e) {
      e.discard_as_unraisable(__func__);
    }
  };
  return o;
}

}  // namespace

void bind_engine(nb::module_& m) {
  nb::class_<Model>(m, "Model", "An imported ONNX model (kiln::Graph).")
      .def_static(
          "from_path",
          [](const std::string& path) {
            std::vector<std::string> warnings;
            Model model;
            {
              nb::gil_scoped_release release;
              model.graph = import_onnx(path, collecting_warnings(warnings));
            }
            log_warnings(warnings);
            return model;
          },
          "path"_a)
      .def_static(
          "from_bytes",
          [](nb::bytes data, const std::string& base_dir) {
            std::string bytes(data.c_str(), data.size());
            std::vector<std::string> warnings;
            Model model;
            {
              nb::gil_scoped_release release;
              model.graph = import_onnx_bytes(bytes, "<bytes>", base_dir, collecting_warnings(warnings));
            }
            log_warnings(warnings);
            return model;
          },
          "data"_a, "base_dir"_a = ".")
      .def("inputs",
           [](const Model& m) {
             nb::list out;
             for (const Tensor* t : m.graph->inputs)
               if (!t->is_constant()) out.append(describe(*t));  // ORT lists initializers apart
             return out;
           })
      .def("outputs", [](const Model& m) {
        nb::list out;
        for (const Tensor* t : m.graph->outputs) out.append(describe(*t));
        return out;
      });

  nb::class_<ShapeRange>(m, "ShapeRange")
      .def(nb::init<>())
      .def("__init__",
           [](ShapeRange* r, std::vector<int64_t> min, std::vector<int64_t> opt, std::vector<int64_t> max) {
             new (r) ShapeRange{std::move(min), std::move(opt), std::move(max)};
           })
      .def_rw("min", &ShapeRange::min)
      .def_rw("opt", &ShapeRange::opt)
      .def_rw("max", &ShapeRange::max);

  nb::class_<BuildOptions>(m, "BuildOptions", "kiln::BuildOptions (include/kiln/build_options.h).")
      .def(nb::init<>())
      .def_rw("device", &BuildOptions::device)
      .def_rw("threads", &BuildOptions::threads)
      .def_prop_rw(
          "precision", [](const BuildOptions& o) { return std::string(dtype_name(o.precision)); },
          [](BuildOptions& o, const std::string& p) { o.precision = precision_of(p); })
      .def_rw("tf32", &BuildOptions::tf32)
      .def_rw("timing_cache_file", &BuildOptions::timing_cache_file)
      .def_rw("reference_kernels", &BuildOptions::reference_kernels)
      .def_rw("allow_host_fallback", &BuildOptions::allow_host_fallback)
      .def_rw("input_shapes", &BuildOptions::input_shapes)
      .def_rw("profiles", &BuildOptions::profiles)
      .def_rw("skip_rewrites", &BuildOptions::skip_rewrites)
      .def_prop_rw(
          "max_folded_bytes", [](const BuildOptions& o) { return o.fold.max_folded_bytes; },
          [](BuildOptions& o, size_t v) { o.fold.max_folded_bytes = v; })
      .def_prop_rw(
          "allow_unknown_ops", [](const BuildOptions& o) { return o.fold.allow_unknown_ops; },
          [](BuildOptions& o, bool v) { o.fold.allow_unknown_ops = v; })
      .def_rw("verbose", &BuildOptions::verbose);

  nb::class_<ExecutionContext>(m, "Context", "kiln::ExecutionContext: one per thread.")
      .def(
          "set_input",
          [](ExecutionContext& c, const std::string& name, const HostArray& a) {
            c.set_input(name, view_of(a));
          },
          "name"_a, "array"_a, nb::call_guard<nb::gil_scoped_release>())
      .def(
          "set_input_strings",
          [](ExecutionContext& c, const std::string& name, std::vector<int64_t> dims,
             std::vector<std::string> s) {
            TensorData t(DType::String, std::move(dims));
            if (static_cast<size_t>(t.numel()) != s.size())
              throw Error("input '" + name + "': shape and strings differ");
            t.strings() = std::move(s);
            c.set_input(name, t);
          },
          "name"_a, "dims"_a, "strings"_a)
      .def(
          "set_input_device",
          [](ExecutionContext& c, const std::string& name, const CudaArray& a, uintptr_t stream) {
            c.set_input_device(name, a.data(), dtype_of(a.dtype()), dims_of(name, a),
                               reinterpret_cast<void*>(stream));
          },
          "name"_a, "array"_a, "stream"_a = 0, nb::call_guard<nb::gil_scoped_release>())
      .def(
          "copy_output_to_device",
          [](ExecutionContext& c, const std::string& name, const CudaArray& a, uintptr_t stream) {
            const TensorInfo out = c.output_info(name);
            if (dtype_of(a.dtype()) != out.dtype || dims_of(name, a) != out.dims)
              throw Error("output '" + name + "' is " + dtype_name(out.dtype) + " " +
                          to_string(make_shape(out.dims)) + ", the destination " +
                          dtype_name(dtype_of(a.dtype())) + " " + to_string(make_shape(dims_of(name, a))));
            c.copy_output_to_device(name, a.data(), a.nbytes(), reinterpret_cast<void*>(stream));
          },
          "name"_a, "array"_a, "stream"_a = 0, nb::call_guard<nb::gil_scoped_release>())
      .def("set_input_shape", &ExecutionContext::set_input_shape, "name"_a, "dims"_a)
      .def("run", &ExecutionContext::run, nb::call_guard<nb::gil_scoped_release>())
      .def(
          "output",
          [](const ExecutionContext& c, const std::string& name) { return to_python(c.output(name)); },
          "name"_a)
      .def(
          "output_dims",
          [](const ExecutionContext& c, const std::string& name) { return c.output_info(name).dims; },
          "name"_a)
      .def("set_data_transfers", &ExecutionContext::set_data_transfers, "on"_a)
      .def("set_profiling", &ExecutionContext::set_profiling, "on"_a)
      .def("set_use_graph", &ExecutionContext::set_use_graph, "on"_a)
      .def("layer_times_ms", &ExecutionContext::layer_times_ms)
      .def("layers",
           [](const ExecutionContext& c) {
             std::vector<std::tuple<std::string, std::string, std::string, std::string>> out;
             for (const LayerInfo& l : c.layers()) out.emplace_back(l.name, l.op, l.kernel, l.tactic);
             return out;
           })
      .def("last_run_times", [](const ExecutionContext& c) {
        const RunTimes& t = c.last_run_times();
        return nb::make_tuple(t.h2d_ms, t.compute_ms, t.d2h_ms);
      });

  nb::class_<Engine>(m, "Engine", "kiln::Engine: an optimized, planned model.")
      .def_static(
          "build",
          [](const Model& model, const BuildOptions& options, nb::object log) {
            BuildOptions o = with_python_log(options, std::move(log));
            nb::gil_scoped_release release;
            return Engine::build(*model.graph, o);
          },
          "model"_a, "options"_a, "log"_a = nb::none())
      .def_static(
          "load",
          [](const std::string& path, const BuildOptions& options) {
            nb::gil_scoped_release release;
            return Engine::load(path, options);
          },
          "path"_a, "options"_a)
      .def("save", &Engine::save, "path"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("inputs", [](const Engine& e) { return describe(e.inputs()); })
      .def("outputs", [](const Engine& e) { return describe(e.outputs()); })
      .def("layers",
           [](const Engine& e) {
             std::vector<std::tuple<std::string, std::string, std::string, std::string>> out;
             for (const LayerInfo& l : e.layers()) out.emplace_back(l.name, l.op, l.kernel, l.tactic);
             return out;
           })
      .def("device", [](const Engine& e) { return e.options().device; })
      .def("device_description", &Engine::device_description)
      .def("memory",
           [](const Engine& e) {
             MemoryReport r = e.memory();
             return nb::make_tuple(r.activations, r.weights, r.workspace);
           })
      .def("create_context", &Engine::create_context, nb::keep_alive<0, 1>());

  m.def("load_plugin_library", &load_plugin_library, "path"_a,
        "dlopen()s a kiln plugin library and registers its creators.");
  m.def("plugin_names", [] {
    std::vector<std::string> out;
    for (const PluginCreator* c : PluginRegistry::global().creators()) out.push_back(c->name());
    return out;
  });
  m.def("rewrite_names", &rewrite_names);
}

}  // namespace kiln::py
