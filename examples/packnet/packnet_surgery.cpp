// PackNet01's graph surgery, written against kiln's public surgery API — what NVIDIA's onnx_packnet sample
// does with ONNX-GraphSurgeon before handing the model to TensorRT:
//   1. fold the constant chains that compute every Pad's pads and every Resize's scales;
//   2. collapse each exported GroupNorm (Reshape → InstanceNormalization → Reshape → Mul → Add) into one
//      GroupNormalizationPlugin node with eps and num_groups;
//   3. cleanup, toposort, save.
// usage: packnet_surgery IN.onnx OUT.onnx
#include <kiln/graph.h>
#include <kiln/onnx.h>
#include <kiln/passes.h>

#include <iostream>

namespace {

const kiln::TensorData* constant_of(const kiln::Tensor* t) {
  const auto* c = dynamic_cast<const kiln::Constant*>(t);
  return c ? &c->values() : nullptr;
}

// The constant operand of a Mul/Add (the other one is the data path).
kiln::Tensor* constant_operand(const kiln::Node* n) {
  return n->input(0)->is_constant() ? n->input(0) : n->input(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: packnet_surgery IN.onnx OUT.onnx\n";
    return 2;
  }
  try {
    auto graph = kiln::import_onnx(argv[1]);
    const size_t nodes_before = graph->num_nodes();

    // 1. Pads and Resize scales: their inputs come from Shape/ConstantOfShape/Concat/Slice... chains.
    kiln::PropagateReport folded = kiln::fold_constants(*graph);
    size_t constant_pads = 0, constant_scales = 0;
    for (const auto& n : graph->nodes()) {
      if (n->op == "Pad" && n->input(1) && n->input(1)->is_constant()) ++constant_pads;
      if (n->op == "Resize" && n->input(2) && n->input(2)->is_constant()) ++constant_scales;
    }

    // 2. GroupNorm. Collect first: the surgery below changes graph->nodes().
    std::vector<kiln::Node*> norms;
    for (const auto& n : graph->nodes())
      if (n->op == "InstanceNormalization") norms.push_back(n.get());
    size_t collapsed = 0;
    for (kiln::Node* norm : norms) {
      kiln::Node* reshape_in = norm->i(0);  // Reshape(X, [0, G, -1])
      kiln::Node* reshape_out = norm->o();  // Reshape(., shape of X)
      kiln::Node* mul = reshape_out ? reshape_out->o() : nullptr;
      kiln::Node* add = mul ? mul->o() : nullptr;
      if (!reshape_in || reshape_in->op != "Reshape" || !reshape_out || reshape_out->op != "Reshape" || !mul ||
          mul->op != "Mul" || !add || add->op != "Add") {
        std::cerr << "skipping " << norm->label() << ": not the exported GroupNorm pattern\n";
        continue;
      }
      const kiln::TensorData* group_shape = constant_of(reshape_in->input(1));
      const kiln::TensorData* gamma = constant_of(constant_operand(mul));
      const kiln::TensorData* beta = constant_of(constant_operand(add));
      if (!group_shape || !gamma || !beta) {
        std::cerr << "skipping " << norm->label() << ": group count or affine parameters are not constant\n";
        continue;
      }
      kiln::Tensor* x = reshape_in->input(0);
      const int64_t channels = gamma->numel();
      // The plugin takes scale and bias as [C]; PyTorch exports them as [C, 1, 1].
      kiln::Constant* scale = graph->add_constant(graph->unique_name(norm->name + "_scale"), gamma->reshaped({channels}));
      kiln::Constant* bias = graph->add_constant(graph->unique_name(norm->name + "_bias"), beta->reshaped({channels}));
      kiln::Node* plugin = graph->replace_nodes({reshape_in, norm, reshape_out, mul, add}, "GroupNormalizationPlugin",
                                                {x, scale, bias}, {add->output(0)}, norm->name);
      plugin->attrs.set("eps", norm->attrs.get_float("epsilon", 1e-5f));
      plugin->attrs.set("num_groups", group_shape->as_int64(1));
      plugin->attrs.set("plugin_version", std::string("1"));
      plugin->attrs.set("plugin_namespace", std::string(""));
      ++collapsed;
    }

    // 3. Tidy and save.
    const size_t removed = graph->cleanup();
    graph->toposort();
    kiln::export_onnx(*graph, argv[2]);
    std::cout << "folded " << folded.folded_nodes << " constant nodes; " << constant_pads << " Pads and "
              << constant_scales << " Resizes now have constant inputs\n"
              << "collapsed " << collapsed << " GroupNorm subgraphs into GroupNormalizationPlugin nodes\n"
              << "cleanup removed " << removed << " nodes; " << nodes_before << " -> " << graph->num_nodes()
              << " nodes\nwrote " << argv[2] << "\n";
  } catch (const kiln::Error& e) {
    std::cerr << "packnet_surgery: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
