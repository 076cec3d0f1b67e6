// The CPU filter row kernels (filters_cpu_rows.h) compiled for AVX-512 F/BW/DQ/VL: the 8-lane kernels with
// 32 vector registers and EVEX encodings, and a 16-lane bilateral filter. Only reached through
// filter_rows::avx512_table(), which filters_cpu.cpp calls when the CPU runs CpuPath::kAvx512.
// The standard headers come first, outside the target pragma, so no inline library code is built for AVX-512.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")
#define PYDENOISE_FILTER_ISA avx512
#define PYDENOISE_FILTER_AVX2 1
#define PYDENOISE_FILTER_AVX512 1
#include "kernels/filters_cpu_rows.h"
#undef PYDENOISE_FILTER_ISA
#undef PYDENOISE_FILTER_AVX2
#undef PYDENOISE_FILTER_AVX512

namespace pydenoise::filter_rows {
RowTable avx512_table() { return avx512::table(); }
}  // namespace pydenoise::filter_rows
#pragma GCC pop_options
