#include "kiln/tensor_data.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>

#include "kiln/error.h"

namespace kiln {
namespace {
constexpr std::align_val_t kAlignment{64};

std::atomic<uint64_t> g_max_memory{0};  // 0: physical memory

uint64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return uint64_t{1} << 40;  // unknown: 1 TiB, still far below any wrapped size
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
}

std::shared_ptr<unsigned char> allocate_bytes(size_t n) {
  auto* p = static_cast<unsigned char*>(::operator new(std::max<size_t>(n, 1), kAlignment));
  std::memset(p, 0, n);
  return std::shared_ptr<unsigned char>(p, [](unsigned char* q) { ::operator delete(q, kAlignment); });
}
}  // namespace

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float: case DType::Int32: case DType::UInt32: return 4;
    case DType::UInt8: case DType::Int8: case DType::Bool: return 1;
    case DType::UInt16: case DType::Int16: case DType::Float16: case DType::BFloat16: return 2;
    case DType::Int64: case DType::Double: case DType::UInt64: case DType::Complex64: return 8;
    case DType::Complex128: return 16;
    case DType::String: case DType::Undefined: case DType::Sequence: case DType::Optional: return 0;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Undefined: return "undefined";
    case DType::Float: return "float32";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::UInt16: return "uint16";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::String: return "string";
    case DType::Bool: return "bool";
    case DType::Float16: return "float16";
    case DType::Double: return "float64";
    case DType::UInt32: return "uint32";
    case DType::UInt64: return "uint64";
    case DType::Complex64: return "complex64";
    case DType::Complex128: return "complex128";
    case DType::BFloat16: return "bfloat16";
    case DType::Sequence: return "sequence";
    case DType::Optional: return "optional";
  }
  return "invalid";
}

bool dtype_is_float(DType t) {
  return t == DType::Float || t == DType::Double || t == DType::Float16 || t == DType::BFloat16;
}

bool dtype_is_integer(DType t) {
  switch (t) {
    case DType::UInt8: case DType::Int8: case DType::UInt16: case DType::Int16: case DType::Int32:
    case DType::Int64: case DType::UInt32: case DType::UInt64: return true;
    default: return false;
  }
}

std::optional<int64_t> checked_numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  bool zero = false;
  for (int64_t d : dims) {
    if (d < 0) return std::nullopt;
    if (d == 0) {
      zero = true;
      continue;
    }
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  }
  return zero ? 0 : n;
}

std::optional<uint64_t> checked_nbytes(DType dtype, const std::vector<int64_t>& dims) {
  auto n = checked_numel(dims);
  if (!n) return std::nullopt;
  return checked_mul(static_cast<uint64_t>(*n), std::max<uint64_t>(dtype_size(dtype), 1));
}

std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::string describe_tensor(DType dtype, const std::vector<int64_t>& dims) {
  std::string s = std::string(dtype_name(dtype)) + " [";
  for (size_t k = 0; k < dims.size(); ++k) s += (k ? ", " : "") + std::to_string(dims[k]);
  return s + "]";
}

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

void set_max_memory(uint64_t bytes) { g_max_memory.store(bytes); }

uint64_t max_memory() {
  const uint64_t m = g_max_memory.load();
  return m ? m : physical_memory();
}

void check_memory(uint64_t bytes, const std::string& what) {
  if (bytes > max_memory())
    throw Error(what + " needs " + format_bytes(bytes) + ", more than the memory limit of " +
                format_bytes(max_memory()) + " (--maxMemory)");
}

