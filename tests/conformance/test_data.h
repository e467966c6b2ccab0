// kiln_conformance: reading the ONNX node tests' files — model bytes, and TensorProto .pb files into kiln
// tensors (every storage field ONNX test data uses; bfloat16 stored as uint16 in older data sets).
#pragma once
#include <onnx/onnx-data_pb.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/tensor_data.h"

namespace kiln_conformance {

// Thrown while reading test data for things kiln cannot represent (e.g. float8 data).
struct Unrepresentable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string lower(std::string s);
// "float32", "float8e4m3fn", "data type 99": an ONNX element type for messages.
std::string type_name(int elem_type);
bool read_file(const std::filesystem::path& p, std::string& out);

// `declared` is the element type the model declares for this value (0 if unknown). Older ONNX test data
// stores bfloat16 tensors as uint16; they are read back as bfloat16 when the model says so.
kiln::TensorData tensor_from_proto(const onnx::TensorProto& tp, int declared);

struct NamedTensor {
  std::string name;  // as stored in the .pb (may be empty)
  kiln::TensorData value;
};
// `kind` "sequence" or "optional" reads a SequenceProto or OptionalProto (whose tensors are read with
// `declared`, the innermost element type) into a kiln sequence or optional value; anything else a TensorProto.
NamedTensor load_pb(const std::filesystem::path& p, int declared, const std::string& kind = "");

// Files named `stem`_0.pb, `stem`_1.pb, ... in numeric order.
std::vector<std::filesystem::path> numbered(const std::filesystem::path& dir, const std::string& stem);

}  // namespace kiln_conformance
