// kiln — ONNX import and export (ModelProto ⇄ Graph).
//
// Import keeps everything a round trip needs: model metadata, opsets of every domain, value_info, doc
// strings, every attribute type (sparse-tensor and type-proto attributes as opaque serialized bytes) and
// subgraphs as nested Graphs. Initializers become Constants that load lazily (embedded bytes are kept, not
// copied; external data is read from its file on first use). Model-local functions are rejected with an
// error: the IR has no place for them.
//
// Import refuses what it cannot read faithfully: IR versions above libonnx's IR_VERSION, default-domain opsets
// above kMaxOpset, untyped attributes (IR >= 2), negative dim_values, external data outside the model's folder
// or with malformed offset/length (ARCHITECTURE.md). Shape inference (kiln/passes.h) refuses a declared dtype
// or static shape that contradicts the computed one. What ONNX Runtime accepts (a graph without outputs, an
// output listed twice) is a warning through ImportOptions::on_warning.
//
// Every failure is a kiln::Error whose one-line message starts with the model's path; names and values from
// the file are escaped and cut short (kiln::printable).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "kiln/graph.h"

namespace kiln {

// The newest default-domain ("" / "ai.onnx") opset whose operator semantics kiln implements; import refuses
// models that import a newer one, as ONNX Runtime does (their ops may mean something kiln doesn't know).
constexpr int64_t kMaxOpset = 21;
// The newest IR version import accepts: what ONNX Runtime 1.32 (the peer) reads, and what current onnx's
// helper.make_model writes (onnx 1.23: 14). Newer IR versions than the libonnx kiln is built with (Debian's: 8)
// only add fields and element types (float8 in 9, int4 in 10, ...); unknown fields are kept and unknown element
// types are refused where they are used, so models from current exporters import. Beyond this, refused as ONNX
// Runtime does.
constexpr int64_t kMaxIrVersion = 14;

struct ImportOptions {
  // true: external data is read on first Constant::values(); its files are only checked (existence and
  // size) at import. false: every initializer is decoded during import, so later file changes don't matter.
  bool load_external_data_lazily = true;
  // false: a tensor stored as external data is an error (engine files embed every weight; one that points at
  // a file is corrupt or crafted).
  bool allow_external_data = true;
  // Reads external data from memory the caller holds instead of files: when set, every external tensor's
  // (location, offset, length) goes to it on first use, to fill `dst` with exactly `length` bytes (or throw);
  // locations are then names, not paths, and no file is opened. kiln.gs folds this way without copying weights.
  std::function<void(const std::string& location, uint64_t offset, uint64_t length, void* dst)> read_external;
  // Called with each one-line warning (prefixed with the model's path) about something ONNX Runtime also
  // accepts: a graph without outputs, an output listed twice. Default: printed to stderr; empty: ignored.
  std::function<void(const std::string&)> on_warning = default_warning;
  static void default_warning(const std::string& message);
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
