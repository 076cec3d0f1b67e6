// Classical 2D image filters: separable (box, Gaussian), small dense correlation (filter2D), median and
// bilateral. Torch-free: raw pointers and sizes only, so the kernels are testable from plain C++.
//
// Images are stacks of planes: `planes` contiguous height x width images (the N*C planes of an NCHW tensor).
// Pixels are float32 or uint8; uint8 results are rounded to nearest (ties to even, like OpenCV's cvRound) and
// saturated. Every filter centres its window on the output pixel (kernel sizes are odd) and reads outside the
// image through `Border`.
#pragma once

#include <cstdint>

namespace pydenoise {

// How pixels outside the image are read. For a row `abcd`:
//   kReflect101  dcb|abcd|cba   (OpenCV BORDER_DEFAULT / BORDER_REFLECT_101, scipy "mirror")
//   kReflect     cba|abcd|dcb   (OpenCV BORDER_REFLECT, scipy "reflect")
//   kReplicate   aaa|abcd|ddd   (OpenCV BORDER_REPLICATE, scipy "nearest")
//   kWrap        bcd|abcd|abc   (OpenCV BORDER_WRAP, scipy "grid-wrap")
//   kConstant    vvv|abcd|vvv   (a constant value v)
// Offsets of any size are defined (reflections repeat), so windows may be larger than the image.
enum class Border : int { kReflect101 = 0, kReflect = 1, kReplicate = 2, kWrap = 3, kConstant = 4 };

#if defined(__CUDACC__)
#define PD_FILTER_HOST_DEVICE __host__ __device__
#else
#define PD_FILTER_HOST_DEVICE
#endif

// The index inside [0, n) that coordinate i reads, or -1 for kConstant outside the image.
PD_FILTER_HOST_DEVICE inline int border_index(int i, int n, Border border) {
  if (i >= 0 && i < n) return i;
  switch (border) {
    case Border::kConstant:
      return -1;
    case Border::kReplicate:
      return i < 0 ? 0 : n - 1;
    case Border::kWrap: {
      const int m = i % n;
      return m < 0 ? m + n : m;
    }
    case Border::kReflect: {  // period 2n: abcd dcba
      int m = i % (2 * n);
      if (m < 0) m += 2 * n;
      return m < n ? m : 2 * n - 1 - m;
    }
    case Border::kReflect101:
    default: {  // period 2n - 2: abcd cb (a single pixel reflects onto itself)
      if (n == 1) return 0;
      const int period = 2 * n - 2;
      int m = i % period;
      if (m < 0) m += period;
      return m < n ? m : period - m;
    }
  }
}

struct PlaneStack {
  int64_t planes = 0;
  int height = 0;
  int width = 0;
};

// Each function returns false, without finishing, when a float32 input holds NaN or Inf (never for uint8).
// `cval` is the outside value for kConstant. num_threads <= 0 means "OpenMP default".

// out = (kernel_y^T kernel_x) correlated with the image: a vertical pass with kernel_y (length ky, odd),
// then a horizontal pass with kernel_x (length kx, odd), in float32. Box and Gaussian filters are this.
template <typename T>
bool separable_filter_cpu(const T* in, T* out, PlaneStack s, const float* kernel_y, int ky, const float* kernel_x,
                          int kx, Border border, float cval, int num_threads);

// out(y, x) = sum_ij kernel[i * kw + j] * in(y + i - kh/2, x + j - kw/2) (correlation, like cv::filter2D).
template <typename T>
bool correlate2d_cpu(const T* in, T* out, PlaneStack s, const float* kernel, int kh, int kw, Border border, float cval,
                     int num_threads);

// Median of the ksize x ksize window (ksize odd). Sorting networks over vectors of pixels for ksize <= 7,
// a selection per pixel above.
template <typename T>
bool median_filter_cpu(const T* in, T* out, PlaneStack s, int ksize, Border border, float cval, int num_threads);

// Bilateral filter with OpenCV's definition: the support is the disc of the given radius (offsets with
// dy^2 + dx^2 <= radius^2), weight exp(-(dy^2 + dx^2) / (2 sigma_space^2)) * exp(-d^2 / (2 sigma_color^2))
// where d is the L1 distance between the colours (the sum over channels of |difference|).
// `in`/`out`: `images` images of `channels` planes each (NCHW); channels <= kMaxBilateralChannels. uint8
// images are filtered in float32 and rounded.
constexpr int kMaxBilateralChannels = 4;
template <typename T>
bool bilateral_filter_cpu(const T* in, T* out, int64_t images, int channels, int height, int width, int radius,
                          float sigma_color, float sigma_space, Border border, float cval, int num_threads);

// Offsets (dy, dx) of the bilateral disc but its centre, row by row, and their space weights as powers of two
// (weight = 2^exponent); returns the count. dy, dx, exponent must hold (2 radius + 1)^2 entries.
int bilateral_disc(int radius, float sigma_space, int* dy, int* dx, float* exponent);

#ifdef PYDENOISE_WITH_CUDA
// The same filters on the GPU, on `stream` (a cudaStream_t). `nonfinite` is a device int that the kernels set
// to 1 when a float input holds NaN or Inf (the caller zeroes it before and reads it after). Kernel
// coefficients are host arrays (copied to the GPU with the launch). Each returns an empty string on success,
// else the reason.
template <typename T>
const char* separable_filter_cuda(const T* in, T* out, PlaneStack s, const float* kernel_y, int ky,
                                  const float* kernel_x, int kx, Border border, float cval, int* nonfinite,
                                  void* stream);
template <typename T>
const char* correlate2d_cuda(const T* in, T* out, PlaneStack s, const float* kernel, int kh, int kw, Border border,
                             float cval, int* nonfinite, void* stream);
template <typename T>
const char* median_filter_cuda(const T* in, T* out, PlaneStack s, int ksize, Border border, float cval, int* nonfinite,
                               void* stream);
const char* bilateral_filter_cuda(const float* in, float* out, int64_t images, int channels, int height, int width,
                                  int radius, float sigma_color, float sigma_space, Border border, float cval,
                                  int* nonfinite, void* stream);

// Largest kernel extent (ky, kx, kh, kw, ksize, 2 radius + 1) the CUDA kernels take: windows and their
// coefficients live in shared memory and kernel arguments.
constexpr int kCudaMaxKernel = 31;
#endif

}  // namespace pydenoise
