// Row kernels of the CPU filters, written once with GCC vector extensions and compiled three times: for the
// baseline x86-64 target (filters_cpu.cpp), for AVX2/FMA (filters_cpu_avx2.cpp) and for AVX-512
// (filters_cpu_avx512.cpp: the same 8-lane code with 32 registers, and 16 lanes for the bilateral filter).
// Each compilation puts them in its own namespace (PYDENOISE_FILTER_ISA) so the versions never merge at link
// time, and the including file must have included <cstring>, <cstdint>, <cmath>, <type_traits>, <utility>
// and <immintrin.h> before any target pragma.
//
// A row kernel computes one output row from row pointers prepared by filters_cpu.cpp (which handles borders,
// caching and threading). Pixels are processed a vector at a time: 8 float lanes for arithmetic filters, 32
// uint8 lanes for the uint8 median; row ends are done by one more, overlapping, vector (outputs are written
// twice with the same value), or with scalar code when the row is narrower than a vector.
//
// The vector extensions leave a few operations to the compiler that it does poorly (float min/max become
// compare + blend, uint8 <-> float conversions become scalar code), so those use SSE2 intrinsics, or AVX
// ones where the including file enabled AVX2 (PYDENOISE_FILTER_AVX2: GCC's target pragma does not define
// __AVX2__).
#if !defined(PYDENOISE_FILTER_ISA) || !defined(PYDENOISE_FILTER_AVX2) || !defined(PYDENOISE_FILTER_AVX512)
#error "define PYDENOISE_FILTER_ISA (a namespace name), PYDENOISE_FILTER_AVX2 and PYDENOISE_FILTER_AVX512 (0 or 1)"
#endif

#include "kernels/filters.h"
#include "kernels/filters_cpu_table.h"

// Vector arguments of inline helpers: no ABI crosses this file, so GCC's note about AVX vector passing is noise.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#include "kernels/filters_median_network.h"

namespace pydenoise::filter_rows::PYDENOISE_FILTER_ISA {

typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef uint8_t u8x8 __attribute__((vector_size(8)));
typedef uint8_t u8x32 __attribute__((vector_size(32)));
typedef uint8_t u8x16 __attribute__((vector_size(16)));
typedef uint16_t u16x16 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

// The integer vector of a float vector's size (for bit operations on floats).
template <typename V>
struct IntVector;
template <>
struct IntVector<f32x8> {
  using type = i32x8;
};
template <>
struct IntVector<f32x16> {
  using type = i32x16;
};

// min/max for every pixel type the kernels use, one instruction each.
struct MinMax {
  PD_NETWORK_INLINE static f32x8 min(f32x8 a, f32x8 b) {
#if PYDENOISE_FILTER_AVX2
    return (f32x8)_mm256_min_ps((__m256)a, (__m256)b);
#else
    return join(_mm_min_ps(low(a), low(b)), _mm_min_ps(high(a), high(b)));
#endif
  }
  PD_NETWORK_INLINE static f32x8 max(f32x8 a, f32x8 b) {
#if PYDENOISE_FILTER_AVX2
    return (f32x8)_mm256_max_ps((__m256)a, (__m256)b);
#else
    return join(_mm_max_ps(low(a), low(b)), _mm_max_ps(high(a), high(b)));
#endif
  }
#if PYDENOISE_FILTER_AVX512
  PD_NETWORK_INLINE static f32x16 max(f32x16 a, f32x16 b) { return (f32x16)_mm512_max_ps((__m512)a, (__m512)b); }
#endif
  PD_NETWORK_INLINE static u8x32 min(u8x32 a, u8x32 b) { return a < b ? a : b; }  // these do compile to pminub / pmaxub
  PD_NETWORK_INLINE static u8x32 max(u8x32 a, u8x32 b) { return a < b ? b : a; }
  PD_NETWORK_INLINE static float min(float a, float b) { return a < b ? a : b; }
  PD_NETWORK_INLINE static float max(float a, float b) { return a < b ? b : a; }
  PD_NETWORK_INLINE static uint8_t min(uint8_t a, uint8_t b) { return a < b ? a : b; }
  PD_NETWORK_INLINE static uint8_t max(uint8_t a, uint8_t b) { return a < b ? b : a; }

  // Halves and joins as shuffles (register moves), not through memory: a 32-byte load of two 16-byte stores
  // stalls on store forwarding.
  PD_NETWORK_INLINE static __m128 low(f32x8 v) { return __builtin_shufflevector(v, v, 0, 1, 2, 3); }
  PD_NETWORK_INLINE static __m128 high(f32x8 v) { return __builtin_shufflevector(v, v, 4, 5, 6, 7); }
  PD_NETWORK_INLINE static f32x8 join(__m128 lo, __m128 hi) {
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7);
  }
};