TensorData::TensorData(DType dtype, std::vector<int64_t> dims) : dtype_(dtype), dims_(std::move(dims)) {
  if (dtype_is_container(dtype_))
    throw Error(std::string("a ") + dtype_name(dtype_) + " value is made by TensorData::" + dtype_name(dtype_) +
                ", not as a tensor");
  const auto bytes = checked_nbytes(dtype_, dims_);
  if (!bytes) {
    for (int64_t d : dims_)
      if (d < 0) throw Error("tensor dimension " + std::to_string(d) + " is negative");
    throw Error("tensor " + describe_tensor(dtype_, dims_) + ": its size overflows 64 bits");
  }
  // A string element costs at least its std::string object.
  const uint64_t host_bytes = dtype_ == DType::String ? checked_mul(*bytes, sizeof(std::string)).value_or(UINT64_MAX) : *bytes;
  check_memory(host_bytes, "tensor " + describe_tensor(dtype_, dims_));
  if (dtype_ == DType::String)
    strings_ = std::make_shared<std::vector<std::string>>(static_cast<size_t>(numel()));
  else
    bytes_ = allocate_bytes(nbytes());
}

TensorData TensorData::view(DType dtype, std::vector<int64_t> dims, void* data) {
  if (dtype == DType::String || dtype_is_container(dtype))
    throw Error(std::string(dtype_name(dtype)) + " values cannot be views");
  if (!checked_nbytes(dtype, dims)) throw Error("tensor " + describe_tensor(dtype, dims) + ": its size overflows 64 bits");
  TensorData t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.bytes_ = std::shared_ptr<unsigned char>(static_cast<unsigned char*>(data), [](unsigned char*) {});
  return t;
}

TensorData TensorData::scalar_int64(int64_t v) { return from_vector<int64_t>(DType::Int64, {}, {v}); }
TensorData TensorData::vector_int64(const std::vector<int64_t>& v) {
  return from_vector<int64_t>(DType::Int64, {static_cast<int64_t>(v.size())}, v);
}
TensorData TensorData::scalar_float(float v) { return from_vector<float>(DType::Float, {}, {v}); }

TensorData TensorData::sequence(DType element_dtype, std::vector<TensorData> elements) {
  for (const TensorData& e : elements)
    if (e.dtype() != element_dtype)
      throw Error(std::string("a sequence of ") + dtype_name(element_dtype) + " cannot hold a " +
                  dtype_name(e.dtype()) + " value");
  TensorData t;
  t.dtype_ = DType::Sequence;
  t.element_dtype_ = element_dtype;
  t.elements_ = std::make_shared<const std::vector<TensorData>>(std::move(elements));
  return t;
}

TensorData TensorData::optional(DType element_dtype, std::optional<TensorData> element) {
  if (element && element->dtype() != element_dtype)
    throw Error(std::string("an optional of ") + dtype_name(element_dtype) + " cannot hold a " +
                dtype_name(element->dtype()) + " value");
  if (element_dtype == DType::Optional) throw Error("an optional cannot hold an optional");
  TensorData t;
  t.dtype_ = DType::Optional;
  t.element_dtype_ = element_dtype;
  std::vector<TensorData> held;
  if (element) held.push_back(std::move(*element));
  t.elements_ = std::make_shared<const std::vector<TensorData>>(std::move(held));
  return t;
}

const std::vector<TensorData>& TensorData::elements() const {
  if (!elements_) throw Error(std::string("a ") + dtype_name(dtype_) + " value holds no elements");
  return *elements_;
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

double TensorData::as_double(int64_t i) const {
  switch (dtype_) {
    case DType::Float: return data<float>()[i];
    case DType::Double: return data<double>()[i];
    case DType::Float16: return half_to_float(data<uint16_t>()[i]);
    case DType::BFloat16: return bfloat16_to_float(data<uint16_t>()[i]);
    case DType::UInt8: return data<uint8_t>()[i];
    case DType::Int8: return data<int8_t>()[i];
    case DType::UInt16: return data<uint16_t>()[i];
    case DType::Int16: return data<int16_t>()[i];
    case DType::Int32: return data<int32_t>()[i];
    case DType::Int64: return static_cast<double>(data<int64_t>()[i]);
    case DType::UInt32: return data<uint32_t>()[i];
    case DType::UInt64: return static_cast<double>(data<uint64_t>()[i]);
    case DType::Bool: return data<uint8_t>()[i] ? 1.0 : 0.0;
    default: throw Error(std::string("cannot read ") + dtype_name(dtype_) + " elements as numbers");
  }
}

int64_t TensorData::as_int64(int64_t i) const {
  switch (dtype_) {
    case DType::Int64: return data<int64_t>()[i];
    case DType::Int32: return data<int32_t>()[i];
    case DType::UInt64: return static_cast<int64_t>(data<uint64_t>()[i]);
    default: return static_cast<int64_t>(as_double(i));
  }
}

std::vector<int64_t> TensorData::to_int64_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) v[i] = as_int64(i);
  return v;
}

