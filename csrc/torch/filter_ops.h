// Argument checks shared by the CPU and CUDA bindings of the filter ops (filter_ops.cpp, filter_ops_cuda.cpp).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "kernels/filters.h"

namespace pydenoise {

// Checks that img is an (N, C, H, W) float32 (or, with allow_uint8, uint8) image stack; returns its planes.
PlaneStack check_image(const char* op, const at::Tensor& img, bool allow_uint8);

// "reflect101" | "reflect" | "replicate" | "wrap" | "constant"; anything else is a ValueError.
Border parse_border(const char* op, const std::string& border);

// An odd kernel extent in [1, max_extent]; `what` names the argument.
void check_kernel_extent(const char* op, const char* what, int64_t extent, int64_t max_extent);

// kernel_size is (height, width), both odd in [1, max_extent], and kernel holds height * width values.
void check_kernel_shape(const char* op, c10::ArrayRef<double> kernel, c10::IntArrayRef kernel_size, int64_t max_extent);

std::vector<float> to_float(c10::ArrayRef<double> values);

// Checks the bilateral filter's image (float32 or uint8, 1 to kMaxBilateralChannels channels) and parameters.
void check_bilateral(const at::Tensor& img, int64_t radius, double sigma_color, double sigma_space, int64_t max_radius);

// fn(T{}) with T the image's pixel type (float or uint8_t): one body serves both dtypes.
template <typename Fn>
auto with_pixel_type(const at::Tensor& img, Fn fn) {
  return img.scalar_type() == at::kByte ? fn(uint8_t{}) : fn(float{});
}

// Raises the ValueError for images holding NaN or Inf.
[[noreturn]] void fail_nonfinite(const char* op);

// Largest window the row-cached CPU filters (correlate2d, median, bilateral) take.
constexpr int64_t kCpuMaxWindow = 255;

}  // namespace pydenoise
