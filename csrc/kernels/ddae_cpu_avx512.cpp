// AVX-512 dense layers for the CPU DDAE, only called when cpu_path() says the CPU runs them. 16-lane vectors
// and 32 registers: larger register tiles than AVX2 (fewer loads per FMA), K tails by masked loads.
//
// Two variants:
// - dense_layer_avx512 (AVX-512 F/BW/DQ/VL): float32 math, float32 or bf16 weights (bf16 widened on load);
//   dot-product tiles against torch's (N, K) layout, or outer products against packed float32 panels.
// - dense_layer_avx512_bf16 (+ AVX512_BF16): bf16 weights. The layer's input rows are rounded to bf16 once
//   per call, then VDPBF16PS multiplies pairs of bf16 and accumulates in float32: twice the multiply-adds
//   per instruction and half the weight bytes of a float32 FMA, at the accuracy of bf16 inputs (<= 1e-2
//   relative, like the CUDA bf16 tensor-core path). Outer products against bf16 pair panels when packed,
//   dot products against torch's layout otherwise.
// The standard headers come first, outside the target region, so no inline library code is built for AVX-512.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/ddae_cpu_layer.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#include "kernels/ddae_cpu_tiles.h"

namespace pydenoise::detail {
namespace {

// Lanes [0, n) of a 16-lane mask: all for n >= 16, none for n <= 0.
inline __mmask16 first_lanes(int n) {
  return n >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << std::max(n, 0)) - 1);
}

template <WeightType WT>
inline __m512 load_weights(const void* w, int64_t offset, __mmask16 lanes) {
  if constexpr (WT == WeightType::kFloat32) {
    return _mm512_maskz_loadu_ps(lanes, static_cast<const float*>(w) + offset);
  } else {
    // bf16 -> fp32 is a 16-bit left shift of the bits.
    const __m256i bits = _mm256_maskz_loadu_epi16(lanes, static_cast<const uint16_t*>(w) + offset);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }
}

inline __m256 fold_halves(__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }

// Horizontal sums of four vectors, as one 4-lane vector.
inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m256 ab = _mm256_hadd_ps(fold_halves(a), fold_halves(b));
  const __m256 abcd = _mm256_hadd_ps(ab, _mm256_hadd_ps(fold_halves(c), fold_halves(d)));
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// Reduces the MR x NR accumulators of a dot tile, applies the epilogue and stores rows r0.., features n0...
template <int MR, int NR>
inline void store_dot_tile(const DenseLayerArgs& a, __m512 (&acc)[MR][NR], int r0, int n0) {
  for (int i = 0; i < MR; ++i) {
    float* out_row = a.out + (r0 + i) * a.out_stride + n0;
    if constexpr (NR % 4 == 0) {
      for (int j = 0; j < NR; j += 4) {
        __m128 v =
            _mm_add_ps(hsum4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]), _mm_loadu_ps(a.bias + n0 + j));
        if (a.relu) v = _mm_max_ps(_mm_setzero_ps(), v);  // max(0, NaN) keeps the NaN in this operand order
        if (a.residual_of) v = _mm_sub_ps(_mm_loadu_ps(a.residual_of + (r0 + i) * a.residual_stride + n0 + j), v);
        _mm_storeu_ps(out_row + j, v);
      }
    } else {
      for (int j = 0; j < NR; ++j) out_row[j] = apply_epilogue(a, r0 + i, n0 + j, _mm512_reduce_add_ps(acc[i][j]));
    }
  }
}

// Prefetches the next column tile's weight rows (contiguous after this tile's) at the rate this tile reads
// its own, so the weight stream from L3 overlaps the arithmetic. Only the first row tile does it.
inline void prefetch_next_tile(const char* next_tile, int64_t bytes) {
  for (int64_t line = 0; line < bytes; line += 64) _mm_prefetch(next_tile + line, _MM_HINT_T0);
}

// Outputs (r0 .. r0+MR) x (n0 .. n0+NR) of the layer, float32 math.
template <WeightType WT, int MR, int NR>
inline void dot_tile(const DenseLayerArgs& a, int r0, int n0) {
  const int K = a.in_features;
  const float* x[MR];
  for (int i = 0; i < MR; ++i) x[i] = a.in + (r0 + i) * a.in_stride;
  int64_t w_row[NR];
  for (int j = 0; j < NR; ++j) w_row[j] = int64_t{n0 + j} * K;
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();

  constexpr int kWeightBytes = WT == WeightType::kFloat32 ? 4 : 2;
  const char* next_tile = static_cast<const char*>(a.weight) + (w_row[0] + int64_t{NR} * K) * kWeightBytes;
  const bool prefetch = r0 == 0 && n0 + 2 * NR <= a.n_end;
  for (int k = 0; k < K; k += 16) {
    if (prefetch) prefetch_next_tile(next_tile + int64_t{k} * NR * kWeightBytes, NR * 16 * kWeightBytes);
    const __mmask16 lanes = first_lanes(K - k);
    __m512 xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = _mm512_maskz_loadu_ps(lanes, x[i] + k);
    for (int j = 0; j < NR; ++j) {
      const __m512 wv = load_weights<WT>(a.weight, w_row[j] + k, lanes);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_fmadd_ps(xv[i], wv, acc[i][j]);
    }
  }
  store_dot_tile(a, acc, r0, n0);
}