template <typename V>
inline constexpr int kLanes = sizeof(V) / (std::is_same_v<V, u8x32> || std::is_same_v<V, uint8_t> ? 1 : 4);

template <typename V>
inline V splat(float x) {
  if constexpr (std::is_same_v<V, float>) {
    return x;
  } else {
    return V{} + x;
  }
}

// Pixels p[0 .. lanes) as float lanes.
template <typename V>
inline V load_float(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
inline V load_float(const uint8_t* p) {
  if constexpr (std::is_same_v<V, float>) {
    return *p;
  } else {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
#if PYDENOISE_FILTER_AVX2
    return (f32x8)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
#else
    const __m128i zero = _mm_setzero_si128();
    const __m128i words = _mm_unpacklo_epi8(bytes, zero);
    return MinMax::join(_mm_cvtepi32_ps(_mm_unpacklo_epi16(words, zero)),
                        _mm_cvtepi32_ps(_mm_unpackhi_epi16(words, zero)));
#endif
  }
}

// Round half to even for 0 <= v < 2^22: adding 1.5 * 2^23 leaves no fraction bits.
template <typename V>
inline V round_even(V v) {
  const V magic = splat<V>(12582912.f);
  return (v + magic) - magic;
}

template <typename V>
inline void store_float(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}
// Rounded to nearest (ties to even, the MXCSR default that cvtps uses; cvRound does the same) and saturated.
template <typename V>
inline void store_float(uint8_t* p, V v) {
  if constexpr (std::is_same_v<V, float>) {
    *p = static_cast<uint8_t>(round_even(MinMax::min(MinMax::max(v, 0.f), 255.f)));
  } else {
#if PYDENOISE_FILTER_AVX2
    const __m256i ints = _mm256_cvtps_epi32((__m256)v);
    const __m128i words = _mm_packs_epi32(_mm256_castsi256_si128(ints), _mm256_extracti128_si256(ints, 1));
#else
    const __m128i words = _mm_packs_epi32(_mm_cvtps_epi32(MinMax::low(v)), _mm_cvtps_epi32(MinMax::high(v)));
#endif
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(words, words));
  }
}

// A chunk of pixels: U values of type V (vectors, or scalars at the end of narrow rows).
template <int U, typename V>
struct Chunk {
  static constexpr int unroll = U;
  using type = V;
};

// Runs body(x, Chunk<U, V>) over [0, width): U vectors at a time, then single vectors (the last one
// overlapping), then scalars if the row is narrower than a vector.
template <int U, typename V, typename Body>
inline void for_each_chunk(int width, Body&& body) {
  constexpr int L = kLanes<V>;
  if (width < L) {
    for (int x = 0; x < width; ++x) body(x, Chunk<1, std::conditional_t<L == 32, uint8_t, float>>{});
    return;
  }
  int x = 0;
  for (; x + U * L <= width; x += U * L) body(x, Chunk<U, V>{});
  for (; x < width; x += L) body(x + L <= width ? x : width - L, Chunk<1, V>{});
}

#define PD_CHUNK_TYPES(chunk)                                 \
  [[maybe_unused]] constexpr int U = decltype(chunk)::unroll; \
  using V = typename decltype(chunk)::type

// Copies n floats (dst may be null: check only) and tells whether all are finite. x - x is 0 for finite x
// and NaN for NaN or Inf; the NaN survives the sums. Four accumulators: one would chain every add on the
// previous one's latency (3-4 cycles per vector, slower than the copy itself).
inline bool copy_finite(float* dst, const float* src, int64_t n) {
  f32x8 acc[4] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int u = 0; u < 4; ++u) {
      const f32x8 v = load_float<f32x8>(src + i + 8 * u);
      if (dst) store_float(dst + i + 8 * u, v);
      acc[u] += v - v;
    }
  }
  for (; i + 8 <= n; i += 8) {
    const f32x8 v = load_float<f32x8>(src + i);
    if (dst) store_float(dst + i, v);
    acc[0] += v - v;
  }
  const f32x8 sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  float total = 0.f;
  for (int l = 0; l < 8; ++l) total += sum[l];
  for (; i < n; ++i) {
    if (dst) dst[i] = src[i];
    total += src[i] - src[i];
  }
  return total == 0.f;
}

