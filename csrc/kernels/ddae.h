// The fused dense denoising autoencoder (DDAE): a whole stack of dense layers over a batch of windows in
// one call, activations kept on chip (CPU: a thread's L1/L2 tile; CUDA: shared memory) from layer to layer.
// Torch-free: raw pointers and sizes only, so the kernels are testable from plain C++.
#pragma once

#include <cstdint>

namespace pydenoise {

constexpr int kMaxDdaeLayers = 16;

// Storage of the weight matrices. Biases, inputs, outputs and accumulation are always float32.
enum class WeightType { kFloat32, kBFloat16 };

// Math used on CUDA for float32 weights (bf16 weights always use bf16 tensor cores).
enum class CudaMath { kFloat32, kTF32 };

// The network: layer l maps widths[l] -> widths[l + 1]; its weight is row-major (widths[l + 1], widths[l]),
// the layout of torch.nn.Linear.weight. ReLU after every layer but the last; the last is linear.
// widths[num_layers] must equal widths[0] (a window in, a window out).
struct DdaeNet {
  int num_layers = 0;
  int widths[kMaxDdaeLayers + 1] = {};
  const void* weights[kMaxDdaeLayers] = {};  // float* or uint16_t* (bf16 bits), by weight_type
  const float* biases[kMaxDdaeLayers] = {};
  WeightType weight_type = WeightType::kFloat32;
  // CPU, optional: every layer's weight also packed by ddae_pack_weights, once for many calls (as inference
  // engines prepack constant weights). Without it the kernel packs per call, and only for large batches.
  // packed[l] holds ddae_packed_floats(widths[l], widths[l + 1], weight_type) floats.
  bool prepacked = false;
  const float* packed[kMaxDdaeLayers] = {};

  int window() const { return widths[0]; }
  int max_width() const;
};

// Largest width the CUDA kernel keeps in shared memory.
constexpr int kCudaMaxWidth = 768;

// out[b, :] = f(frames[b, :]) or, with residual, frames[b, :] - f(frames[b, :]).
// frames: `batch` rows of net.window() floats, rows `frame_stride` floats apart (>= 1: rows may
// overlap, so a strided view of a signal with a hop works without a copy). out: contiguous (batch, window). num_threads
// <= 0 means "OpenMP default".
void ddae_forward_cpu(const DdaeNet& net, const float* frames, int64_t batch, int64_t frame_stride, bool residual,
                      float* out, int num_threads);

// The CPU kernel's packed form of a (out_features, in_features) weight: W^T in panels of 16 features,
// float32 (bf16 widened); bf16 weights also as bf16 pair panels (for VDPBF16PS), after the float32 ones.
// Features past the last full panel are read from the weight itself. The size in floats:
int64_t ddae_packed_floats(int in_features, int out_features, WeightType weight_type);
void ddae_pack_weights(const void* weight, WeightType weight_type, int in_features, int out_features, float* packed);

// True when the kernels run an AVX2 path or better (cpu_dispatch.h says which).
bool cpu_has_avx2();

#ifdef PYDENOISE_WITH_CUDA
// Same function on the GPU, one kernel launch for the whole network on `stream` (a cudaStream_t).
// Returns an empty string on success, else the reason (invalid configuration or launch error).
const char* ddae_forward_cuda(const DdaeNet& net, const float* frames, int64_t batch, int64_t frame_stride,
                              bool residual, float* out, CudaMath math, void* stream);
#endif

}  // namespace pydenoise
