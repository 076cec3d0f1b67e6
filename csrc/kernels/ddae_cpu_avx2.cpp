// AVX2/FMA dense layer for the CPU DDAE. Compiled for AVX2 via the target pragma and only called after
// cpu_has_avx2(), so the module still loads on older CPUs.
//
// Both the activations (rows, K) and torch's weight layout (N, K) are contiguous along K, so each output is a
// dot product: an MR x NR register tile of 8-lane accumulators runs along K, then is reduced horizontally.
// No weight packing is needed, which keeps B = 1 calls free of any per-call preprocessing.
// The standard headers come first, outside the target region, so no inline library code is built for AVX2.
#include <immintrin.h>

#include <algorithm>

#include "kernels/ddae_cpu_layer.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "kernels/ddae_cpu_tiles.h"

namespace pydenoise::detail {
namespace {

template <WeightType WT>
inline __m256 load_weights(const void* w, int64_t offset) {
  if constexpr (WT == WeightType::kFloat32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + offset);
  } else {
    // bf16 -> fp32 is a 16-bit left shift of the bits.
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + offset));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }
}

template <WeightType WT>
inline float weight_at(const void* w, int64_t index) {
  if constexpr (WT == WeightType::kFloat32) {
    return static_cast<const float*>(w)[index];
  } else {
    return bf16_to_float(static_cast<const uint16_t*>(w)[index]);
  }
}

// Horizontal sums of four vectors, as one 4-lane vector.
inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Outputs (r0 .. r0+MR) x (n0 .. n0+NR) of the layer.
template <WeightType WT, int MR, int NR>
inline void dot_tile(const DenseLayerArgs& a, int r0, int n0) {
  const int K = a.in_features;
  const int K8 = K & ~7;
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = a.in + (r0 + i) * a.in_stride;
  int64_t w_row[NR];
  for (int j = 0; j < NR; ++j) w_row[j] = int64_t{n0 + j} * K;

  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_ps();

  // The next column tile's weight rows are contiguous right after this tile's: prefetch them at the rate
  // this tile consumes its own, so the weight stream from L3 overlaps the FMAs.
  constexpr int kWeightBytes = WT == WeightType::kFloat32 ? 4 : 2;
  const char* next_tile = static_cast<const char*>(a.weight) + (w_row[0] + int64_t{NR} * K) * kWeightBytes;
  const bool prefetch = r0 == 0 && n0 + 2 * NR <= a.n_end;
  int k = 0;
  if constexpr (WT == WeightType::kBFloat16 && MR == 1) {
    // B = 1 is bound by the weight stream: read 16 bf16 weights per load. Unpacking them against zero gives
    // weights 0-3,8-11 and 4-7,12-15 as floats (per 128-bit lane), so the activations are regrouped the same
    // way, once per k step for the whole tile. (More rows would need more registers than there are.)
    const uint16_t* w16 = static_cast<const uint16_t*>(a.weight);
    const __m256i zero = _mm256_setzero_si256();
    for (; k + 16 <= K; k += 16) {
      if (prefetch) {
        for (int line = 0; line < NR * 16 * kWeightBytes; line += 64) {
          _mm_prefetch(next_tile + int64_t{k} * NR * kWeightBytes + line, _MM_HINT_T0);
        }
      }
      const __m256 x0 = _mm256_loadu_ps(x[0] + k), x1 = _mm256_loadu_ps(x[0] + k + 8);
      const __m256 x_lo = _mm256_permute2f128_ps(x0, x1, 0x20), x_hi = _mm256_permute2f128_ps(x0, x1, 0x31);
      for (int j = 0; j < NR; ++j) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w16 + w_row[j] + k));
        acc[0][j] = _mm256_fmadd_ps(x_lo, _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, w)), acc[0][j]);
        acc[0][j] = _mm256_fmadd_ps(x_hi, _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, w)), acc[0][j]);
      }
    }
  }
  for (; k < K8; k += 8) {
    if (prefetch) {
      for (int line = 0; line < NR * 8 * kWeightBytes; line += 64) {
        _mm_prefetch(next_tile + int64_t{k} * NR * kWeightBytes + line, _MM_HINT_T0);
      }
    }
    __m256 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm256_loadu_ps(x[i] + k);
    for (int j = 0; j < NR; ++j) {
      const __m256 wv = load_weights<WT>(a.weight, w_row[j] + k);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }

  const bool vector_tail = K8 == K && NR % 4 == 0;
  for (int i = 0; i < MR; ++i) {
    float* out_row = a.out + (r0 + i) * a.out_stride + n0;
    if (vector_tail) {
      for (int j = 0; j < NR; j += 4) {
        __m128 v =
            _mm_add_ps(hsum4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]), _mm_loadu_ps(a.bias + n0 + j));
        if (a.relu) v = _mm_max_ps(_mm_setzero_ps(), v);  // max(0, NaN) keeps the NaN in this operand order
        if (a.residual_of) v = _mm_sub_ps(_mm_loadu_ps(a.residual_of + (r0 + i) * a.residual_stride + n0 + j), v);
        _mm_storeu_ps(out_row + j, v);
      }
      continue;
    }
    for (int j = 0; j < NR; ++j) {
      float sum = hsum(acc[i][j]);
      for (int k = K8; k < K; ++k) sum += x[i][k] * weight_at<WT>(a.weight, w_row[j] + k);
      out_row[j] = apply_epilogue(a, r0 + i, n0 + j, sum);
    }
  }
}

