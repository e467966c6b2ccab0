// `kiln surgeon sanitize IN.onnx -o OUT.onnx [--fold-constants] [--cleanup] [--toposort]`
#include <iostream>
#include <memory>

#include "commands.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"

namespace kiln::cli {
namespace {

struct SanitizeArgs {
  std::string input, output;
  bool fold = false, cleanup = false, toposort = false, allow_unknown_ops = false;
  size_t fold_cap_mb = 64;
};

int run_sanitize(const SanitizeArgs& args) {
  std::unique_ptr<Graph> graph = import_onnx(args.input);
  const size_t before = graph->num_nodes();
  if (args.fold) {
    PropagateOptions options;
    options.allow_unknown_ops = args.allow_unknown_ops;
    options.max_folded_bytes = args.fold_cap_mb << 20;
    PropagateReport r = fold_constants(*graph, options);
    std::cerr << "fold-constants: folded " << r.folded_nodes << " nodes, " << r.unknown_shapes
              << " tensors with unknown shape left\n";
    for (const auto& n : r.not_folded) std::cerr << "  not folded: " << n.node << ": " << n.reason << "\n";
  }
  if (args.cleanup) std::cerr << "cleanup: removed " << graph->cleanup() << " nodes\n";
  if (args.toposort) graph->toposort();
  export_onnx(*graph, args.output);
  std::cerr << "wrote " << args.output << ": " << before << " -> " << graph->num_nodes() << " nodes\n";
  return 0;
}

}  // namespace

Command add_surgeon(CLI::App& app) {
  app.require_subcommand(1);
  auto args = std::make_shared<SanitizeArgs>();
  CLI::App* sanitize = app.add_subcommand("sanitize", "Fold constants, remove dead nodes, sort");
  sanitize->add_option("input", args->input, "ONNX model")->required()->check(CLI::ExistingFile);
  sanitize->add_option("-o,--output", args->output, "Output ONNX model")->required();
  sanitize->add_flag("--fold-constants", args->fold, "Evaluate every subgraph whose inputs are constant");
  sanitize->add_flag("--cleanup", args->cleanup, "Remove nodes that do not reach an output");
  sanitize->add_flag("--toposort", args->toposort, "Sort nodes topologically");
  sanitize->add_flag("--allow-unknown-ops", args->allow_unknown_ops, "Skip ops kiln does not know");
  sanitize->add_option("--fold-cap-mb", args->fold_cap_mb, "Largest folded tensor, MiB (default 64)");
  return [sanitize, args]() -> int {
    if (sanitize->parsed()) return run_sanitize(*args);
    return 1;
  };
}

}  // namespace kiln::cli
