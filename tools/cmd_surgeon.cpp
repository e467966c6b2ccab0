// `kiln surgeon sanitize IN.onnx -o OUT.onnx [--fold-constants] [--cleanup] [--toposort]`
// `kiln surgeon fuse IN.onnx -o OUT.onnx [--groupnorm=plugin|native|off] [--no-pad-into-conv]`
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

struct FuseArgs {
  std::string input, output, groupnorm = "native";
  bool pad_into_conv = true, allow_unknown_ops = false;
};

// Nodes of `op` whose input `k` is a Constant (e.g. Pads with constant pads).
size_t with_constant_input(const Graph& g, const std::string& op, size_t k) {
  size_t n = 0;
  for (const auto& node : g.nodes())
    if (node->op == op && node->input(k) && node->input(k)->is_constant()) ++n;
  return n;
}

int run_fuse(const FuseArgs& args) {
  if (args.groupnorm != "plugin" && args.groupnorm != "native" && args.groupnorm != "off")
    throw Error("--groupnorm must be plugin, native or off, not '" + args.groupnorm + "'");
  std::unique_ptr<Graph> graph = import_onnx(args.input);
  const size_t before = graph->num_nodes();
  const size_t pads_before = with_constant_input(*graph, "Pad", 1);
  const size_t resize_before = with_constant_input(*graph, "Resize", 2) + with_constant_input(*graph, "Upsample", 1);
  PropagateOptions options;
  options.allow_unknown_ops = args.allow_unknown_ops;
  PropagateReport folded = fold_constants(*graph, options);
  const size_t pads_constant = with_constant_input(*graph, "Pad", 1) - pads_before;
  const size_t resize_constant =
      with_constant_input(*graph, "Resize", 2) + with_constant_input(*graph, "Upsample", 1) - resize_before;
  std::vector<NotFolded> rejected;
  size_t groupnorms = 0;
  if (args.groupnorm != "off")
    groupnorms = fuse_groupnorm(*graph, &rejected,
                                args.groupnorm == "plugin" ? GroupNormTarget::Plugin : GroupNormTarget::Native);
  const size_t pads_fused = args.pad_into_conv ? fuse_pad_into_conv(*graph) : 0;
  graph->cleanup();
  graph->toposort();
  // kiln_* bookkeeping (fused member names) is not ONNX: standard-domain nodes leave without it so the file
  // passes onnx.checker; kiln-domain nodes keep theirs (they are kiln's own ops).
  for (const auto& node : graph->nodes())
    if (node->domain.empty() || node->domain == "ai.onnx") {
      std::vector<std::string> internal;
      for (const auto& [name, attr] : node->attrs.items())
        if (name.rfind("kiln_", 0) == 0) internal.push_back(name);
      for (const std::string& name : internal) node->attrs.erase(name);
    }
  export_onnx(*graph, args.output);
  std::cerr << "folded " << folded.folded_nodes << " constant nodes\n"
            << "pads made constant: " << pads_constant << "\n"
            << "resize scales made constant: " << resize_constant << "\n"
            << "GroupNorm subgraphs fused (" << args.groupnorm << "): " << groupnorms << "\n"
            << "Pad folded into Conv: " << pads_fused << "\n";
  for (const NotFolded& r : rejected) std::cerr << "  GroupNorm not fused at " << r.node << ": " << r.reason << "\n";
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
  sanitize->add_option("--fold-cap-mb", args->fold_cap_mb, "Largest folded tensor, MiB (default 64; 16x that for values used only as weights)");
  auto fuse_args = std::make_shared<FuseArgs>();
  CLI::App* fuse = app.add_subcommand("fuse", "Fold constants and apply kiln's rewrites (GroupNorm, Pad into Conv)");
  fuse->add_option("input", fuse_args->input, "ONNX model")->required()->check(CLI::ExistingFile);
  fuse->add_option("-o,--output", fuse_args->output, "Output ONNX model")->required();
  fuse->add_option("--groupnorm", fuse_args->groupnorm,
                   "plugin: GroupNormalizationPlugin nodes; native: kiln.GroupNorm (+activation); off")
      ->capture_default_str();
  fuse->add_flag("!--no-pad-into-conv", fuse_args->pad_into_conv, "Keep zero Pads in front of Convs");
  fuse->add_flag("--allow-unknown-ops", fuse_args->allow_unknown_ops, "Skip ops kiln does not know");
  return [sanitize, fuse, args, fuse_args]() -> int {
    if (sanitize->parsed()) return run_sanitize(*args);
    if (fuse->parsed()) return run_fuse(*fuse_args);
    return 1;
  };
}

}  // namespace kiln::cli
