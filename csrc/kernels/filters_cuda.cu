// CUDA filters. A block owns a kTileH x kTileW tile of output pixels of one plane: it stages the tile and its
// halo (read through the border rule) in shared memory once, then every thread computes its pixels from
// shared memory. Separable filters do their two passes inside the block (vertical pass of the whole halo
// width into a second shared buffer, then the horizontal pass), so the image is read and written once.
// Medians of up to 7 x 7 run the compile-time sorting network (filters_median_network.h) in registers.
#include <cstdint>
#include <type_traits>

#include "kernels/cuda_compat.h"
#include "kernels/filters.h"
#include "kernels/filters_median_network.h"

namespace pydenoise {
namespace {

constexpr int kTileW = 32;
constexpr int kTileH = 32;
constexpr int kThreads = 256;
constexpr int kMaxTaps = kCudaMaxKernel * kCudaMaxKernel;

struct Geometry {
  PlaneStack s;
  Border border;
  float cval;
  int ry, rx;  // window radii
  int* nonfinite;
};

// Separable coefficients, and the 2-D kernel of correlate2d, travel as kernel arguments.
struct SeparableCoeffs {
  float y[kCudaMaxKernel], x[kCudaMaxKernel];
  int ky, kx;
};
struct KernelCoeffs {
  float k[kMaxTaps];
  int kh, kw;
};

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ uint8_t from_float<uint8_t>(float v) {
  return static_cast<uint8_t>(__float2int_rn(fminf(fmaxf(v, 0.f), 255.f)));  // ties to even, like the CPU
}

template <typename T>
__device__ __forceinline__ T outside_value(float cval) {
  return std::is_same_v<T, float> ? T(cval) : T(__float2int_rn(fminf(fmaxf(cval, 0.f), 255.f)));
}

// Stages plane rows [y0 - ry, y0 + kTileH + ry) x columns [x0 - rx, x0 + kTileW + rx) into `tile` (row pitch
// `pitch`), as S (float for arithmetic filters, T for the median). Flags non-finite float pixels.
template <typename S, typename T>
__device__ void load_tile(const T* __restrict__ plane, const Geometry& g, int y0, int x0, S* tile, int pitch) {
  const int rows = kTileH + 2 * g.ry, cols = kTileW + 2 * g.rx;
  const T outside = outside_value<T>(g.cval);
  bool finite = true;
  for (int idx = threadIdx.x; idx < rows * cols; idx += blockDim.x) {
    const int ly = idx / cols, lx = idx % cols;
    const int y = border_index(y0 - g.ry + ly, g.s.height, g.border);
    const int x = border_index(x0 - g.rx + lx, g.s.width, g.border);
    const T v = (y < 0 || x < 0) ? outside : plane[int64_t(y) * g.s.width + x];
    if constexpr (std::is_same_v<T, float>) finite = finite && isfinite(v);
    tile[ly * pitch + lx] = static_cast<S>(v);
  }
  if (!finite) *g.nonfinite = 1;
}

// Runs fn(plane, y0, x0) for every tile of every plane (grid.z strides over planes beyond 65535).
template <typename Fn>
__device__ void for_tiles(const Geometry& g, Fn fn) {
  const int y0 = blockIdx.y * kTileH, x0 = blockIdx.x * kTileW;
  for (int64_t p = blockIdx.z; p < g.s.planes; p += gridDim.z) {
    fn(p, y0, x0);
    __syncthreads();  // the tile buffers are reused by the next plane
  }
}

// Runs fn(ly, lx) for the tile's output pixels, spread over the block's threads.
template <typename Fn>
__device__ void for_tile_pixels(Fn fn) {
  for (int idx = threadIdx.x; idx < kTileH * kTileW; idx += blockDim.x) fn(idx / kTileW, idx % kTileW);
}

template <typename T>
__device__ void store(T* __restrict__ plane, const Geometry& g, int y, int x, float v) {
  if (y < g.s.height && x < g.s.width) plane[int64_t(y) * g.s.width + x] = from_float<T>(v);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    separable_kernel(const T* __restrict__ in, T* __restrict__ out, Geometry g, SeparableCoeffs c) {
  PYDENOISE_DYNAMIC_SHARED(float, shared);
  const int cols = kTileW + 2 * g.rx;
  float* tile = shared;                                   // (kTileH + 2 ry) x cols
  float* vertical = shared + (kTileH + 2 * g.ry) * cols;  // kTileH x cols
  const int64_t plane_size = int64_t(g.s.height) * g.s.width;
  for_tiles(g, [&](int64_t p, int y0, int x0) {
    load_tile(in + p * plane_size, g, y0, x0, tile, cols);
    __syncthreads();
    for (int idx = threadIdx.x; idx < kTileH * cols; idx += blockDim.x) {
      const int ly = idx / cols, lx = idx % cols;
      float sum = 0.f;
      for (int i = 0; i < c.ky; ++i) sum = fmaf(c.y[i], tile[(ly + i) * cols + lx], sum);
      vertical[ly * cols + lx] = sum;
    }
    __syncthreads();
    for_tile_pixels([&](int ly, int lx) {
      float sum = 0.f;
      for (int j = 0; j < c.kx; ++j) sum = fmaf(c.x[j], vertical[ly * cols + lx + j], sum);
      store(out + p * plane_size, g, y0 + ly, x0 + lx, sum);
    });
  });
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    correlate_kernel(const T* __restrict__ in, T* __restrict__ out, Geometry g, KernelCoeffs c) {
  PYDENOISE_DYNAMIC_SHARED(float, shared);
  const int cols = kTileW + 2 * g.rx;
  const int64_t plane_size = int64_t(g.s.height) * g.s.width;
  for_tiles(g, [&](int64_t p, int y0, int x0) {
    load_tile(in + p * plane_size, g, y0, x0, shared, cols);
    __syncthreads();
    for_tile_pixels([&](int ly, int lx) {
      float sum = 0.f;
      for (int i = 0; i < c.kh; ++i)
        for (int j = 0; j < c.kw; ++j) sum = fmaf(c.k[i * c.kw + j], shared[(ly + i) * cols + lx + j], sum);
      store(out + p * plane_size, g, y0 + ly, x0 + lx, sum);
    });
  });
}

struct DeviceMinMax {
  __device__ __forceinline__ static float min(float a, float b) { return fminf(a, b); }
  __device__ __forceinline__ static float max(float a, float b) { return fmaxf(a, b); }
  __device__ __forceinline__ static uint8_t min(uint8_t a, uint8_t b) { return a < b ? a : b; }
  __device__ __forceinline__ static uint8_t max(uint8_t a, uint8_t b) { return a < b ? b : a; }
};

template <int K, typename T>
__device__ T network_median(const T* tile, int pitch) {
  T v[K * K];
#pragma unroll
  for (int i = 0; i < K; ++i)
#pragma unroll
    for (int j = 0; j < K; ++j) v[i * K + j] = tile[i * pitch + j];
  return median_network::median<K * K>(v, DeviceMinMax{});
}

// Larger windows: the value with fewer than n/2 + 1 smaller values and at least n/2 + 1 not larger.
template <typename T>
__device__ T counting_median(const T* tile, int pitch, int k) {
  const int half = k * k / 2;
  for (int a = 0; a < k * k; ++a) {
    const T candidate = tile[(a / k) * pitch + a % k];
    int less = 0, equal = 0;
    for (int b = 0; b < k * k; ++b) {
      const T other = tile[(b / k) * pitch + b % k];
      less += other < candidate;
      equal += other == candidate;
    }
    if (less <= half && half < less + equal) return candidate;
  }
  return tile[(k / 2) * pitch + k / 2];  // unreachable for finite input
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    median_kernel(const T* __restrict__ in, T* __restrict__ out, Geometry g, int k) {
  PYDENOISE_DYNAMIC_SHARED(float, shared_words);
  T* tile = reinterpret_cast<T*>(shared_words);
  const int cols = kTileW + 2 * g.rx;
  const int64_t plane_size = int64_t(g.s.height) * g.s.width;
  for_tiles(g, [&](int64_t p, int y0, int x0) {
    load_tile(in + p * plane_size, g, y0, x0, tile, cols);
    __syncthreads();
    for_tile_pixels([&](int ly, int lx) {
      const T* window = tile + ly * cols + lx;
      T m;
      switch (k) {
        case 3:
          m = network_median<3>(window, cols);
          break;
        case 5:
          m = network_median<5>(window, cols);
          break;
        case 7:
          m = network_median<7>(window, cols);
          break;
        default:
          m = counting_median(window, cols, k);
      }
      const int y = y0 + ly, x = x0 + lx;
      if (y < g.s.height && x < g.s.width) out[p * plane_size + int64_t(y) * g.s.width + x] = m;
    });
  });
}

// One block per tile of one image; all channels staged (the colour distance needs them together).
__global__ void __launch_bounds__(kThreads)
    bilateral_kernel(const float* __restrict__ in, float* __restrict__ out, Geometry g, int channels, float sigma_space,
                     float color_coeff) {
  PYDENOISE_DYNAMIC_SHARED(float, shared);
  const int r = g.rx, cols = kTileW + 2 * r, rows = kTileH + 2 * r;
  float* space = shared;  // (2r + 1)^2 space weights, 0 outside the disc
  float* tiles = shared + (2 * r + 1) * (2 * r + 1);
  const float space_coeff = -0.5f / (sigma_space * sigma_space);
  for (int idx = threadIdx.x; idx < (2 * r + 1) * (2 * r + 1); idx += blockDim.x) {
    const int dy = idx / (2 * r + 1) - r, dx = idx % (2 * r + 1) - r;
    space[idx] = dy * dy + dx * dx <= r * r ? expf((dy * dy + dx * dx) * space_coeff) : 0.f;
  }
  const int64_t plane_size = int64_t(g.s.height) * g.s.width;
  Geometry images = g;
  images.s.planes = g.s.planes / channels;
  for_tiles(images, [&](int64_t n, int y0, int x0) {
    for (int c = 0; c < channels; ++c)
      load_tile(in + (n * channels + c) * plane_size, g, y0, x0, tiles + c * rows * cols, cols);
    __syncthreads();
    for_tile_pixels([&](int ly, int lx) {
      float center[kMaxBilateralChannels], sum[kMaxBilateralChannels];
      for (int c = 0; c < channels; ++c) sum[c] = center[c] = tiles[c * rows * cols + (ly + r) * cols + lx + r];
      float weight_sum = 1.f;
      for (int dy = -r; dy <= r; ++dy) {
        for (int dx = -r; dx <= r; ++dx) {
          const float w_space = space[(dy + r) * (2 * r + 1) + dx + r];
          if (w_space == 0.f || (dy == 0 && dx == 0)) continue;
          float distance = 0.f;
          for (int c = 0; c < channels; ++c)
            distance += fabsf(tiles[c * rows * cols + (ly + r + dy) * cols + lx + r + dx] - center[c]);
          const float w = w_space * __expf(distance * distance * color_coeff);
          weight_sum += w;
          for (int c = 0; c < channels; ++c)
            sum[c] = fmaf(w, tiles[c * rows * cols + (ly + r + dy) * cols + lx + r + dx], sum[c]);
        }
      }
      const int y = y0 + ly, x = x0 + lx;
      if (y < g.s.height && x < g.s.width)
        for (int c = 0; c < channels; ++c)
          out[(n * channels + c) * plane_size + int64_t(y) * g.s.width + x] = sum[c] / weight_sum;
    });
  });
}

dim3 tile_grid(const PlaneStack& s, int64_t planes) {
  const int64_t z = planes < 65535 ? planes : 65535;
  return dim3((s.width + kTileW - 1) / kTileW, (s.height + kTileH - 1) / kTileH, static_cast<unsigned>(z));
}

// Launches with `smem` bytes of dynamic shared memory (raising the kernel's limit when above 48 KiB).
template <typename Kernel, typename... Args>
const char* launch(Kernel kernel, dim3 grid, size_t smem, void* stream, Args... args) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "";
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return cudaGetErrorString(e);
  }
  PYDENOISE_LAUNCH(kernel, grid, kThreads, smem, static_cast<cudaStream_t>(stream), args...);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? "" : cudaGetErrorString(e);
}

size_t tile_pixels(int ry, int rx) { return size_t(kTileH + 2 * ry) * (kTileW + 2 * rx); }

const char* kTooLarge = "kernel larger than the CUDA kernels take (see kCudaMaxKernel)";

}  // namespace

template <typename T>
const char* separable_filter_cuda(const T* in, T* out, PlaneStack s, const float* kernel_y, int ky,
                                  const float* kernel_x, int kx, Border border, float cval, int* nonfinite,
                                  void* stream) {
  if (ky > kCudaMaxKernel || kx > kCudaMaxKernel) return kTooLarge;
  SeparableCoeffs c{};
  for (int i = 0; i < ky; ++i) c.y[i] = kernel_y[i];
  for (int j = 0; j < kx; ++j) c.x[j] = kernel_x[j];
  c.ky = ky;
  c.kx = kx;
  const Geometry g{s, border, cval, ky / 2, kx / 2, nonfinite};
  const size_t smem = (tile_pixels(g.ry, g.rx) + size_t(kTileH) * (kTileW + 2 * g.rx)) * sizeof(float);
  return launch(separable_kernel<T>, tile_grid(s, s.planes), smem, stream, in, out, g, c);
}

template <typename T>
const char* correlate2d_cuda(const T* in, T* out, PlaneStack s, const float* kernel, int kh, int kw, Border border,
                             float cval, int* nonfinite, void* stream) {
  if (kh > kCudaMaxKernel || kw > kCudaMaxKernel) return kTooLarge;
  KernelCoeffs c{};
  for (int i = 0; i < kh * kw; ++i) c.k[i] = kernel[i];
  c.kh = kh;
  c.kw = kw;
  const Geometry g{s, border, cval, kh / 2, kw / 2, nonfinite};
  return launch(correlate_kernel<T>, tile_grid(s, s.planes), tile_pixels(g.ry, g.rx) * sizeof(float), stream, in, out,
                g, c);
}

template <typename T>
const char* median_filter_cuda(const T* in, T* out, PlaneStack s, int ksize, Border border, float cval, int* nonfinite,
                               void* stream) {
  if (ksize > kCudaMaxKernel) return kTooLarge;
  const Geometry g{s, border, cval, ksize / 2, ksize / 2, nonfinite};
  // Shared memory is sized in floats; a uint8 tile uses a quarter of it, rounded up.
  const size_t smem = (tile_pixels(g.ry, g.rx) * sizeof(T) + sizeof(float) - 1) / sizeof(float) * sizeof(float);
  return launch(median_kernel<T>, tile_grid(s, s.planes), smem, stream, in, out, g, ksize);
}

const char* bilateral_filter_cuda(const float* in, float* out, int64_t images, int channels, int height, int width,
                                  int radius, float sigma_color, float sigma_space, Border border, float cval,
                                  int* nonfinite, void* stream) {
  if (2 * radius + 1 > kCudaMaxKernel || channels > kMaxBilateralChannels) return kTooLarge;
  const PlaneStack s{images * channels, height, width};
  const Geometry g{s, border, cval, radius, radius, nonfinite};
  const size_t smem =
      (size_t(2 * radius + 1) * (2 * radius + 1) + channels * tile_pixels(radius, radius)) * sizeof(float);
  return launch(bilateral_kernel, tile_grid(s, images), smem, stream, in, out, g, channels, sigma_space,
                -0.5f / (sigma_color * sigma_color));
}

template const char* separable_filter_cuda<float>(const float*, float*, PlaneStack, const float*, int, const float*,
                                                  int, Border, float, int*, void*);
template const char* separable_filter_cuda<uint8_t>(const uint8_t*, uint8_t*, PlaneStack, const float*, int,
                                                    const float*, int, Border, float, int*, void*);
template const char* correlate2d_cuda<float>(const float*, float*, PlaneStack, const float*, int, int, Border, float,
                                             int*, void*);
template const char* correlate2d_cuda<uint8_t>(const uint8_t*, uint8_t*, PlaneStack, const float*, int, int, Border,
                                               float, int*, void*);
template const char* median_filter_cuda<float>(const float*, float*, PlaneStack, int, Border, float, int*, void*);
template const char* median_filter_cuda<uint8_t>(const uint8_t*, uint8_t*, PlaneStack, int, Border, float, int*, void*);

}  // namespace pydenoise
