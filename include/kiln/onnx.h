// kiln — ONNX import and export (ModelProto ⇄ Graph).
//
// Import keeps everything a round trip needs: model metadata, opsets of every domain, value_info, doc
// strings, every attribute type (sparse-tensor and type-proto attributes as opaque serialized bytes) and
// subgraphs as nested Graphs. Initializers become Constants that load lazily (embedded bytes are kept, not
// copied; external data is read from its file on first use). Model-local functions are rejected with an
// error: the IR has no place for them.
//
// Every failure is a kiln::Error whose one-line message starts with the model's path.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "kiln/graph.h"

namespace kiln {

struct ImportOptions {
  // true: external data is read on first Constant::values(); its files are only checked (existence and
  // size) at import. false: every initializer is decoded during import, so later file changes don't matter.
  bool load_external_data_lazily = true;
};

struct ExportOptions {
  // Write initializers of at least `external_threshold` bytes to `external_file` (next to the model;
  // default "<model file name>.data"). Models whose initializers would make the protobuf exceed 2 GB
  // use external data even when this is false.
  bool external_data = false;
  size_t external_threshold = 1024;
  std::string external_file;
};

std::unique_ptr<Graph> import_onnx(const std::string& path, const ImportOptions& options = {});
// `source_name` prefixes error messages; external data locations are relative to `base_dir`.
std::unique_ptr<Graph> import_onnx_bytes(const std::string& bytes, const std::string& source_name = "<bytes>",
                                         const std::string& base_dir = ".", const ImportOptions& options = {});

// Writes atomically (temporary file in the same directory, then rename), the external data file too.
void export_onnx(const Graph& graph, const std::string& path, const ExportOptions& options = {});
// All initializers inline; throws if the model would exceed protobuf's 2 GB limit.
std::string export_onnx_bytes(const Graph& graph);

}  // namespace kiln
