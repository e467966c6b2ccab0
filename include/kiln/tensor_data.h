// kiln — element types and dense host tensors (constant values, reference-kernel operands).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

// Numbering follows ONNX TensorProto.DataType so conversion is a cast.
enum class DType : int32_t {
  Undefined = 0,
  Float = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,
  Bool = 9,
  Float16 = 10,
  Double = 11,
  UInt32 = 12,
  UInt64 = 13,
  Complex64 = 14,
  Complex128 = 15,
  BFloat16 = 16,
  // Values that are not tensors (outside ONNX's tensor element types; the importer maps sequence_type and
  // optional_type here). A TensorData of these holds a list of element values instead of bytes.
  Sequence = 100,
  Optional = 101,
};

// Bytes per element; 0 for String, Sequence, Optional and Undefined.
size_t dtype_size(DType t);
// "float32", "int64", ... (numpy names, which users read most often).
const char* dtype_name(DType t);
bool dtype_is_float(DType t);
bool dtype_is_integer(DType t);
// Sequence or Optional: a value that holds other values rather than elements in bytes.
inline bool dtype_is_container(DType t) { return t == DType::Sequence || t == DType::Optional; }

// ---- Checked sizes. Every element count, byte size or offset that a file or a user controls goes through
// these, so a crafted shape is an error instead of a wrapped size.
// The product of `dims`; nullopt when a dim is negative or the product of the non-zero dims exceeds INT64_MAX
// (checking without the zeros keeps every sub-product of an accepted shape in range too).
std::optional<int64_t> checked_numel(const std::vector<int64_t>& dims);
// checked_numel × dtype_size; nullopt when either overflows.
std::optional<uint64_t> checked_nbytes(DType dtype, const std::vector<int64_t>& dims);
// a + b and a × b; nullopt on overflow.
std::optional<uint64_t> checked_add(uint64_t a, uint64_t b);
std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b);
// "float32 [2, 3]" for messages.
std::string describe_tensor(DType dtype, const std::vector<int64_t>& dims);
// "1.5 GiB", "512 bytes".
std::string format_bytes(uint64_t bytes);

// ---- The memory limit. Host allocations that input sizes drive (tensors, arenas, file reads) are refused up
// front beyond it. Default: the machine's physical memory; `kiln --maxMemory` and BuildOptions set it.
void set_max_memory(uint64_t bytes);  // 0 restores the default
uint64_t max_memory();
// Throws kiln::Error "<what> needs <n> bytes, more than the memory limit ..." when `bytes` is over the limit.
void check_memory(uint64_t bytes, const std::string& what);

// Dense row-major host tensor. Copies share the buffer (copy-on-write is the caller's job:
// use clone() before mutating shared data).
class TensorData {
 public:
  TensorData() = default;
  TensorData(DType dtype, std::vector<int64_t> dims);  // zero-initialized

  template <typename T>
  static TensorData from_vector(DType dtype, std::vector<int64_t> dims, const std::vector<T>& values);
  static TensorData scalar_int64(int64_t v);
  static TensorData vector_int64(const std::vector<int64_t>& v);
  static TensorData scalar_float(float v);
  // A sequence of tensors of dtype `element_dtype` (every element must have it), or an optional holding one value
  // (a tensor or a sequence) or none. Containers have rank 0 and no bytes; `element_dtype` may be Undefined for
  // an empty one whose type nobody declared.
  static TensorData sequence(DType element_dtype, std::vector<TensorData> elements);
  static TensorData optional(DType element_dtype, std::optional<TensorData> element);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  int64_t rank() const { return static_cast<int64_t>(dims_.size()); }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty_type() const { return dtype_ == DType::Undefined; }

  // Wraps memory owned elsewhere (an engine's arena, a user's buffer) without copying. The caller keeps
  // the memory alive for as long as the view and its copies are used.
  static TensorData view(DType dtype, std::vector<int64_t> dims, void* data);

  void* raw() { return bytes_.get(); }
  const void* raw() const { return bytes_.get(); }
  template <typename T>
  T* data() { return static_cast<T*>(raw()); }
  template <typename T>
  const T* data() const { return static_cast<const T*>(raw()); }

  // String tensors keep their elements here instead of in the byte buffer.
  std::vector<std::string>& strings() { return *strings_; }
  const std::vector<std::string>& strings() const { return *strings_; }
  // Sequence and Optional values: the values held (an optional holds 0 or 1) and their dtype. elements() throws
  // for a tensor.
  const std::vector<TensorData>& elements() const;
  DType element_dtype() const { return element_dtype_; }

  // Element i converted to double / int64, whatever the dtype (for shape arithmetic and tests).
  double as_double(int64_t i) const;
  int64_t as_int64(int64_t i) const;
  // All elements as int64 (integer or bool tensors; floats are truncated).
  std::vector<int64_t> to_int64_vector() const;

  TensorData clone() const;  // deep copy
  TensorData reshaped(std::vector<int64_t> dims) const;  // shares the buffer
  bool same_values(const TensorData& other) const;  // dtype, dims and bytes (or strings, or elements) equal

 private:
  DType dtype_ = DType::Undefined;
  std::vector<int64_t> dims_;
  std::shared_ptr<unsigned char> bytes_;  // 64-byte aligned when owned (SIMD loads)
  std::shared_ptr<std::vector<std::string>> strings_;
  std::shared_ptr<const std::vector<TensorData>> elements_;  // containers only; immutable once made
  DType element_dtype_ = DType::Undefined;
};

template <typename T>
TensorData TensorData::from_vector(DType dtype, std::vector<int64_t> dims, const std::vector<T>& values) {
  TensorData t(dtype, std::move(dims));
  if (static_cast<size_t>(t.numel()) != values.size() || sizeof(T) != dtype_size(dtype))
    throw std::invalid_argument("TensorData::from_vector: size or element type mismatch");
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

// A float tensor (float64/32/16, bfloat16) converted to float32, float16 or bfloat16 with round-to-nearest-even;
// the same tensor (shared buffer) when it already has that dtype.
TensorData convert_float(const TensorData& t, DType to);

// IEEE half and bfloat16 conversions (used by Cast and by importers).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

}  // namespace kiln