inline __m256 panel_epilogue(const DenseLayerArgs& a, __m256 v, int r, int n) {
  v = _mm256_add_ps(v, _mm256_loadu_ps(a.bias + n));
  if (a.relu) v = _mm256_max_ps(_mm256_setzero_ps(), v);  // NaN-preserving operand order
  if (a.residual_of) v = _mm256_sub_ps(_mm256_loadu_ps(a.residual_of + r * a.residual_stride + n), v);
  return v;
}

// Large batches: outer products against packed weight panels. Rows r0 .. r0+MR, features n0 .. n0+15, over
// k in [k0, k1): per k, two vectors of the panel times MR broadcast activations; no horizontal sums. Partial
// sums of earlier K slices are kept in the output rows; the last slice applies the epilogue.
template <int MR>
inline void panel_tile(const DenseLayerArgs& a, const float* panel, int r0, int n0, int k0, int k1) {
  const float* x[MR];
  float* out[MR];
  // Two plain arrays (not acc[MR][2]) and fully unrolled row loops: GCC then keeps all 2*MR accumulators in
  // registers across the k loop instead of spilling them every iteration.
  __m256 lo[MR], hi[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    x[i] = a.in + (r0 + i) * a.in_stride;
    out[i] = a.out + (r0 + i) * a.out_stride + n0;
    lo[i] = k0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out[i]);
    hi[i] = k0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(out[i] + 8);
  }
  for (int k = k0; k < k1; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kPanelWidth);
    const __m256 b1 = _mm256_loadu_ps(panel + k * kPanelWidth + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 xi = _mm256_broadcast_ss(x[i] + k);
      lo[i] = _mm256_fmadd_ps(xi, b0, lo[i]);
      hi[i] = _mm256_fmadd_ps(xi, b1, hi[i]);
    }
  }
  const bool last_slice = k1 == a.in_features;
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(out[i], last_slice ? panel_epilogue(a, lo[i], r0 + i, n0) : lo[i]);
    _mm256_storeu_ps(out[i] + 8, last_slice ? panel_epilogue(a, hi[i], r0 + i, n0 + 8) : hi[i]);
  }
}

void packed_layer(const DenseLayerArgs& a) {
  panel_tile_layer<6, 1>(a, [&](auto mr, auto, int p, int r0, int k0, int k1) {
    const float* panel = a.packed_weight + int64_t{p} * kPanelWidth * a.in_features;
    panel_tile<decltype(mr)::value>(a, panel, r0, p * kPanelWidth, k0, k1);
  });
}

template <WeightType WT>
void dense_layer_typed(const DenseLayerArgs& a) {
  // Register budget (16 ymm): 3x4 accumulators when rows allow, wider column tiles for 1-2 rows.
  auto tile = [&](auto mr, auto nr, int r0, int n0) {
    dot_tile<WT, decltype(mr)::value, decltype(nr)::value>(a, r0, n0);
  };
  if (a.rows >= 3) {
    dot_tile_layer<3, 4>(a, tile);
  } else if (a.rows == 2) {
    dot_tile_layer<2, 6>(a, tile);
  } else {
    dot_tile_layer<1, 8>(a, tile);
  }
}

}  // namespace

void dense_layer_avx2(const DenseLayerArgs& a) {
  if (a.packed_weight != nullptr && a.n_begin % kPanelWidth == 0) {
    packed_layer(a);
    // Features past the last full panel are not packed: the dot-product tiles take them.
    DenseLayerArgs tail = a;
    tail.n_begin = std::max(a.n_begin, a.n_end / kPanelWidth * kPanelWidth);
    tail.packed_weight = nullptr;
    if (tail.n_begin < tail.n_end) dense_layer_avx2(tail);
    return;
  }
  if (a.weight_type == WeightType::kFloat32) {
    dense_layer_typed<WeightType::kFloat32>(a);
  } else {
    dense_layer_typed<WeightType::kBFloat16>(a);
  }
}

}  // namespace pydenoise::detail
#pragma GCC pop_options
