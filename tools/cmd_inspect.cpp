// `kiln inspect MODEL.onnx [--fold] [--json]`
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"
#include "kiln/stats.h"

namespace kiln::cli {
namespace {

struct InspectArgs {
  std::string model;
  bool fold = false;
  bool json = false;
  bool allow_unknown_ops = false;
};

nlohmann::json io_json(const std::vector<Tensor*>& ts) {
  nlohmann::json out = nlohmann::json::array();
  for (const Tensor* t : ts) {
    nlohmann::json shape = nullptr;
    if (t->shape) {
      shape = nlohmann::json::array();
      for (const Dim& d : *t->shape)
        shape.push_back(d.is_static() ? nlohmann::json(d.value)
                                      : nlohmann::json(d.symbol.empty() ? "?" : d.symbol));
    }
    out.push_back({{"name", t->name}, {"dtype", dtype_name(t->dtype)}, {"shape", shape}});
  }
  return out;
}

std::string with_commas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int k = static_cast<int>(s.size()) - 3; k > 0; k -= 3) s.insert(static_cast<size_t>(k), ",");
  return s;
}

void print_io(const char* title, const std::vector<Tensor*>& ts) {
  std::cout << title << ":\n";
  for (const Tensor* t : ts)
    std::cout << "  " << std::left << std::setw(24) << t->name << " " << std::setw(8) << dtype_name(t->dtype)
              << " " << (t->shape ? to_string(*t->shape) : "unknown") << "\n";
}

int run_inspect(const InspectArgs& args) {
  std::unique_ptr<Graph> graph = import_onnx(args.model);
  const size_t unknown_in_file = count_unknown_shapes(*graph);
  PropagateOptions options;
  options.allow_unknown_ops = args.allow_unknown_ops;
  // Shapes are needed for MACs either way; --fold also rewrites the graph.
  PropagateReport report = args.fold ? fold_constants(*graph, options) : infer_shapes(*graph, options);
  GraphStats s = compute_stats(*graph);

  if (args.json) {
    nlohmann::json j;
    j["model"] = args.model;
    j["folded"] = args.fold;
    j["nodes"] = s.nodes;
    j["op_histogram"] = s.op_histogram;
    j["params"] = s.params;
    j["param_bytes"] = s.param_bytes;
    j["macs"] = s.macs;
    j["macs_unknown_nodes"] = s.macs_unknown_nodes;
    j["tensors"] = s.tensors;
    j["unknown_shapes"] = s.unknown_shapes;
    j["unknown_shapes_in_file"] = unknown_in_file;
    j["inputs"] = io_json(graph->inputs);
    j["outputs"] = io_json(graph->outputs);
    j["folded_nodes"] = report.folded_nodes;
    nlohmann::json nf = nlohmann::json::array();
    for (const auto& n : report.not_folded) nf.push_back({{"node", n.node}, {"reason", n.reason}});
    j["not_folded"] = nf;
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::cout << "model: " << args.model << "\n";
  std::cout << "producer: " << graph->producer_name << " " << graph->producer_version
            << ", ir_version " << graph->ir_version << ", opsets:";
  for (const auto& o : graph->opset_imports) std::cout << " " << (o.domain.empty() ? "ai.onnx" : o.domain) << "=" << o.version;
  std::cout << "\n";
  print_io("inputs", graph->inputs);
  print_io("outputs", graph->outputs);
  std::cout << "nodes: " << s.nodes << (args.fold ? " (after folding " + std::to_string(report.folded_nodes) + ")" : "")
            << "\nops:";
  for (const auto& [op, count] : s.op_histogram) std::cout << " " << op << "=" << count;
  std::ostringstream gmac;
  gmac << std::fixed << std::setprecision(2) << static_cast<double>(s.macs) / 1e9;
  std::cout << "\nparams: " << with_commas(s.params) << " (" << with_commas(s.param_bytes) << " bytes of constants)"
            << "\nMACs: " << with_commas(s.macs) << " (" << gmac.str() << " GMAC)";
  if (s.macs_unknown_nodes) std::cout << ", " << s.macs_unknown_nodes << " nodes with unknown shapes not counted";
  std::cout << "\ntensors: " << s.tensors << ", unknown shapes: " << s.unknown_shapes
            << " (declared unknown in the file: " << unknown_in_file << ")\n";
  if (!report.not_folded.empty()) {
    std::cout << "not folded (" << report.not_folded.size() << "):\n";
    for (const auto& n : report.not_folded) std::cout << "  " << n.node << ": " << n.reason << "\n";
  }
  return 0;
}

}  // namespace

Command add_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  app.add_option("model", args->model, "ONNX model")->required()->check(CLI::ExistingFile);
  app.add_flag("--fold", args->fold, "Report after constant folding and shape inference");
  app.add_flag("--json", args->json, "Print one JSON object");
  app.add_flag("--allow-unknown-ops", args->allow_unknown_ops, "Leave ops kiln does not know unresolved");
  return [args] { return run_inspect(*args); };
}

}  // namespace kiln::cli
