// Embedding kiln: load (or build) an engine, bind an input from a .npy file, run, save the outputs.
//
//   run_engine MODEL.onnx|ENGINE.kiln INPUT_NAME INPUT.npy OUT_DIR
#include <kiln/engine.h>
#include <kiln/onnx.h>
#include <kiln/tensor_io.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: run_engine MODEL.onnx|ENGINE.kiln INPUT_NAME INPUT.npy OUT_DIR\n";
    return 2;
  }
  const std::string model = argv[1];
  try {
    std::unique_ptr<kiln::Engine> engine;
    if (model.size() > 5 && model.substr(model.size() - 5) == ".onnx")
      engine = kiln::Engine::build(*kiln::import_onnx(model));
    else
      engine = kiln::Engine::load(model);
    auto context = engine->create_context();
    context->set_input(argv[2], kiln::read_npy(argv[3]));
    context->run();
    for (const kiln::TensorInfo& out : engine->outputs()) {
      const std::string path = std::string(argv[4]) + "/" + out.name + ".npy";
      kiln::write_npy(path, context->output(out.name));
      std::cout << out.name << " -> " << path << "\n";
    }
  } catch (const kiln::Error& e) {
    std::cerr << "run_engine: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
