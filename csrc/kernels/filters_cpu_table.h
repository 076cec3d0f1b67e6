// The row kernels of the CPU filters as a table of function pointers, one table per instruction set
// (filters_cpu_rows.h is compiled into each); filters_cpu.cpp picks the table once by CPU features.
#pragma once

#include <cstdint>

namespace pydenoise::filter_rows {

// One non-zero coefficient of a 2-D kernel (zero taps are dropped: the sharpening kernel has 4 of 9).
struct Tap {
  int row, col;
  float weight;
};

template <typename T>
struct FilterRows {
  // out[x] = bias + sum_i weights[i] * rows[i][x], in float32 (the vertical pass of a separable filter).
  void (*weighted_rows)(const T* const* rows, const float* weights, int count, float bias, int width, float* out);
  // out[x] = sum_j kernel[j] * padded[x + j] (the horizontal pass; `padded` holds k - 1 extra pixels).
  void (*horizontal)(const float* padded, const float* kernel, int k, int width, T* out);
  // out[x] = sum_t taps[t].weight * rows[taps[t].row][x + taps[t].col] (rows padded by kw - 1 pixels).
  void (*correlate)(const T* const* rows, const Tap* taps, int count, int width, T* out);
  // out[x] = median of rows[i][x + j], i, j < k, for k in {5, 7} (rows padded by k - 1 pixels).
  void (*median_network)(const T* const* rows, int k, int width, T* out);
  // The 3 x 3 medians of two output rows: out0[x] from rows[0..3), out1[x] from rows[1..4), reading
  // rows[i][x + j], j < 3 (rows padded by 2 pixels).
  void (*median3_pair)(const T* const* rows, int width, T* out0, T* out1);
};

struct BilateralRowArgs {
  const float* const* rows[4];  // rows[c][i]: padded row y - radius + i of channel c (radius pixels each side)
  float* out[4];                // output row of each channel (float32: uint8 images are rounded by the caller)
  int channels = 0, radius = 0, width = 0;
  const int* dy = nullptr;  // the disc offsets but the centre, and their space weights as powers of two
  const int* dx = nullptr;
  const float* space_exponent = nullptr;
  int offsets = 0;
  float color_exponent = 0.f;  // the colour weight is 2^(color_exponent distance^2): -log2(e) / (2 sigma_color^2)
};

struct RowTable {
  FilterRows<float> f32;
  FilterRows<uint8_t> u8;
  void (*bilateral)(const BilateralRowArgs& args);
  // Copies n floats to dst (unless dst is null) and returns whether they are all finite.
  bool (*copy_finite)(float* dst, const float* src, int64_t n);
  // sums[x] += add[x] - sub[x], modulo 2^16 (the running column sums of the uint8 box filter).
  void (*running_sum)(uint16_t* sums, const uint8_t* add, const uint8_t* sub, int width);
  // out[x] = round(scale * sum_j padded[x + j], j < k) (the horizontal pass of the uint8 box filter; the window
  // sums must stay below 2^16).
  void (*box_horizontal)(const uint16_t* padded, int k, float scale, int width, uint8_t* out);
  // dst[i] = src[i] as float (uint8 rows are widened once, not once per filter tap).
  void (*widen)(float* dst, const uint8_t* src, int64_t n);
  // dst[i] = src[i] rounded to nearest (ties to even) and saturated to [0, 255].
  void (*narrow)(uint8_t* dst, const float* src, int64_t n);
};

RowTable baseline_table();
RowTable avx2_table();    // call only when the CPU runs CpuPath::kAvx2
RowTable avx512_table();  // call only when the CPU runs CpuPath::kAvx512

}  // namespace pydenoise::filter_rows
