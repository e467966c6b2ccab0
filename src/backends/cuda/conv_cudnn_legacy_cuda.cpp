// Convolution tactics cudnn.nchw and cudnn.nhwc: cuDNN's legacy convolution API, algo =
// cudnnConvolutionFwdAlgo_t. Here: the descriptors of one layer in one layout (and the tensor layouts the
// graph API shares). The kernel runs them (conv_kernel_cuda.cpp); the timer asks cuDNN for the algorithms
// (conv_tactics_cuda.cpp).
#include "backends/cuda/conv_cuda.h"

namespace kiln::cuda::conv {

cudnnDataType_t cudnn_type(DType t) {
  switch (t) {
    case DType::Float:
      return CUDNN_DATA_FLOAT;
    case DType::Float16:
      return CUDNN_DATA_HALF;
    case DType::BFloat16:
      return CUDNN_DATA_BFLOAT16;
    default:
      throw Error("conv: unsupported dtype");
  }
}

// Dims [N, C, spatial...] and strides of a tensor stored NCHW or NHWC (channels innermost).
void layout_of(int64_t n, int64_t c, const std::vector<int64_t>& sp, bool nhwc, std::vector<int64_t>& dims,
               std::vector<int64_t>& strides) {
  dims = {n, c};
  dims.insert(dims.end(), sp.begin(), sp.end());
  strides.assign(dims.size(), 1);
  if (!nhwc) {
    for (size_t i = dims.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * dims[i + 1];
    return;
  }
  int64_t st = c;
  for (size_t i = dims.size(); i-- > 2;) strides[i] = st, st *= dims[i];
  strides[0] = st;  // c * spatial
}

CudnnDescs::CudnnDescs(const ConvShape& s, bool nhwc) {
  KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
  KILN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&y));
  KILN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
  KILN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
  const ConvShape g = s.at_least_2d();
  const std::vector<int64_t>&in = g.in, &out = g.out, &k = g.k, &stride = g.stride, &dil = g.dil,
        &pad = g.pad;
  set_tensor(x, s.dtype, s.n, s.c, in, nhwc);
  set_tensor(y, s.dtype, s.n, s.m, out, nhwc);
  std::vector<int> wd{static_cast<int>(s.m), static_cast<int>(s.c / s.group)};
  for (int64_t v : k) wd.push_back(static_cast<int>(v));
  KILN_CUDNN_CHECK(cudnnSetFilterNdDescriptor(w, cudnn_type(s.dtype),
                                              nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                              static_cast<int>(wd.size()), wd.data()));
  std::vector<int> p(pad.begin(), pad.end()), st(stride.begin(), stride.end()), dl(dil.begin(), dil.end());
  KILN_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(conv, static_cast<int>(p.size()), p.data(), st.data(),
                                                   dl.data(), CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, static_cast<int>(s.group)));
  // Strict fp32 forbids TF32 tensor cores; otherwise tensor cores are allowed (TF32 for fp32 data).
  const cudnnMathType_t math = s.dtype == DType::Float && !s.tf32 ? CUDNN_FMA_MATH
                               : s.dtype == DType::Float          ? CUDNN_DEFAULT_MATH
                                                                  : CUDNN_TENSOR_OP_MATH;
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math));
}

CudnnDescs::~CudnnDescs() {
  cudnnDestroyTensorDescriptor(x);
  cudnnDestroyTensorDescriptor(y);
  cudnnDestroyFilterDescriptor(w);
  cudnnDestroyConvolutionDescriptor(conv);
}

void CudnnDescs::set_tensor(cudnnTensorDescriptor_t t, DType dtype, int64_t n, int64_t c,
                            const std::vector<int64_t>& sp, bool nhwc) {
  std::vector<int64_t> dims, strides;
  layout_of(n, c, sp, nhwc, dims, strides);
  const std::vector<int> d(dims.begin(), dims.end()), st(strides.begin(), strides.end());
  KILN_CUDNN_CHECK(
      cudnnSetTensorNdDescriptor(t, cudnn_type(dtype), static_cast<int>(d.size()), d.data(), st.data()));
}

}  // namespace kiln::cuda::conv
