// CUDA implementations of the filter ops: checks, one kernel launch on the current stream. Float images are
// checked for NaN/Inf by the kernels themselves (a device flag), which costs one small device-to-host read
// per call; uint8 images need no check and run fully asynchronously.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "torch/filter_ops.h"

namespace pydenoise {
namespace {

// Runs launch(in, out, nonfinite flag, stream) on a contiguous copy-free view of img; raises on a launch
// error or, for float images, on NaN/Inf.
template <typename Launch>
at::Tensor run_on_gpu(const char* op, const at::Tensor& img, Launch launch) {
  TORCH_CHECK_VALUE(img.is_cuda(), op, ": img must be on a CUDA device for this kernel");
  const c10::cuda::CUDAGuard guard(img.device());
  const at::Tensor in = img.contiguous();
  at::Tensor out = at::empty_like(in);
  at::Tensor flag = at::zeros({1}, in.options().dtype(at::kInt));
  const char* error = launch(in, out, flag.data_ptr<int>(), at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(error[0] == '\0', op, " (CUDA): ", error);
  if (in.scalar_type() == at::kFloat && flag.item<int>() != 0) fail_nonfinite(op);
  return out;
}

at::Tensor separable_filter_cuda_op(const at::Tensor& img, c10::ArrayRef<double> kernel_y,
                                    c10::ArrayRef<double> kernel_x, c10::string_view border, double cval) {
  constexpr const char* op = "separable_filter";
  const PlaneStack s = check_image(op, img, true);
  const Border b = parse_border(op, std::string(border));
  check_kernel_extent(op, "len(kernel_y)", kernel_y.size(), kCudaMaxKernel);
  check_kernel_extent(op, "len(kernel_x)", kernel_x.size(), kCudaMaxKernel);
  const auto ky = to_float(kernel_y), kx = to_float(kernel_x);
  return run_on_gpu(op, img, [&](const at::Tensor& in, at::Tensor& out, int* flag, cudaStream_t stream) {
    return with_pixel_type(in, [&](auto pixel) {
      using T = decltype(pixel);
      return separable_filter_cuda(in.data_ptr<T>(), out.data_ptr<T>(), s, ky.data(), int(ky.size()), kx.data(),
                                   int(kx.size()), b, float(cval), flag, stream);
    });
  });
}

at::Tensor correlate2d_cuda_op(const at::Tensor& img, c10::ArrayRef<double> kernel, c10::IntArrayRef kernel_size,
                               c10::string_view border, double cval) {
  constexpr const char* op = "correlate2d";
  const PlaneStack s = check_image(op, img, true);
  const Border b = parse_border(op, std::string(border));
  check_kernel_shape(op, kernel, kernel_size, kCudaMaxKernel);
  const auto k = to_float(kernel);
  const int kh = int(kernel_size[0]), kw = int(kernel_size[1]);
  return run_on_gpu(op, img, [&](const at::Tensor& in, at::Tensor& out, int* flag, cudaStream_t stream) {
    return with_pixel_type(in, [&](auto pixel) {
      using T = decltype(pixel);
      return correlate2d_cuda(in.data_ptr<T>(), out.data_ptr<T>(), s, k.data(), kh, kw, b, float(cval), flag, stream);
    });
  });
}

at::Tensor median_filter_cuda_op(const at::Tensor& img, int64_t ksize, c10::string_view border, double cval) {
  constexpr const char* op = "median_filter";
  const PlaneStack s = check_image(op, img, true);
  const Border b = parse_border(op, std::string(border));
  check_kernel_extent(op, "ksize", ksize, kCudaMaxKernel);
  return run_on_gpu(op, img, [&](const at::Tensor& in, at::Tensor& out, int* flag, cudaStream_t stream) {
    return with_pixel_type(in, [&](auto pixel) {
      using T = decltype(pixel);
      return median_filter_cuda(in.data_ptr<T>(), out.data_ptr<T>(), s, int(ksize), b, float(cval), flag, stream);
    });
  });
}

at::Tensor bilateral_filter_cuda_op(const at::Tensor& img, int64_t radius, double sigma_color, double sigma_space,
                                    c10::string_view border, double cval) {
  constexpr const char* op = "bilateral_filter";
  check_bilateral(img, radius, sigma_color, sigma_space, kCudaMaxKernel / 2);
  const Border b = parse_border(op, std::string(border));
  if (img.scalar_type() == at::kByte) {  // the kernel is float32: filter a float copy, round back like the CPU
    const double outside = std::clamp(std::nearbyint(cval), 0.0, 255.0);  // uint8 images pad with a uint8 value
    const at::Tensor filtered =
        bilateral_filter_cuda_op(img.to(at::kFloat), radius, sigma_color, sigma_space, border, outside);
    return filtered.round_().clamp_(0, 255).to(at::kByte);
  }
  return run_on_gpu(op, img, [&](const at::Tensor& in, at::Tensor& out, int* flag, cudaStream_t stream) {
    return bilateral_filter_cuda(in.data_ptr<float>(), out.data_ptr<float>(), in.size(0), int(in.size(1)),
                                 int(in.size(2)), int(in.size(3)), int(radius), float(sigma_color), float(sigma_space),
                                 b, float(cval), flag, stream);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(pydenoise, CUDA, m) {
  m.impl("separable_filter", &separable_filter_cuda_op);
  m.impl("correlate2d", &correlate2d_cuda_op);
  m.impl("median_filter", &median_filter_cuda_op);
  m.impl("bilateral_filter", &bilateral_filter_cuda_op);
}

}  // namespace pydenoise
