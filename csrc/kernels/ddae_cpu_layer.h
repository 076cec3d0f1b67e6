// Internal to the CPU DDAE kernel: one dense layer over a tile of rows, shared by the scalar and AVX2 code.
#pragma once

#include <cstdint>

#include "kernels/ddae.h"

namespace pydenoise::detail {

// out[r, n] = epilogue(sum_k in[r, k] * W[n, k] + bias[n]) for r < rows, n in [n_begin, n_end).
// Epilogue: ReLU when `relu`; then, when `residual_of` is set, out = residual_of[r, n] - value.
struct DenseLayerArgs {
  const float* in;
  int64_t in_stride;
  int rows;
  int in_features;                 // K
  const void* weight;              // (out_features, K) row-major, float or bf16 bits
  WeightType weight_type;
  const float* bias;
  int n_begin, n_end;
  bool relu;
  const float* residual_of;        // nullptr, or rows of the network input (stride residual_stride)
  int64_t residual_stride;
  float* out;
  int64_t out_stride;
};

void dense_layer_scalar(const DenseLayerArgs& a);
void dense_layer_avx2(const DenseLayerArgs& a);  // only call when cpu_has_avx2()

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