// dst[i] = src[i], uint8 to float or float to uint8 (rounded and saturated like every uint8 result).
template <typename Dst, typename Src>
void convert(Dst* dst, const Src* src, int64_t n) {
  for_each_chunk<4, f32x8>(int(n), [&](int x, auto chunk) {
    PD_CHUNK_TYPES(chunk);
    for (int u = 0; u < U; ++u) store_float(dst + x + u * kLanes<V>, load_float<V>(src + x + u * kLanes<V>));
  });
}

template <typename V, typename T>
inline V load_raw(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T, typename V>
inline void store_raw(T* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

inline void running_sum(uint16_t* sums, const uint8_t* add, const uint8_t* sub, int width) {
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    const u16x16 added = __builtin_convertvector(load_raw<u8x16>(add + x), u16x16);
    const u16x16 removed = __builtin_convertvector(load_raw<u8x16>(sub + x), u16x16);
    store_raw(sums + x, load_raw<u16x16>(sums + x) + added - removed);
  }
  for (; x < width; ++x) sums[x] = static_cast<uint16_t>(sums[x] + add[x] - sub[x]);
}

// out[i] = round(scale * sums[i]), saturated, for 16 pixels.
inline void store_scaled(uint8_t* out, u16x16 sums, float scale) {
#if PYDENOISE_FILTER_AVX2
  const __m256 factor = _mm256_set1_ps(scale);
  auto scaled = [&](__m128i words) {
    return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(words)), factor));
  };
  const __m256i low = scaled(_mm256_castsi256_si128((__m256i)sums));
  const __m256i high = scaled(_mm256_extracti128_si256((__m256i)sums, 1));
  // packus works within 128-bit lanes: the permute puts the words back in pixel order
  const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(low, high), 0xD8);
  const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
#else
  store_float(out, __builtin_convertvector(__builtin_shufflevector(sums, sums, 0, 1, 2, 3, 4, 5, 6, 7), f32x8) * scale);
  store_float(
      out + 8,
      __builtin_convertvector(__builtin_shufflevector(sums, sums, 8, 9, 10, 11, 12, 13, 14, 15), f32x8) * scale);
#endif
}

// The sum of padded[x + j], j < k, for 16 pixels (K > 0: k = K known at compile time, the loop unrolled).
template <int K>
inline u16x16 window_sum(const uint16_t* padded, int x, int k) {
  if constexpr (K > 0) k = K;
  u16x16 sum = load_raw<u16x16>(padded + x);
  for (int j = 1; j < k; ++j) sum += load_raw<u16x16>(padded + x + j);
  return sum;
}

// Two vectors per step, the row end by one more, overlapping, vector.
template <int K>
void box_horizontal_vectors(const uint16_t* padded, int k, float scale, int width, uint8_t* out) {
  int x = 0;
  for (; x + 32 <= width; x += 32) {
    const u16x16 first = window_sum<K>(padded, x, k), second = window_sum<K>(padded, x + 16, k);
    store_scaled(out + x, first, scale);
    store_scaled(out + x + 16, second, scale);
  }
  for (; x < width; x += 16) {
    const int at = x + 16 <= width ? x : width - 16;
    store_scaled(out + at, window_sum<K>(padded, at, k), scale);
  }
}

inline void box_horizontal(const uint16_t* padded, int k, float scale, int width, uint8_t* out) {
  if (width < 16) {
    for (int x = 0; x < width; ++x) {
      int sum = 0;
      for (int j = 0; j < k; ++j) sum += padded[x + j];
      store_float(out + x, float(sum) * scale);
    }
    return;
  }
  switch (k) {  // the common windows unrolled
    case 3:
      return box_horizontal_vectors<3>(padded, k, scale, width, out);
    case 5:
      return box_horizontal_vectors<5>(padded, k, scale, width, out);
    case 7:
      return box_horizontal_vectors<7>(padded, k, scale, width, out);
    default:
      return box_horizontal_vectors<0>(padded, k, scale, width, out);
  }
}

template <typename T>
void weighted_rows(const T* const* rows, const float* weights, int count, float bias, int width, float* out) {
  for_each_chunk<4, f32x8>(width, [&](int x, auto chunk) {
    PD_CHUNK_TYPES(chunk);
    V acc[U];
    for (int u = 0; u < U; ++u) acc[u] = splat<V>(bias);
    for (int i = 0; i < count; ++i) {
      const V w = splat<V>(weights[i]);
      for (int u = 0; u < U; ++u) acc[u] += w * load_float<V>(rows[i] + x + u * kLanes<V>);
    }
    for (int u = 0; u < U; ++u) store_float(out + x + u * kLanes<V>, acc[u]);
  });
}

