// MelWeightMatrix on CUDA (cuda.mel_weight_matrix): one thread per output element [bin, mel]. All five
// scalars (num_mel_bins, dft_length, sample_rate, lower/upper_edge_hertz) are read on the device — ONNX's
// node test feeds them as graph inputs; the output shape [dft_length / 2 + 1, num_mel_bins] is static. Each
// thread computes the three filter edges of its mel column with the reference's formula
// (ops/mel_weight_matrix.cpp, in double, each operation rounded on its own like the host's, no fused
// multiply-add: an edge is a floor, so one ulp could move it) and evaluates the reference's
// rising-then-falling writes for its bin:
//   value = (right - j) / (right - center)   where center <= j < right   (the falling edge, written last)
//         = 1                                where j == center == left
//         = (j - left) / (center - left)     where left <= j <= center
//         = 0                                elsewhere.
// Where the reference fails (scalars out of range, an edge outside the spectrum) the kernel still computes
// this formula for the elements of the static output: nothing is read or written out of bounds.
#include "backends/cuda/math_cuda.cuh"

namespace kiln::cuda::mel {
namespace {

using namespace math;

struct MelParams {
  int64_t bins, mels;                     // the static output [bins, mels]
  int mels_size, length_size, rate_size;  // int scalars' element sizes (4, 8)
  int lo_code, hi_code;                   // real scalars' RealCode
};

struct MelScalars {
  const void* mels;
  const void* dft_length;
  const void* sample_rate;
  const void* lo;
  const void* hi;
};

__device__ __forceinline__ double to_mel(double hz) {
  return __dmul_rn(2595.0, log10(__dadd_rn(1.0, __ddiv_rn(hz, 700.0))));
}

// Spectrum bin of point k of the mel scale: floor((dft_length + 1) * hz / sample_rate).
__device__ __forceinline__ int64_t edge(int64_t k, double mel_lo, double step, int64_t dft_length,
                                        int64_t sample_rate) {
  const double mel = __dadd_rn(mel_lo, __dmul_rn(step, static_cast<double>(k)));
  const double hz = __dmul_rn(700.0, __dsub_rn(pow(10.0, __ddiv_rn(mel, 2595.0)), 1.0));
  return static_cast<int64_t>(
      floor(__ddiv_rn(__dmul_rn(static_cast<double>(dft_length + 1), hz), static_cast<double>(sample_rate))));
}

template <typename T>
__global__ void mel_kernel(MelScalars s, T* out, MelParams p) {
  const int64_t mels = read_int_scalar(s.mels, p.mels_size),
                dft_length = read_int_scalar(s.dft_length, p.length_size);
  const int64_t sample_rate = read_int_scalar(s.sample_rate, p.rate_size);
  const double lo = read_real_scalar(s.lo, p.lo_code), hi = read_real_scalar(s.hi, p.hi_code);
  const double mel_lo = to_mel(lo),
               step = __ddiv_rn(__dsub_rn(to_mel(hi), mel_lo), static_cast<double>(mels + 2));
  const int64_t total = p.bins * p.mels, stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t j = e / p.mels, i = e - j * p.mels;
    const int64_t left = edge(i, mel_lo, step, dft_length, sample_rate),
                  center = edge(i + 1, mel_lo, step, dft_length, sample_rate),
                  right = edge(i + 2, mel_lo, step, dft_length, sample_rate);
    double w = 0;
    if (center <= j && j < right)
      w = static_cast<double>(right - j) / static_cast<double>(right - center);
    else if (center == left)
      w = j == center ? 1.0 : 0.0;
    else if (left <= j && j <= center)
      w = static_cast<double>(j - left) / static_cast<double>(center - left);
    out[e] = store_double<T>(w);
  }
}

class MelKernel final : public CudaKernel {
 public:
  MelKernel(DType dtype, MelParams p) : dtype_(dtype), p_(p) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    const int64_t total = p_.bins * p_.mels;
    if (total == 0) return;
    const MelScalars s{in[0].data, in[1].data, in[2].data, in[3].data, in[4].data};
    dispatch_numeric(dtype_, [&](auto t) {
      using T = decltype(t);
      mel_kernel<T>
          <<<blocks_for(total, kThreads), kThreads, 0, rc.stream>>>(s, static_cast<T*>(out[0].data), p_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }

 private:
  DType dtype_;
  MelParams p_;
};

std::optional<MelParams> mel_plan(const LayerDesc& d) {
  if (d.inputs.size() != 5 || d.outputs.size() != 1) return std::nullopt;
  for (size_t k = 0; k < 3; ++k)
    if (!is_int_scalar(d.inputs[k])) return std::nullopt;
  for (size_t k = 3; k < 5; ++k)
    if (!is_real_scalar(d.inputs[k])) return std::nullopt;
  const DType dt =
      static_cast<DType>(d.node->attrs.get_int("output_datatype", static_cast<int64_t>(DType::Float)));
  const auto& y = d.outputs[0].dims;
  if (!is_numeric_dtype(dt) || d.outputs[0].dtype != dt || y.size() != 2) return std::nullopt;
  MelParams p{};
  p.bins = y[0];
  p.mels = y[1];
  // Constant sizes must give the static shape; device ones are trusted (the file comment says what happens).
  if (const TensorData* c = d.inputs[0].constant; c && c->as_int64(0) != p.mels) return std::nullopt;
  if (const TensorData* c = d.inputs[1].constant;
      c && (c->as_int64(0) < 1 || c->as_int64(0) / 2 + 1 != p.bins))
    return std::nullopt;
  p.mels_size = static_cast<int>(dtype_size(d.inputs[0].dtype));
  p.length_size = static_cast<int>(dtype_size(d.inputs[1].dtype));
  p.rate_size = static_cast<int>(dtype_size(d.inputs[2].dtype));
  p.lo_code = real_code(d.inputs[3].dtype);
  p.hi_code = real_code(d.inputs[4].dtype);
  return p;
}

KILN_REGISTER_KERNEL(factory(
    "cuda.mel_weight_matrix", "MelWeightMatrix", [](const LayerDesc& d) { return mel_plan(d).has_value(); },
    [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      return std::make_unique<MelKernel>(d.outputs[0].dtype, *mel_plan(d));
    }));

}  // namespace
}  // namespace kiln::cuda::mel
