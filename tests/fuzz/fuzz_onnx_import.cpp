// libFuzzer target: ONNX bytes → import_onnx_bytes → shape inference with value propagation → constant folding.
// External data resolves against an empty directory, so nothing outside the input is read.
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "kiln/onnx.h"
#include "kiln/passes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  kiln_fuzz::expect_only_kiln_errors("onnx_import", [&] {
    kiln::ImportOptions import_options;
    import_options.load_external_data_lazily = false;  // decode every initializer during import
    auto graph = kiln::import_onnx_bytes(bytes, "<fuzz>", kiln_fuzz::empty_dir(), import_options);
    kiln::PropagateOptions options;
    options.allow_unknown_ops = true;          // keep going past ops kiln has no schema for
    options.max_folded_bytes = size_t{1} << 20;  // bounded work per input
    kiln::fold_constants(*graph, options);
  });
  return 0;
}