template <typename T>
void horizontal(const float* padded, const float* kernel, int k, int width, T* out) {
  for_each_chunk<4, f32x8>(width, [&](int x, auto chunk) {
    PD_CHUNK_TYPES(chunk);
    V acc[U] = {};
    for (int j = 0; j < k; ++j) {
      const V w = splat<V>(kernel[j]);
      for (int u = 0; u < U; ++u) acc[u] += w * load_float<V>(padded + x + j + u * kLanes<V>);
    }
    for (int u = 0; u < U; ++u) store_float(out + x + u * kLanes<V>, acc[u]);
  });
}

template <typename T>
void correlate(const T* const* rows, const Tap* taps, int count, int width, T* out) {
  for_each_chunk<4, f32x8>(width, [&](int x, auto chunk) {
    PD_CHUNK_TYPES(chunk);
    V acc[U] = {};
    for (int t = 0; t < count; ++t) {
      const V w = splat<V>(taps[t].weight);
      const T* row = rows[taps[t].row] + x + taps[t].col;
      for (int u = 0; u < U; ++u) acc[u] += w * load_float<V>(row + u * kLanes<V>);
    }
    for (int u = 0; u < U; ++u) store_float(out + x + u * kLanes<V>, acc[u]);
  });
}

template <int K, typename T>
void median_network_row(const T* const* rows, int width, T* out) {
  using Vec = std::conditional_t<std::is_same_v<T, float>, f32x8, u8x32>;
  const T* row[K];  // a local copy: uint8 stores could alias `rows`, which would be re-read every chunk
  for (int i = 0; i < K; ++i) row[i] = rows[i];
  for_each_chunk<1, Vec>(width, [&](int x, auto chunk) {
    PD_CHUNK_TYPES(chunk);
    V v[K * K];
    auto load = [&](int i) { return load_raw<V>(row[i / K] + x + i % K); };
    store_raw(out + x, median_network::median<K * K>(v, MinMax{}, load));
  });
}

// 3 x 3 medians of two output rows, in registers. Each column of three is sorted (low, middle, high); a
// window's median is then med3(largest low, median of the middles, smallest high) over its three columns.
// The two rows share their middle source rows, so each column's middle pair is sorted once for both: 10
// min/max for the three values of six columns, 12 per output vector to combine them. The columns of the
// three window positions come from three overlapping loads rather than through memory: at 4096 pixels, rows
// of stored columns no longer fit in L1 and the stores and reloads cost more than the repeated sorts.
template <typename T>
void median3_pair(const T* const* rows, int width, T* out0, T* out1) {
  using Vec = std::conditional_t<std::is_same_v<T, float>, f32x8, u8x32>;
  const MinMax m;
  // Local copies: uint8 stores may alias anything, so pointers read through `rows` would be reloaded after
  // every store.
  const T *top = rows[0], *upper = rows[1], *lower = rows[2], *bottom = rows[3];
  auto med3 = [&](auto p, auto q, auto r) { return m.max(m.min(p, q), m.min(m.max(p, q), r)); };
  for_each_chunk<1, Vec>(width, [&](int x, auto chunk) {
    PD_CHUNK_TYPES(chunk);
    V low0[3], mid0[3], high0[3], low1[3], mid1[3], high1[3];
    for (int j = 0; j < 3; ++j) {
      const V b = load_raw<V>(upper + x + j), c = load_raw<V>(lower + x + j);
      const V low = m.min(b, c), high = m.max(b, c);
      const V a = load_raw<V>(top + x + j), d = load_raw<V>(bottom + x + j);
      low0[j] = m.min(a, low);
      mid0[j] = m.max(low, m.min(a, high));
      high0[j] = m.max(a, high);
      low1[j] = m.min(d, low);
      mid1[j] = m.max(low, m.min(d, high));
      high1[j] = m.max(d, high);
    }
    store_raw(out0 + x, med3(m.max(m.max(low0[0], low0[1]), low0[2]), med3(mid0[0], mid0[1], mid0[2]),
                             m.min(m.min(high0[0], high0[1]), high0[2])));
    store_raw(out1 + x, med3(m.max(m.max(low1[0], low1[1]), low1[2]), med3(mid1[0], mid1[1], mid1[2]),
                             m.min(m.min(high1[0], high1[1]), high1[2])));
  });
}

template <typename T>
void median(const T* const* rows, int k, int width, T* out) {
  return k == 5 ? median_network_row<5>(rows, width, out) : median_network_row<7>(rows, width, out);
}