inline __m512 panel_epilogue(const DenseLayerArgs& a, __m512 v, int r, int n) {
  v = _mm512_add_ps(v, _mm512_loadu_ps(a.bias + n));
  if (a.relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);  // NaN-preserving operand order
  if (a.residual_of) v = _mm512_sub_ps(_mm512_loadu_ps(a.residual_of + r * a.residual_stride + n), v);
  return v;
}

// Large batches: rows r0 .. r0+MR times NP packed panels (16 features each, one vector) from panel p, over
// k in [k0, k1): per k, NP panel vectors times MR broadcast activations. Partial sums of earlier K slices
// are kept in the output rows; the last slice applies the epilogue.
template <int MR, int NP>
inline void panel_tile(const DenseLayerArgs& a, int p, int r0, int k0, int k1) {
  const int64_t panel_floats = int64_t{kPanelWidth} * a.in_features;
  const float* panel = a.packed_weight + p * panel_floats;
  const float* x[MR];
  __m512 acc[NP][MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    x[i] = a.in + (r0 + i) * a.in_stride;
    for (int q = 0; q < NP; ++q) {
      const float* out = a.out + (r0 + i) * a.out_stride + (p + q) * kPanelWidth;
      acc[q][i] = k0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(out);
    }
  }
  for (int k = k0; k < k1; ++k) {
    __m512 b[NP];
    for (int q = 0; q < NP; ++q) b[q] = _mm512_loadu_ps(panel + q * panel_floats + k * kPanelWidth);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 xi = _mm512_set1_ps(x[i][k]);
      for (int q = 0; q < NP; ++q) acc[q][i] = _mm512_fmadd_ps(xi, b[q], acc[q][i]);
    }
  }
  const bool last_slice = k1 == a.in_features;
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    for (int q = 0; q < NP; ++q) {
      const int n = (p + q) * kPanelWidth;
      _mm512_storeu_ps(a.out + (r0 + i) * a.out_stride + n,
                       last_slice ? panel_epilogue(a, acc[q][i], r0 + i, n) : acc[q][i]);
    }
  }
}

// Dot-product tiles by the number of rows. Register budget (32 zmm): MR x NR accumulators, MR activation
// vectors and one weight vector.
template <typename Tile>
void dot_tiles_by_rows(const DenseLayerArgs& a, Tile&& tile) {
  if (a.rows >= 3) {
    dot_tile_layer<3, 8>(a, tile);
  } else if (a.rows == 2) {
    dot_tile_layer<2, 12>(a, tile);
  } else {
    dot_tile_layer<1, 16>(a, tile);
  }
}

template <WeightType WT>
void dot_layer(const DenseLayerArgs& a) {
  dot_tiles_by_rows(
      a, [&](auto mr, auto nr, int r0, int n0) { dot_tile<WT, decltype(mr)::value, decltype(nr)::value>(a, r0, n0); });
}

}  // namespace

void dense_layer_avx512(const DenseLayerArgs& a) {
  if (a.packed_weight != nullptr && a.n_begin % kPanelWidth == 0) {
    // 12 rows x 2 panels: 24 accumulators, 2 panel vectors, one broadcast.
    panel_tile_layer<12, 2>(a, [&](auto mr, auto np, int p, int r0, int k0, int k1) {
      panel_tile<decltype(mr)::value, decltype(np)::value>(a, p, r0, k0, k1);
    });
    // Features past the last full panel are not packed: the dot-product tiles take them.
    DenseLayerArgs tail = a;
    tail.n_begin = std::max(a.n_begin, a.n_end / kPanelWidth * kPanelWidth);
    tail.packed_weight = nullptr;
    if (tail.n_begin < tail.n_end) dense_layer_avx512(tail);
    return;
  }
  if (a.weight_type == WeightType::kFloat32) {
    dot_layer<WeightType::kFloat32>(a);
  } else {
    dot_layer<WeightType::kBFloat16>(a);
  }
}

}  // namespace pydenoise::detail
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,avx2,fma")
namespace pydenoise::detail {
namespace {

// Rows of bf16 activations in the scratch buffer: K rounded up to whole 32-lane vectors, zero-padded, so the
// tiles read whole vectors (and pairs) and the padding adds nothing.
inline int bf16_row_length(int K) { return (K + 31) / 32 * 32; }

// The layer's input rows, rounded to bf16 (nearest even) into `rows_out` (rows x bf16_row_length(K)).
void round_rows_to_bf16(const DenseLayerArgs& a, uint16_t* rows_out) {
  const int K = a.in_features;
  const int length = bf16_row_length(K);
  for (int r = 0; r < a.rows; ++r) {
    const float* x = a.in + r * a.in_stride;
    for (int k = 0; k < length; k += 32) {
      const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(K - k), x + k);
      const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(K - k - 16), x + k + 16);
      _mm512_storeu_si512(rows_out + int64_t{r} * length + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
}

// Outputs (r0 .. r0+MR) x (n0 .. n0+NR): pairs of bf16 activations and weights along K, float32 sums.
template <int MR, int NR>
inline void bf16_dot_tile(const DenseLayerArgs& a, const uint16_t* rows_bf16, int r0, int n0) {
  const int K = a.in_features;
  const int length = bf16_row_length(K);
  const auto* w16 = static_cast<const uint16_t*>(a.weight);
  int64_t w_row[NR];
  for (int j = 0; j < NR; ++j) w_row[j] = int64_t{n0 + j} * K;
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();

  const char* next_tile = reinterpret_cast<const char*>(w16 + w_row[0] + int64_t{NR} * K);
  const bool prefetch = r0 == 0 && n0 + 2 * NR <= a.n_end;
  for (int k = 0; k < length; k += 32) {
    if (prefetch) prefetch_next_tile(next_tile + int64_t{k} * NR * 2, NR * 64);
    const __mmask32 lanes = K - k >= 32 ? ~__mmask32{0} : (__mmask32{1} << (K - k)) - 1;
    __m512bh xv[MR];
    for (int i = 0; i < MR; ++i) xv[i] = (__m512bh)_mm512_loadu_si512(rows_bf16 + int64_t{r0 + i} * length + k);
    for (int j = 0; j < NR; ++j) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(lanes, w16 + w_row[j] + k);
      for (int i = 0; i < MR; ++i) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], xv[i], wv);
    }
  }
  store_dot_tile(a, acc, r0, n0);
}

