// nvcuda::wmma for the HIP CPU build of the CUDA kernels (cuda_compat.h includes it under PYDENOISE_HIP_CPU).
// Each thread holds the whole tile (x[] is the fragment's matrix in row-major order, whatever its layout), so a
// kernel that only uses the documented fragment API (load/store/fill/mma and element-wise work on x[]) gets
// the same results as with the GPU's distributed layout. The arithmetic follows the tensor cores:
//   tf32: the operands' low 13 mantissa bits are ignored (the unit reads 19 bits); __float_to_tf32 rounds to
//         nearest, ties away from zero (cvt.rna.tf32.f32). bf16 operands are exact in float32.
//   Products of tf32/bf16 operands are exact in float32; they are accumulated in float32.
// The documented preconditions (256-bit aligned pointer, ldm a multiple of 16 bytes) abort when broken, as a
// GPU would fault or return garbage.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision {
struct tf32 {};
}  // namespace precision

namespace detail {
template <typename T>
struct storage {
  using type = T;
};
template <>
struct storage<precision::tf32> {
  using type = float;
};

// (rows, cols) of the fragment's matrix: A is m x k, B is k x n, the accumulator m x n.
template <typename Use, int M, int N, int K>
struct shape;
template <int M, int N, int K>
struct shape<matrix_a, M, N, K> {
  static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct shape<matrix_b, M, N, K> {
  static constexpr int rows = K, cols = N;
};
template <int M, int N, int K>
struct shape<accumulator, M, N, K> {
  static constexpr int rows = M, cols = N;
};

inline void require(bool ok, const char* what, const void* ptr, unsigned ldm) {
  if (ok) return;
  std::fprintf(stderr, "wmma emulation: %s (pointer %p, ldm %u)\n", what, ptr, ldm);
  std::abort();
}

template <typename T>
void check_operands(const void* ptr, unsigned ldm) {
  require(reinterpret_cast<uintptr_t>(ptr) % 32 == 0, "pointer not 256-bit aligned", ptr, ldm);
  require(ldm * sizeof(T) % 16 == 0, "ldm not a multiple of 16 bytes", ptr, ldm);
}

inline float to_float(float v) { return v; }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

// What the tensor core reads of a tf32 operand: the top 19 bits (sign, exponent, 10 mantissa bits).
inline float tf32_operand(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u &= 0xffffe000u;
  std::memcpy(&v, &u, 4);
  return v;
}
}  // namespace detail

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
  using element_type = typename detail::storage<T>::type;
  static constexpr int rows = detail::shape<Use, M, N, K>::rows;
  static constexpr int cols = detail::shape<Use, M, N, K>::cols;
  static constexpr int num_elements = rows * cols;
  element_type x[num_elements];
};

// Round to nearest, ties away from zero, to 10 mantissa bits; Inf and NaN pass unchanged.
inline float __float_to_tf32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
  std::memcpy(&v, &u, 4);
  return v;
}

template <typename Use, int M, int N, int K, typename T, typename Layout, typename P>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, P value) {
  for (auto& e : f.x) e = value;
}

// Element (r, c) of a row-major fragment is ptr[r * ldm + c]; of a column-major one ptr[c * ldm + r].
template <typename Use, int M, int N, int K, typename T, typename Layout, typename P>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const P* ptr, unsigned ldm) {
  using F = fragment<Use, M, N, K, T, Layout>;
  detail::check_operands<P>(ptr, ldm);
  constexpr bool column_major = std::is_same_v<Layout, col_major>;
  for (int r = 0; r < F::rows; ++r)
    for (int c = 0; c < F::cols; ++c) f.x[r * F::cols + c] = ptr[column_major ? c * ldm + r : r * ldm + c];
}

template <int M, int N, int K, typename P>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const P* ptr, unsigned ldm, layout_t layout) {
  detail::check_operands<P>(ptr, ldm);
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) f.x[r * N + c] = ptr[layout == mem_col_major ? c * ldm + r : r * ldm + c];
}

template <int M, int N, int K>
void store_matrix_sync(float* ptr, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
  detail::check_operands<float>(ptr, ldm);
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) ptr[layout == mem_col_major ? c * ldm + r : r * ldm + c] = f.x[r * N + c];
}

// d = a b + c (d may be c).
template <int M, int N, int K, typename T, typename LayoutA, typename LayoutB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LayoutA>& a,
              const fragment<matrix_b, M, N, K, T, LayoutB>& b, const fragment<accumulator, M, N, K, float>& c) {
  constexpr bool tf32 = std::is_same_v<T, precision::tf32>;
  // B converted once per call; thread_local, not on the stack: HIP-CPU's fibers have 7 KiB stacks, and no
  // fiber switch happens inside this function.
  thread_local float bv[K * N];
  for (int i = 0; i < K * N; ++i) {
    bv[i] = tf32 ? detail::tf32_operand(detail::to_float(b.x[i])) : detail::to_float(b.x[i]);
  }
  if (&d != &c) std::memcpy(d.x, c.x, sizeof(d.x));
  for (int i = 0; i < M; ++i) {
    for (int k = 0; k < K; ++k) {
      const float aik =
          tf32 ? detail::tf32_operand(detail::to_float(a.x[i * K + k])) : detail::to_float(a.x[i * K + k]);
      for (int j = 0; j < N; ++j) d.x[i * N + j] += aik * bv[k * N + j];
    }
  }
}

}  // namespace nvcuda::wmma