TensorData convert_float(const TensorData& t, DType to) {
  if (t.dtype() == to) return t;
  const DType from = t.dtype();
  if ((to != DType::Float && to != DType::Float16 && to != DType::BFloat16) ||
      (from != DType::Float && from != DType::Float16 && from != DType::BFloat16 && from != DType::Double))
    throw Error(std::string("convert_float: cannot convert ") + dtype_name(from) + " to " + dtype_name(to));
  TensorData out(to, t.dims());
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float f = static_cast<float>(t.as_double(i));
    if (to == DType::Float)
      out.data<float>()[i] = f;
    else
      out.data<uint16_t>()[i] = to == DType::Float16 ? float_to_half(f) : float_to_bfloat16(f);
  }
  return out;
}

TensorData TensorData::clone() const {
  TensorData t;
  t.dtype_ = dtype_;
  t.dims_ = dims_;
  if (bytes_) {
    t.bytes_ = allocate_bytes(nbytes());
    std::memcpy(t.bytes_.get(), bytes_.get(), nbytes());
  }
  if (strings_) t.strings_ = std::make_shared<std::vector<std::string>>(*strings_);
  if (elements_) {
    std::vector<TensorData> copies;
    for (const TensorData& e : *elements_) copies.push_back(e.clone());
    t.elements_ = std::make_shared<const std::vector<TensorData>>(std::move(copies));
    t.element_dtype_ = element_dtype_;
  }
  return t;
}

TensorData TensorData::reshaped(std::vector<int64_t> dims) const {
  if (dtype_is_container(dtype_) && !dims.empty())
    throw Error(std::string("a ") + dtype_name(dtype_) + " value has no shape to change");
  TensorData t = *this;
  t.dims_ = std::move(dims);
  if (checked_numel(t.dims_) != numel()) throw Error("reshape changes the element count");
  return t;
}

bool TensorData::same_values(const TensorData& o) const {
  if (dtype_ != o.dtype_ || dims_ != o.dims_) return false;
  if (dtype_ == DType::String) return strings() == o.strings();
  if (dtype_is_container(dtype_)) {
    if (element_dtype_ != o.element_dtype_ || elements().size() != o.elements().size()) return false;
    for (size_t k = 0; k < elements().size(); ++k)
      if (!elements()[k].same_values(o.elements()[k])) return false;
    return true;
  }
  return nbytes() == 0 || std::memcmp(raw(), o.raw(), nbytes()) == 0;
}

// IEEE 754 binary16 <-> binary32, round to nearest even.
float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);  // inf / nan
  if (abs >= 0x477ff000u) return sign | 0x7c00;                                    // overflow → inf
  if (abs < 0x38800000u) {  // subnormal half (or zero)
    if (abs < 0x33000000u) return sign;
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - exp;  // 14 + (112 - exp) … aligns to half's subnormal scale
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1))) ++half_mant;
    return sign | static_cast<uint16_t>(half_mant);
  }
  uint32_t rounded = abs + 0xfff + ((abs >> 13) & 1);  // round to nearest even at bit 13
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

float bfloat16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // keep NaN a NaN
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace kiln
