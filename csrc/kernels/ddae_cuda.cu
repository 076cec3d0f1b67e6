// CUDA DDAE: one launch runs the whole network. Each block owns kTileRows windows; their activations live in
// shared memory for the whole stack (ping-pong between two buffers), only the weights stream in (from L2).
//
// Math modes:
//   kSimt : float32 FMA; weight tiles staged through shared memory, 4x4 outputs per thread.
//   kTf32 : tensor cores (WMMA m16n16k8), float32 operands rounded to tf32, float32 accumulation.
//   kBf16 : tensor cores (WMMA m16n16k16) on bf16 weights, activations rounded to bf16, float32 accumulation.
#include <type_traits>

#include "kernels/cuda_compat.h"
#include "kernels/ddae.h"

namespace pydenoise {

#define PYDENOISE_STR2(...) #__VA_ARGS__
#define PYDENOISE_STR(...) PYDENOISE_STR2(__VA_ARGS__)
const char* cuda_arch_list() {
#ifdef __CUDA_ARCH_LIST__
  return PYDENOISE_STR(__CUDA_ARCH_LIST__);
#else
  return "unknown";
#endif
}

namespace {

using namespace nvcuda;

enum class Mode { kSimt, kTf32, kBf16 };

constexpr int kTileRows = 32;  // windows per block
constexpr int kThreads = 256;  // 8 warps
constexpr int kWarps = kThreads / 32;
constexpr int kSimtCols = 128;           // output features per SIMT pass: 32 column groups x 4
constexpr int kSimtK = 32;               // K slice staged per SIMT step
constexpr int kStagePitch = kSimtK + 1;  // +1 float: conflict-free column reads of the staged weights

struct Params {
  DdaeNet net;
  const float* frames;
  int64_t batch;
  int64_t frame_stride;
  float* out;
  int ld;  // shared-memory row pitch in floats (multiple of 8 for WMMA's 32-byte alignment)
  bool residual;
};

// Activation after bias; NaN propagates (a comparison, not fmaxf, which would turn NaN into 0).
__device__ __forceinline__ float bias_relu(float v, float bias, bool relu) {
  v += bias;
  return (relu && v < 0.f) ? 0.f : v;
}

// SIMT layer: out[r, n] = act(in[r, :] . W[n, :] + b[n]) for the block's 32 rows.
__device__ void layer_simt(const float* in, float* out, int ld, const float* __restrict__ W,
                           const float* __restrict__ bias, int K, int N, bool relu, float* stage) {
  const int t = threadIdx.x;
  const int row_group = t / 32;  // rows row_group*4 .. +3 (a warp shares its rows: broadcast reads)
  const int col = t % 32;        // columns n0 + col + 32*j (consecutive across a warp: no bank conflicts)
  for (int n0 = 0; n0 < N; n0 += kSimtCols) {
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += kSimtK) {
      __syncthreads();  // the previous slice is consumed
      for (int idx = t; idx < kSimtCols * kSimtK; idx += kThreads) {
        const int n = idx / kSimtK, k = idx % kSimtK;  // a warp reads 32 consecutive k of one row: coalesced
        stage[n * kStagePitch + k] = (n0 + n < N && k0 + k < K) ? W[int64_t(n0 + n) * K + k0 + k] : 0.f;
      }
      __syncthreads();
      const int k_end = min(kSimtK, K - k0);
      for (int kk = 0; kk < k_end; ++kk) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = in[(row_group * 4 + i) * ld + k0 + kk];
#pragma unroll
        for (int j = 0; j < 4; ++j) b[j] = stage[(col + 32 * j) * kStagePitch + kk];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + col + 32 * j;
      if (n >= N) continue;
#pragma unroll
      for (int i = 0; i < 4; ++i) out[(row_group * 4 + i) * ld + n] = bias_relu(acc[i][j], bias[n], relu);
    }
  }
}

// Tensor-core layer: each warp owns 16-column strips of the output for both 16-row halves of the tile.
// W (N, K) row-major is the B operand (K, N) in column-major order with leading dimension K, read from L2.
template <Mode M>
__device__ void layer_wmma(const float* in, float* out, int ld, const void* W, const float* __restrict__ bias, int K,
                           int N, bool relu, __nv_bfloat16* in_bf16) {
  constexpr int kK = M == Mode::kTf32 ? 8 : 16;
  using Elem = std::conditional_t<M == Mode::kTf32, wmma::precision::tf32, __nv_bfloat16>;
  const int warp = threadIdx.x / 32;
  if constexpr (M == Mode::kBf16) {
    for (int idx = threadIdx.x; idx < kTileRows * K; idx += kThreads) {
      const int r = idx / K, k = idx % K;
      in_bf16[r * ld + k] = __float2bfloat16(in[r * ld + k]);
    }
    __syncthreads();
  }
  for (int strip = warp; strip < N / 16; strip += kWarps) {
    wmma::fragment<wmma::accumulator, 16, 16, kK, float> acc[2];
    wmma::fill_fragment(acc[0], 0.f);
    wmma::fill_fragment(acc[1], 0.f);
    for (int k0 = 0; k0 < K; k0 += kK) {
      wmma::fragment<wmma::matrix_b, 16, 16, kK, Elem, wmma::col_major> b;
      if constexpr (M == Mode::kTf32) {
        wmma::load_matrix_sync(b, static_cast<const float*>(W) + int64_t(strip) * 16 * K + k0, K);
        for (int e = 0; e < b.num_elements; ++e) b.x[e] = wmma::__float_to_tf32(b.x[e]);
      } else {
        wmma::load_matrix_sync(b, static_cast<const __nv_bfloat16*>(W) + int64_t(strip) * 16 * K + k0, K);
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        wmma::fragment<wmma::matrix_a, 16, 16, kK, Elem, wmma::row_major> a;
        if constexpr (M == Mode::kTf32) {
          wmma::load_matrix_sync(a, in + half * 16 * ld + k0, ld);
          for (int e = 0; e < a.num_elements; ++e) a.x[e] = wmma::__float_to_tf32(a.x[e]);
        } else {
          wmma::load_matrix_sync(a, in_bf16 + half * 16 * ld + k0, ld);
        }
        wmma::mma_sync(acc[half], a, b, acc[half]);
      }
    }
    for (int half = 0; half < 2; ++half) {
      wmma::store_matrix_sync(out + half * 16 * ld + strip * 16, acc[half], ld, wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < kTileRows * N; idx += kThreads) {
    const int r = idx / N, n = idx % N;
    out[r * ld + n] = bias_relu(out[r * ld + n], bias[n], relu);
  }
}

template <Mode M>
__global__ void __launch_bounds__(kThreads) ddae_kernel(Params p) {
  PYDENOISE_DYNAMIC_SHARED(unsigned char, smem);
  const int ld = p.ld;
  float* act[2] = {reinterpret_cast<float*>(smem), reinterpret_cast<float*>(smem) + kTileRows * ld};
  void* extra = reinterpret_cast<float*>(smem) + 2 * kTileRows * ld;  // SIMT weight stage or bf16 copy

  const int window = p.net.widths[0];
  const int64_t row0 = int64_t(blockIdx.x) * kTileRows;
  const int64_t remaining = p.batch - row0;
  const int rows = remaining < kTileRows ? static_cast<int>(remaining) : kTileRows;

  for (int idx = threadIdx.x; idx < kTileRows * window; idx += kThreads) {
    const int r = idx / window, c = idx % window;
    act[0][r * ld + c] = r < rows ? p.frames[(row0 + r) * p.frame_stride + c] : 0.f;
  }
  __syncthreads();

  int cur = 0;
  for (int l = 0; l < p.net.num_layers; ++l) {
    const bool relu = l + 1 < p.net.num_layers;
    const int K = p.net.widths[l], N = p.net.widths[l + 1];
    if constexpr (M == Mode::kSimt) {
      layer_simt(act[cur], act[cur ^ 1], ld, static_cast<const float*>(p.net.weights[l]), p.net.biases[l], K, N, relu,
                 static_cast<float*>(extra));
    } else {
      layer_wmma<M>(act[cur], act[cur ^ 1], ld, p.net.weights[l], p.net.biases[l], K, N, relu,
                    static_cast<__nv_bfloat16*>(extra));
    }
    __syncthreads();
    cur ^= 1;
  }

  for (int idx = threadIdx.x; idx < rows * window; idx += kThreads) {
    const int r = idx / window, c = idx % window;
    const float f = act[cur][r * ld + c];
    p.out[(row0 + r) * window + c] = p.residual ? p.frames[(row0 + r) * p.frame_stride + c] - f : f;
  }
}

size_t shared_bytes(Mode mode, int ld) {
  size_t bytes = size_t{2} * kTileRows * ld * sizeof(float);
  if (mode == Mode::kSimt) bytes += size_t{kSimtCols} * kStagePitch * sizeof(float);
  if (mode == Mode::kBf16) bytes += size_t{kTileRows} * ld * sizeof(__nv_bfloat16);
  return bytes;
}

template <Mode M>
const char* launch(const Params& p, size_t smem, cudaStream_t stream) {
  cudaError_t err =
      cudaFuncSetAttribute(ddae_kernel<M>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (err != cudaSuccess) return cudaGetErrorString(err);
  const auto blocks = static_cast<unsigned>((p.batch + kTileRows - 1) / kTileRows);
  PYDENOISE_LAUNCH(ddae_kernel<M>, blocks, kThreads, smem, stream, p);
  err = cudaGetLastError();
  return err == cudaSuccess ? "" : cudaGetErrorString(err);
}

}  // namespace

const char* ddae_forward_cuda(const DdaeNet& net, const float* frames, int64_t batch, int64_t frame_stride,
                              bool residual, float* out, CudaMath math, void* stream) {
  if (batch <= 0) return "";
  if (net.max_width() > kCudaMaxWidth) return "layer widths above 768 do not fit the CUDA kernel's shared memory";
  if ((batch + kTileRows - 1) / kTileRows > int64_t{0x7fffffff}) return "batch too large for one launch";
  Mode mode = Mode::kSimt;
  if (net.weight_type == WeightType::kBFloat16) {
    mode = Mode::kBf16;
  } else if (math == CudaMath::kTF32) {
    mode = Mode::kTf32;
  }
  if (mode != Mode::kSimt) {
    for (int l = 0; l <= net.num_layers; ++l) {
      if (net.widths[l] % 16 != 0) return "tensor-core math (tf32/bf16) needs every layer width divisible by 16";
    }
  }
  Params p{net, frames, batch, frame_stride, out, (net.max_width() + 15) / 16 * 16 + 8, residual};
  const size_t smem = shared_bytes(mode, p.ld);
  int device = 0, max_smem = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (smem > static_cast<size_t>(max_smem)) return "the network's widths need more shared memory than this GPU has";
  auto s = static_cast<cudaStream_t>(stream);
  switch (mode) {
    case Mode::kTf32:
      return launch<Mode::kTf32>(p, smem, s);
    case Mode::kBf16:
      return launch<Mode::kBf16>(p, smem, s);
    default:
      return launch<Mode::kSimt>(p, smem, s);
  }
}

}  // namespace pydenoise
