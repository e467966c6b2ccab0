// Det on CUDA (cuda.det): one thread per matrix, LU decomposition with partial pivoting in double — the
// reference's algorithm (ops/det.cpp) step for step, products and differences rounded on their own (no fused
// multiply-add), so results equal the reference's — rounded once into X's dtype. Each thread works on its
// matrix's copy in the workspace ([batch, M, M] doubles), so any M runs; batches of small matrices, the
// common case, use many threads, while one large matrix runs on a single thread (correct, not fast).
#include "backends/cuda/math_cuda.cuh"

namespace kiln::cuda::det {
namespace {

using namespace math;

template <typename T>
__global__ void det_kernel(const T* x, T* out, double* work, int64_t batch, int64_t m) {
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < batch; b += step) {
    const T* src = x + b * m * m;
    double* a = work + b * m * m;
    for (int64_t i = 0; i < m * m; ++i) a[i] = load_double(src[i]);
    double det = 1;
    for (int64_t k = 0; k < m; ++k) {
      int64_t pivot = k;
      for (int64_t r = k + 1; r < m; ++r)
        if (fabs(a[r * m + k]) > fabs(a[pivot * m + k])) pivot = r;
      if (a[pivot * m + k] == 0) {  // singular
        det = 0;
        break;
      }
      if (pivot != k) {
        for (int64_t c = 0; c < m; ++c) {
          const double t = a[k * m + c];
          a[k * m + c] = a[pivot * m + c];
          a[pivot * m + c] = t;
        }
        det = -det;
      }
      det = __dmul_rn(det, a[k * m + k]);
      for (int64_t r = k + 1; r < m; ++r) {
        const double f = __ddiv_rn(a[r * m + k], a[k * m + k]);
        for (int64_t c = k; c < m; ++c) a[r * m + c] = __dsub_rn(a[r * m + c], __dmul_rn(f, a[k * m + c]));
      }
    }
    out[b] = store_double<T>(det);
  }
}

class DetKernel final : public CudaKernel {
 public:
  DetKernel(DType dtype, int64_t batch, int64_t m) : dtype_(dtype), batch_(batch), m_(m) {}
  void enqueue(const std::vector<TensorView>& in, const std::vector<TensorView>& out,
               const RunContext& rc) const override {
    if (batch_ == 0) return;
    dispatch_real(dtype_, [&](auto t) {
      using T = decltype(t);
      det_kernel<T><<<blocks_for(batch_, kThreads), kThreads, 0, rc.stream>>>(
          static_cast<const T*>(in[0].data), static_cast<T*>(out[0].data), static_cast<double*>(rc.workspace),
          batch_, m_);
      KILN_CUDA_CHECK_LAUNCH();
    });
  }
  size_t workspace_bytes() const override { return static_cast<size_t>(batch_ * m_ * m_) * sizeof(double); }
  std::string describe() const override {
    return std::to_string(batch_) + " matrices of " + std::to_string(m_) + "x" + std::to_string(m_);
  }

 private:
  DType dtype_;
  int64_t batch_, m_;
};

bool det_supported(const LayerDesc& d) {
  if (d.inputs.size() != 1 || d.outputs.size() != 1 || !d.inputs[0].present) return false;
  const auto& x = d.inputs[0].dims;
  const DType dt = d.inputs[0].dtype;
  if (!is_real_dtype(dt) || d.outputs[0].dtype != dt || x.size() < 2 || x[x.size() - 1] != x[x.size() - 2])
    return false;
  return d.outputs[0].dims == std::vector<int64_t>(x.begin(), x.end() - 2);
}

KILN_REGISTER_KERNEL(
    factory("cuda.det", "Det", det_supported, [](const LayerDesc& d) -> std::unique_ptr<backend::Kernel> {
      const auto& x = d.inputs[0].dims;
      return std::make_unique<DetKernel>(d.inputs[0].dtype, ops::numel({x.begin(), x.end() - 2}), x.back());
    }));

}  // namespace
}  // namespace kiln::cuda::det