// 2^t for t <= 0: 2^n 2^f with n = round(t), |f| <= 1/2; 2^f by a degree-5 minimax polynomial (relative
// error 2.3e-7 in float32 arithmetic), 2^n added to the exponent bits. Adding 1.5 * 2^23 leaves n in the low
// mantissa bits, so one add both rounds t and gives n's bits, and shifting them by 23 drops the rest. t
// below -100 gives 2^-100 (~8e-31), not 0: the weights stay far from denormals, which would cost ~100
// cycles an operation.
inline float exp2_nonpositive(float t) { return std::exp2(std::fmax(t, -100.f)); }
template <typename V>
inline V exp2_nonpositive(V t) {
  using I = typename IntVector<V>::type;
  t = MinMax::max(t, splat<V>(-100.f));
  const V magic = splat<V>(12582912.f);
  const V shifted = t + magic;
  const V f = t - (shifted - magic);
  V p = 9.675537692e-3f + f * 1.327644438e-3f;
  p = 5.550713315e-2f + f * p;
  p = 2.402211979e-1f + f * p;
  p = 6.931469671e-1f + f * p;
  p = 1.f + f * p;
  return (V)((I)p + ((I)shifted << 23));
}

inline float abs_value(float v) { return std::fabs(v); }
template <typename V>
inline V abs_value(V v) {
  return (V)((typename IntVector<V>::type)v & 0x7fffffff);
}

// The bilateral filter's vectors: all its work is float arithmetic, so it takes the widest the target has.
#if PYDENOISE_FILTER_AVX512
using BilateralVector = f32x16;
#else
using BilateralVector = f32x8;
#endif

template <int C>
void bilateral_channels(const BilateralRowArgs& a) {
  // Two vectors of pixels at a time: the per-offset scalar work (row pointer, weights) is shared and the two
  // exp chains overlap.
  for_each_chunk<2, BilateralVector>(a.width, [&](int x, auto chunk) {
    PD_CHUNK_TYPES(chunk);
    constexpr int L = kLanes<V>;
    const int r = a.radius;
    V center[U][C], sum[U][C], weight_sum[U];
    for (int u = 0; u < U; ++u) {
      weight_sum[u] = splat<V>(1.f);  // the centre: both weights are 1
      for (int c = 0; c < C; ++c) sum[u][c] = center[u][c] = load_float<V>(a.rows[c][r] + x + r + u * L);
    }
    for (int o = 0; o < a.offsets; ++o) {
      const float* neighbour[C];
      for (int c = 0; c < C; ++c) neighbour[c] = a.rows[c][r + a.dy[o]] + x + r + a.dx[o];
      for (int u = 0; u < U; ++u) {
        V value[C], distance;
        for (int c = 0; c < C; ++c) value[c] = load_float<V>(neighbour[c] + u * L);
        if constexpr (C == 1) {
          distance = value[0] - center[u][0];  // squared below: no need for its absolute value
        } else {
          distance = abs_value(value[0] - center[u][0]);
          for (int c = 1; c < C; ++c) distance += abs_value(value[c] - center[u][c]);
        }
        // space weight x colour weight as one power of two
        const V w = exp2_nonpositive(distance * distance * a.color_exponent + a.space_exponent[o]);
        weight_sum[u] += w;
        for (int c = 0; c < C; ++c) sum[u][c] += w * value[c];
      }
    }
    for (int u = 0; u < U; ++u)
      for (int c = 0; c < C; ++c) store_float(a.out[c] + x + u * L, sum[u][c] / weight_sum[u]);
  });
}

inline void bilateral(const BilateralRowArgs& a) {
  switch (a.channels) {
    case 1:
      return bilateral_channels<1>(a);
    case 2:
      return bilateral_channels<2>(a);
    case 3:
      return bilateral_channels<3>(a);
    default:
      return bilateral_channels<4>(a);
  }
}

template <typename T>
FilterRows<T> rows_of() {
  return FilterRows<T>{&weighted_rows<T>, &horizontal<T>, &correlate<T>, &median<T>, &median3_pair<T>};
}

inline RowTable table() {
  return RowTable{
      rows_of<float>(),         rows_of<uint8_t>(),      &bilateral, &copy_finite, &running_sum, &box_horizontal,
      &convert<float, uint8_t>, &convert<uint8_t, float>};
}

}  // namespace pydenoise::filter_rows::PYDENOISE_FILTER_ISA

#pragma GCC diagnostic pop
