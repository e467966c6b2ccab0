// kiln._kiln — host tensors between Python (numpy, anything with __dlpack__) and kiln::TensorData.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "kiln/tensor_data.h"

namespace kiln::py {

// A C-contiguous host array, read only: numpy arrays and torch CPU tensors arrive without a copy.
using HostArray = nanobind::ndarray<nanobind::ro, nanobind::c_contig, nanobind::device::cpu>;

// A C-contiguous CUDA array (a torch CUDA tensor, through DLPack): read or written in place.
using CudaArray = nanobind::ndarray<nanobind::c_contig, nanobind::device::cuda>;

// kiln's dtype of a DLPack element type; throws kiln::Error for those kiln has none for.
DType dtype_of(nanobind::dlpack::dtype t);

// A view of `array`'s memory (no copy); valid while `array` is alive. Throws kiln::Error for element types
// kiln has no DType for.
TensorData view_of(const HostArray& array);

// A new numpy array holding a copy of `t` (bfloat16 becomes float32: numpy has no bfloat16); string tensors
// become a list of str, to be shaped by the caller. Sequences and optionals are refused with kiln::Error.
nanobind::object to_python(const TensorData& t);

// kiln's dtype as ONNX Runtime names it ("tensor(float)").
std::string ort_type_name(DType t);

}  // namespace kiln::py
