// The 2D filter ops: schemas, argument checks and the CPU implementations (the kernels are in
// csrc/kernels/filters_cpu.cpp). Images are (N, C, H, W); every plane is filtered on its own except by the
// bilateral filter, whose colour distance runs over the C channels of a pixel.
#include <ATen/Parallel.h>
#include <torch/library.h>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "torch/filter_ops.h"

namespace pydenoise {

PlaneStack check_image(const char* op, const at::Tensor& img, bool allow_uint8) {
  const auto dtype = img.scalar_type();
  TORCH_CHECK_TYPE(dtype == at::kFloat || (allow_uint8 && dtype == at::kByte), op, ": img must be float32",
                   allow_uint8 ? " or uint8" : "", ", got ", dtype);
  TORCH_CHECK_VALUE(img.dim() == 4, op, ": img must be 4-D (N, C, H, W), got shape ", img.sizes());
  TORCH_CHECK_VALUE(img.size(2) >= 1 && img.size(3) >= 1, op, ": img must have at least one row and column, got shape ",
                    img.sizes());
  TORCH_CHECK_VALUE(img.size(2) < (int64_t{1} << 30) && img.size(3) < (int64_t{1} << 30), op,
                    ": img height and width must be below 2^30, got shape ", img.sizes());
  return PlaneStack{img.size(0) * img.size(1), static_cast<int>(img.size(2)), static_cast<int>(img.size(3))};
}

Border parse_border(const char* op, const std::string& border) {
  if (border == "reflect101") return Border::kReflect101;
  if (border == "reflect") return Border::kReflect;
  if (border == "replicate") return Border::kReplicate;
  if (border == "wrap") return Border::kWrap;
  if (border == "constant") return Border::kConstant;
  TORCH_CHECK_VALUE(false, op,
                    ": border must be one of 'reflect101', 'reflect', 'replicate', 'wrap', 'constant', got '", border,
                    "'");
}

void check_kernel_extent(const char* op, const char* what, int64_t extent, int64_t max_extent) {
  TORCH_CHECK_VALUE(extent >= 1 && extent % 2 == 1, op, ": ", what, " must be a positive odd number, got ", extent);
  TORCH_CHECK_VALUE(extent <= max_extent, op, ": ", what, " must be at most ", max_extent, ", got ", extent);
}

void check_kernel_shape(const char* op, c10::ArrayRef<double> kernel, c10::IntArrayRef kernel_size,
                        int64_t max_extent) {
  TORCH_CHECK_VALUE(kernel_size.size() == 2, op, ": kernel_size must be (height, width), got ", kernel_size);
  check_kernel_extent(op, "kernel height", kernel_size[0], max_extent);
  check_kernel_extent(op, "kernel width", kernel_size[1], max_extent);
  TORCH_CHECK_VALUE(int64_t(kernel.size()) == kernel_size[0] * kernel_size[1], op, ": kernel has ", kernel.size(),
                    " values for a ", kernel_size, " kernel");
}

std::vector<float> to_float(c10::ArrayRef<double> values) { return std::vector<float>(values.begin(), values.end()); }

void fail_nonfinite(const char* op) { TORCH_CHECK_VALUE(false, op, ": img contains NaN or Inf"); }

namespace {

int threads() { return at::get_num_threads(); }

// A fresh output like `in`. Large buffers ask for transparent huge pages before their first touch (numpy
// does the same): faulting in a 64 MB output 4 KiB at a time costs more than a 3x3 filter over it.
at::Tensor new_output(const at::Tensor& in) {
  at::Tensor out = at::empty_like(in);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  const auto start = reinterpret_cast<uintptr_t>(out.data_ptr());
  const uintptr_t begin = (start + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (start + out.nbytes()) & ~(kHugePage - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);  // advice only
#endif
  return out;
}

at::Tensor separable_filter_cpu_op(const at::Tensor& img, c10::ArrayRef<double> kernel_y,
                                   c10::ArrayRef<double> kernel_x, c10::string_view border, double cval) {
  constexpr const char* op = "separable_filter";
  TORCH_CHECK_VALUE(img.device().is_cpu(), op, ": img must be on the CPU for this kernel");
  const PlaneStack s = check_image(op, img, true);
  const Border b = parse_border(op, std::string(border));
  check_kernel_extent(op, "len(kernel_y)", kernel_y.size(), 1 << 16);
  check_kernel_extent(op, "len(kernel_x)", kernel_x.size(), 1 << 16);
  const auto ky = to_float(kernel_y), kx = to_float(kernel_x);
  const at::Tensor in = img.contiguous();
  at::Tensor out = new_output(in);
  const bool finite = with_pixel_type(in, [&](auto pixel) {
    using T = decltype(pixel);
    return separable_filter_cpu(in.data_ptr<T>(), out.data_ptr<T>(), s, ky.data(), int(ky.size()), kx.data(),
                                int(kx.size()), b, float(cval), threads());
  });
  if (!finite) fail_nonfinite(op);
  return out;
}

at::Tensor correlate2d_cpu_op(const at::Tensor& img, c10::ArrayRef<double> kernel, c10::IntArrayRef kernel_size,
                              c10::string_view border, double cval) {
  constexpr const char* op = "correlate2d";
  TORCH_CHECK_VALUE(img.device().is_cpu(), op, ": img must be on the CPU for this kernel");
  const PlaneStack s = check_image(op, img, true);
  const Border b = parse_border(op, std::string(border));
  check_kernel_shape(op, kernel, kernel_size, kCpuMaxWindow);
  const auto k = to_float(kernel);
  const at::Tensor in = img.contiguous();
  at::Tensor out = new_output(in);
  const int kh = int(kernel_size[0]), kw = int(kernel_size[1]);
  const bool finite = with_pixel_type(in, [&](auto pixel) {
    using T = decltype(pixel);
    return correlate2d_cpu(in.data_ptr<T>(), out.data_ptr<T>(), s, k.data(), kh, kw, b, float(cval), threads());
  });
  if (!finite) fail_nonfinite(op);
  return out;
}

at::Tensor median_filter_cpu_op(const at::Tensor& img, int64_t ksize, c10::string_view border, double cval) {
  constexpr const char* op = "median_filter";
  TORCH_CHECK_VALUE(img.device().is_cpu(), op, ": img must be on the CPU for this kernel");
  const PlaneStack s = check_image(op, img, true);
  const Border b = parse_border(op, std::string(border));
  check_kernel_extent(op, "ksize", ksize, kCpuMaxWindow);
  const at::Tensor in = img.contiguous();
  at::Tensor out = new_output(in);
  const bool finite = with_pixel_type(in, [&](auto pixel) {
    using T = decltype(pixel);
    return median_filter_cpu(in.data_ptr<T>(), out.data_ptr<T>(), s, int(ksize), b, float(cval), threads());
  });
  if (!finite) fail_nonfinite(op);
  return out;
}

}  // namespace

void check_bilateral(const at::Tensor& img, int64_t radius, double sigma_color, double sigma_space,
                     int64_t max_radius) {
  constexpr const char* op = "bilateral_filter";
  check_image(op, img, true);
  TORCH_CHECK_VALUE(img.size(1) >= 1 && img.size(1) <= kMaxBilateralChannels, op, ": img must have 1 to ",
                    kMaxBilateralChannels, " channels, got shape ", img.sizes());
  TORCH_CHECK_VALUE(radius >= 1 && radius <= max_radius, op, ": radius must be in [1, ", max_radius, "], got ", radius);
  TORCH_CHECK_VALUE(sigma_color > 0 && std::isfinite(sigma_color), op, ": sigma_color must be positive, got ",
                    sigma_color);
  TORCH_CHECK_VALUE(sigma_space > 0 && std::isfinite(sigma_space), op, ": sigma_space must be positive, got ",
                    sigma_space);
}

namespace {

at::Tensor bilateral_filter_cpu_op(const at::Tensor& img, int64_t radius, double sigma_color, double sigma_space,
                                   c10::string_view border, double cval) {
  constexpr const char* op = "bilateral_filter";
  TORCH_CHECK_VALUE(img.device().is_cpu(), op, ": img must be on the CPU for this kernel");
  check_bilateral(img, radius, sigma_color, sigma_space, kCpuMaxWindow / 2);
  const Border b = parse_border(op, std::string(border));
  const at::Tensor in = img.contiguous();
  at::Tensor out = new_output(in);
  const bool finite = with_pixel_type(in, [&](auto pixel) {
    using T = decltype(pixel);
    return bilateral_filter_cpu(in.data_ptr<T>(), out.data_ptr<T>(), in.size(0), int(in.size(1)), int(in.size(2)),
                                int(in.size(3)), int(radius), float(sigma_color), float(sigma_space), b, float(cval),
                                threads());
  });
  if (!finite) fail_nonfinite(op);
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pydenoise, m) {
  m.def(
      "separable_filter(Tensor img, float[] kernel_y, float[] kernel_x, str border=\"reflect101\", "
      "float cval=0.) -> Tensor");
  m.def(
      "correlate2d(Tensor img, float[] kernel, int[2] kernel_size, str border=\"reflect101\", "
      "float cval=0.) -> Tensor");
  m.def("median_filter(Tensor img, int ksize, str border=\"reflect101\", float cval=0.) -> Tensor");
  m.def(
      "bilateral_filter(Tensor img, int radius, float sigma_color, float sigma_space, "
      "str border=\"reflect101\", float cval=0.) -> Tensor");
}

TORCH_LIBRARY_IMPL(pydenoise, CPU, m) {
  m.impl("separable_filter", &separable_filter_cpu_op);
  m.impl("correlate2d", &correlate2d_cpu_op);
  m.impl("median_filter", &median_filter_cpu_op);
  m.impl("bilateral_filter", &bilateral_filter_cpu_op);
}

}  // namespace pydenoise
