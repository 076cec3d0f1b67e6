// Internal to the CPU DDAE kernel: one dense layer over a tile of rows, shared by the scalar and SIMD code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/ddae.h"

namespace pydenoise::detail {

// out[r, n] = epilogue(sum_k in[r, k] * W[n, k] + bias[n]) for r < rows, n in [n_begin, n_end).
// Epilogue: ReLU when `relu`; then, when `residual_of` is set, out = residual_of[r, n] - value.
struct DenseLayerArgs {
  const float* in;
  int64_t in_stride;
  int rows;
  int in_features;     // K
  const void* weight;  // (out_features, K) row-major, float or bf16 bits
  WeightType weight_type;
  const float* bias;
  int n_begin, n_end;
  bool relu;
  const float* residual_of;  // nullptr, or rows of the network input (stride residual_stride)
  int64_t residual_stride;
  float* out;
  int64_t out_stride;
  // Optional: the weight as packed panels (pack_weight_panels), for the large-batch outer-product tiles.
  const float* packed_weight = nullptr;
  // Optional, bf16 weights: the weight as bf16 pair panels (pack_pair_panels), for dense_layer_avx512_bf16.
  const uint16_t* packed_pairs = nullptr;
};

// Per-thread scratch that grows and is kept across calls (no zeroing or page faults per call), 64-byte
// aligned: 32-byte vector loads that straddle cache lines cost ~10% throughput. One buffer per slot; slots
// used by one call must differ. A pointer into the calling thread's buffer may be shared with its team.
enum class Scratch { kActivations, kPackedWeights, kFramesIn, kFramesOut, kBf16Activations, kCount };
float* thread_buffer(size_t floats, Scratch slot);

// Output features per packed panel: one 6x16 register tile is 6 rows x 2 vectors of 8.
constexpr int kPanelWidth = 16;

// Floats of the packed form of a (N, K) weight: full panels only; the last N % 16 features stay unpacked.
inline int64_t packed_floats(int K, int N) { return int64_t{N / kPanelWidth} * kPanelWidth * K; }

// Writes panels [panel_begin, panel_end) of W^T: panel p is [K][16] floats, features 16p .. 16p+15.
void pack_weight_panels(const void* weight, WeightType weight_type, int K, int panel_begin, int panel_end,
                        float* packed);

// bf16 pair panels of a bf16 (N, K) weight: panel p is [ceil(K / 2)][16][2] bf16, so one 64-byte vector holds
// weights k, k + 1 of features 16p .. 16p+15, the operand layout of VDPBF16PS; an odd K is padded with 0.
inline int pair_panel_k(int K) { return (K + 1) / 2; }
inline int64_t pair_panel_bf16s(int K) { return int64_t{pair_panel_k(K)} * kPanelWidth * 2; }
inline int64_t packed_pair_floats(int K, int N) { return N / kPanelWidth * pair_panel_bf16s(K) / 2; }
void pack_pair_panels(const uint16_t* weight, int K, int panel_begin, int panel_end, uint16_t* packed);

// One kernel per CPU path (cpu_dispatch.h); call one only when cpu_uses() its path.
void dense_layer_scalar(const DenseLayerArgs& a);       // ignores packed_weight
void dense_layer_avx2(const DenseLayerArgs& a);         // CpuPath::kAvx2
void dense_layer_avx512(const DenseLayerArgs& a);       // CpuPath::kAvx512
void dense_layer_avx512_bf16(const DenseLayerArgs& a);  // CpuPath::kAvx512Bf16, bf16 weights; ignores packed_weight

inline float bf16_to_float(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

inline float apply_epilogue(const DenseLayerArgs& a, int r, int n, float value) {
  value += a.bias[n];
  if (a.relu && value < 0.f) value = 0.f;
  if (a.residual_of) value = a.residual_of[r * a.residual_stride + n] - value;
  return value;
}

}  // namespace pydenoise::detail