// Large batches: rows r0 .. r0+MR times NP pair panels from panel p. Per pair of k, one vector per panel
// (16 features x 2 k) and one broadcast pair of activations per row.
template <int MR, int NP>
inline void pair_panel_tile(const DenseLayerArgs& a, const uint16_t* rows_bf16, int p, int r0) {
  const int pairs = pair_panel_k(a.in_features);
  const int64_t row_pairs = bf16_row_length(a.in_features) / 2;
  const uint16_t* panel = a.packed_pairs + p * pair_panel_bf16s(a.in_features);
  const auto* x = reinterpret_cast<const int32_t*>(rows_bf16) + r0 * row_pairs;
  __m512 acc[NP][MR];
  for (int q = 0; q < NP; ++q)
    for (int i = 0; i < MR; ++i) acc[q][i] = _mm512_setzero_ps();
  for (int kp = 0; kp < pairs; ++kp) {
    __m512bh b[NP];
    for (int q = 0; q < NP; ++q) {
      b[q] = (__m512bh)_mm512_loadu_si512(panel + q * pair_panel_bf16s(a.in_features) + kp * 2 * kPanelWidth);
    }
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512bh xi = (__m512bh)_mm512_set1_epi32(x[i * row_pairs + kp]);
      for (int q = 0; q < NP; ++q) acc[q][i] = _mm512_dpbf16_ps(acc[q][i], xi, b[q]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    for (int q = 0; q < NP; ++q) {
      const int n = (p + q) * kPanelWidth;
      _mm512_storeu_ps(a.out + (r0 + i) * a.out_stride + n, panel_epilogue(a, acc[q][i], r0 + i, n));
    }
  }
}

// The layer on rows already rounded to bf16: pair panels for the full panels when packed, dot tiles for the
// rest.
void bf16_layer(const DenseLayerArgs& a, const uint16_t* rows_bf16) {
  int dot_begin = a.n_begin;
  if (a.packed_pairs != nullptr && a.n_begin % kPanelWidth == 0) {
    const int panel_end = a.n_end / kPanelWidth;
    for (int p = a.n_begin / kPanelWidth; p < panel_end; p += 2) {
      // 12 rows x 2 panels: 24 accumulators, 2 panel vectors, one broadcast.
      for_row_tiles<12>(a.rows, [&](auto mr, int r0) {
        if (p + 1 < panel_end) {
          pair_panel_tile<decltype(mr)::value, 2>(a, rows_bf16, p, r0);
        } else {
          pair_panel_tile<decltype(mr)::value, 1>(a, rows_bf16, p, r0);
        }
      });
    }
    dot_begin = std::max(a.n_begin, panel_end * kPanelWidth);
  }
  DenseLayerArgs rest = a;
  rest.n_begin = dot_begin;
  dot_tiles_by_rows(rest, [&](auto mr, auto nr, int r0, int n0) {
    bf16_dot_tile<decltype(mr)::value, decltype(nr)::value>(rest, rows_bf16, r0, n0);
  });
}

}  // namespace

void dense_layer_avx512_bf16(const DenseLayerArgs& a) {
  auto* rows_bf16 = reinterpret_cast<uint16_t*>(
      thread_buffer(size_t(a.rows) * bf16_row_length(a.in_features) / 2, Scratch::kBf16Activations));
  round_rows_to_bf16(a, rows_bf16);
  bf16_layer(a, rows_bf16);
}

}  // namespace pydenoise::detail
#pragma GCC pop_options
