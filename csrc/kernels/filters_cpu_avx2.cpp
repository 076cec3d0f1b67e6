// The CPU filter row kernels (filters_cpu_rows.h) compiled for AVX2/FMA: 8 float or 32 uint8 lanes per
// vector. Only reached through filter_rows::avx2_table(), which filters_cpu.cpp calls after cpu_has_avx2().
// The standard headers come first, outside the target pragma, so no inline library code is built for AVX2.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define PYDENOISE_FILTER_ISA avx2
#define PYDENOISE_FILTER_AVX2 1
#define PYDENOISE_FILTER_AVX512 0
#include "kernels/filters_cpu_rows.h"
#undef PYDENOISE_FILTER_ISA
#undef PYDENOISE_FILTER_AVX2
#undef PYDENOISE_FILTER_AVX512

namespace pydenoise::filter_rows {
RowTable avx2_table() { return avx2::table(); }
}  // namespace pydenoise::filter_rows
#pragma GCC pop_options
