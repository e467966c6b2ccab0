// kiln — reading and writing tensors as files: numpy .npy and ONNX TensorProto .pb (the format of the ONNX
// test data sets). Every failure is a kiln::Error whose one-line message starts with the file's path.
#pragma once
#include <string>

#include "kiln/tensor_data.h"

namespace kiln {

// numpy .npy, format versions 1-3, C order, little-endian (or byte-order-free) dtypes:
// f2 f4 f8 c8 c16, i1 i2 i4 i8, u1 u2 u4 u8, b1.
TensorData read_npy(const std::string& path);
// Writes format 1.0 (2.0 when the header needs it), atomically: a temporary file next to `path`, then
// rename. Dtypes numpy has no name for (bfloat16, string) are rejected.
void write_npy(const std::string& path, const TensorData& tensor);

// One serialized onnx.TensorProto (raw_data or the typed fields; external data is rejected).
TensorData read_tensor_proto(const std::string& path);

// By extension: .npy → read_npy, .pb → read_tensor_proto.
TensorData read_tensor_file(const std::string& path);

}  // namespace kiln
