// CPU filters: borders, row caching and threading around the vectorised row kernels (filters_cpu_rows.h).
//
// Work is split into blocks of kBlockRows output rows of one plane, spread over OpenMP threads. Within a
// block, the rows a window needs come from a small cache of border-padded copies of source rows, so each
// source row is padded once per block and stays in L1/L2 while the window slides over it. Separable filters
// need no padded copies for their vertical pass: it reads the source rows in place and writes one padded
// float row, which the horizontal pass consumes.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#define PYDENOISE_FILTER_ISA baseline
#define PYDENOISE_FILTER_AVX2 0
#define PYDENOISE_FILTER_AVX512 0
#include "kernels/filters_cpu_rows.h"
#undef PYDENOISE_FILTER_ISA
#undef PYDENOISE_FILTER_AVX2
#undef PYDENOISE_FILTER_AVX512

#include "kernels/cpu_dispatch.h"

namespace pydenoise {

namespace filter_rows {
RowTable baseline_table() { return baseline::table(); }
}  // namespace filter_rows

int bilateral_disc(int radius, float sigma_space, int* dy, int* dx, float* exponent) {
  const double coeff = -0.5 * M_LOG2E / (double(sigma_space) * sigma_space);
  int count = 0;
  for (int i = -radius; i <= radius; ++i) {
    for (int j = -radius; j <= radius; ++j) {
      if (i * i + j * j > radius * radius || (i == 0 && j == 0)) continue;
      dy[count] = i;
      dx[count] = j;
      exponent[count] = static_cast<float>((i * i + j * j) * coeff);
      ++count;
    }
  }
  return count;
}

namespace {

using filter_rows::BilateralRowArgs;
using filter_rows::FilterRows;
using filter_rows::RowTable;

// 32 rows of a 4096-wide float image are 512 KiB: a block's rows stay in L2 while it is filtered.
constexpr int kBlockRows = 32;

// The row kernels of the path the kernels use now (AVX512_BF16 machines take the AVX-512 ones: the filters
// have no bf16 arithmetic).
const RowTable& rows_table() {
  static const RowTable baseline = filter_rows::baseline_table();
  static const RowTable avx2 = cpu_best_path() >= CpuPath::kAvx2 ? filter_rows::avx2_table() : baseline;
  static const RowTable avx512 = cpu_best_path() >= CpuPath::kAvx512 ? filter_rows::avx512_table() : avx2;
  return cpu_uses(CpuPath::kAvx512) ? avx512 : cpu_uses(CpuPath::kAvx2) ? avx2 : baseline;
}

template <typename T>
const FilterRows<T>& rows_for(const RowTable& table) {
  if constexpr (std::is_same_v<T, float>) {
    return table.f32;
  } else {
    return table.u8;
  }
}

// A per-thread scratch vector, reused across calls (no allocation or page faults per block).
template <typename T, int Tag>
std::vector<T>& scratch(size_t size) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
}

// Below this many pixels per thread, starting and joining threads costs more than it saves (much more on a
// loaded machine, where a thread may wait a whole time slice to run).
constexpr int64_t kMinPixelsPerThread = int64_t{1} << 17;

// Runs fn(plane, y0, y1) -> bool over all row blocks of all planes, threaded; true when every call was.
// row_cost: the work of one row in pixel-sized units (the width, or more for heavier filters).
template <typename Fn>
bool for_row_blocks(int64_t planes, int height, int64_t row_cost, int num_threads, Fn fn) {
  const int64_t useful = std::max<int64_t>(1, planes * height * row_cost / kMinPixelsPerThread);
  const int threads =
      static_cast<int>(std::min<int64_t>(num_threads > 0 ? num_threads : omp_get_max_threads(), useful));
  const int64_t blocks_per_plane = (height + kBlockRows - 1) / kBlockRows;
  const int64_t blocks = planes * blocks_per_plane;
  bool ok = true;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(&& : ok) if (blocks > 1 && threads > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t plane = b / blocks_per_plane;
    const int y0 = static_cast<int>(b % blocks_per_plane) * kBlockRows;
    ok = fn(plane, y0, std::min(y0 + kBlockRows, height)) && ok;
  }
  return ok;
}

// Fills the `pad` pixels on each side of row[pad .. pad + width) by the border rule (`outside` for constant).
template <typename T>
void pad_row(T* row, int width, int pad, Border border, T outside) {
  for (int j = 1; j <= pad; ++j) {
    const int left = border_index(-j, width, border);
    const int right = border_index(width - 1 + j, width, border);
    row[pad - j] = left < 0 ? outside : row[pad + left];
    row[pad + width - 1 + j] = right < 0 ? outside : row[pad + right];
  }
}

// Border-padded copies of the source rows of one plane, a few at a time (least recently used replaced).
// Rows are stored as T; uint8 sources of a float cache are widened once per row, not once per tap.
template <typename T, typename Source = T>
class RowCache {
 public:
  RowCache(const Source* plane, int height, int width, int pad, Border border, T cval, int slots, T* storage)
      : plane_(plane),
        height_(height),
        width_(width),
        pad_(pad),
        border_(border),
        cval_(cval),
        slots_(slots),
        storage_(storage) {
    for (int s = 0; s < slots; ++s) tag_[s] = kEmpty;
  }

  static constexpr int kMaxSlots = 256;  // windows up to 255 rows (checked by the callers)
  static size_t storage_size(int width, int pad, int slots) { return size_t(slots) * stride(width, pad); }

  // Row y (any integer: outside rows follow the border) with `pad` pixels each side, from its first pixel.
  const T* row(int y) {
    const int source = border_index(y, height_, border_);  // -1: a constant row
    ++clock_;
    int victim = 0;
    for (int s = 0; s < slots_; ++s) {
      if (tag_[s] == source) {
        last_use_[s] = clock_;
        return slot(s);
      }
      if (last_use_[s] < last_use_[victim]) victim = s;
    }
    tag_[victim] = source;
    last_use_[victim] = clock_;
    T* dst = slot(victim);
    if (source < 0) {
      std::fill(dst, dst + width_ + 2 * pad_, cval_);
    } else {
      const Source* src = plane_ + int64_t(source) * width_;
      if constexpr (!std::is_same_v<T, Source>) {
        rows_table().widen(dst + pad_, src, width_);
      } else if constexpr (std::is_same_v<T, float>) {
        finite_ = rows_table().copy_finite(dst + pad_, src, width_) && finite_;
      } else {
        std::memcpy(dst + pad_, src, sizeof(T) * width_);
      }
      pad_row(dst, width_, pad_, border_, cval_);
    }
    return dst;
  }

  bool finite() const { return finite_; }

 private:
  static constexpr int kEmpty = -2;
  // One cache line more than a padded row: with power-of-two widths, rows a multiple of 4 KiB apart would
  // all fall in the same L1 sets, and a 13-row window would evict itself on every column.
  static size_t stride(int width, int pad) { return size_t(width) + 2 * pad + 64 / sizeof(T); }
  T* slot(int s) { return storage_ + size_t(s) * stride(width_, pad_); }

  const Source* plane_;
  int height_, width_, pad_;
  Border border_;
  T cval_;
  int slots_;
  T* storage_;
  int tag_[kMaxSlots];
  int64_t last_use_[kMaxSlots] = {};
  int64_t clock_ = 0;
  bool finite_ = true;
};

template <typename T>
T outside_value(float cval) {
  if constexpr (std::is_same_v<T, float>) {
    return cval;
  } else {
    return static_cast<T>(std::clamp(std::nearbyint(cval), 0.f, 255.f));
  }
}

// A window of 2 r + 1 padded rows around output row y, from the cache.
template <typename T, typename Source>
void window_rows(RowCache<T, Source>& cache, int y, int r, const T** rows) {
  for (int i = 0; i <= 2 * r; ++i) rows[i] = cache.row(y - r + i);
}

// Median by selection, one pixel at a time: for windows too large for the sorting networks.
template <typename T>
void median_select_row(const T* const* rows, int k, int width, T* out, T* window) {
  const int n = k * k;
  for (int x = 0; x < width; ++x) {
    for (int i = 0; i < k; ++i) std::copy(rows[i] + x, rows[i] + x + k, window + i * k);
    std::nth_element(window, window + n / 2, window + n);
    out[x] = window[n / 2];
  }
}

// Both kernels constant (a box filter, up to a scale) and window sums of uint8 pixels below 2^16.
bool is_uint8_box(const float* kernel_y, int ky, const float* kernel_x, int kx) {
  if (int64_t(ky) * kx * 255 >= (1 << 16)) return false;
  return std::all_of(kernel_y, kernel_y + ky, [&](float w) { return w == kernel_y[0]; }) &&
         std::all_of(kernel_x, kernel_x + kx, [&](float w) { return w == kernel_x[0]; });
}

// The uint8 box filter in integers: each block keeps the column sums of its window (uint16), updated by one
// added and one removed row per output row, so the cost does not grow with ky; then a horizontal window sum
// and one multiply per pixel. The sums are exact, so the result is round(scale * window sum).
bool box_filter_u8(const uint8_t* in, uint8_t* out, PlaneStack s, int ky, int kx, float scale, Border border,
                   float cval, int num_threads) {
  const RowTable& table = rows_table();
  const int ry = ky / 2, rx = kx / 2, H = s.height, W = s.width;
  const uint8_t outside = outside_value<uint8_t>(cval);
  return for_row_blocks(s.planes, H, W, num_threads, [&](int64_t p, int y0, int y1) {
    const uint8_t* plane = in + p * H * W;
    uint8_t* zeros = scratch<uint8_t, 7>(2 * size_t(W)).data();
    uint8_t* constant = zeros + W;
    std::fill(zeros, zeros + W, 0);
    std::fill(constant, constant + W, outside);
    auto row = [&](int y) {
      const int source = border_index(y, H, border);
      return source < 0 ? constant : plane + int64_t(source) * W;
    };
    uint16_t* padded = scratch<uint16_t, 8>(W + 2 * rx).data();
    uint16_t* sums = padded + rx;
    std::fill(sums, sums + W, 0);
    for (int i = y0 - ry; i < y0 + ry; ++i) table.running_sum(sums, row(i), zeros, W);
    for (int y = y0; y < y1; ++y) {
      table.running_sum(sums, row(y + ry), y == y0 ? zeros : row(y - ry - 1), W);
      pad_row(padded, W, rx, border, static_cast<uint16_t>(outside * ky));
      table.box_horizontal(padded, kx, scale, W, out + (p * H + y) * W);
    }
    return true;
  });
}

// Rows y, y + 1, ... (count of them) of a plane, read in place: outside rows are the rows the border rule
// names, or `constant` (a row of the outside value).
template <typename T>
void source_rows(const T* plane, int height, int width, int y, int count, Border border, const T* constant,
                 const T** rows) {
  for (int i = 0; i < count; ++i) {
    const int source = border_index(y + i, height, border);
    rows[i] = source < 0 ? constant : plane + int64_t(source) * width;
  }
}

// Runs a row kernel over one output row (or a group of rows) without padded copies of whole source rows.
// The kernel, strip(rows, x0, n), computes outputs [x0, x0 + n) reading rows[i][j] as pixel x0 - r + j of
// window row i. The interior reads the source rows in place; the r outputs at each end, whose windows reach
// outside the image, get short border-padded copies (in `scratch`: count * 4 r pixels).
template <typename T, typename Strip>
void for_row_strips(const T* const* sources, int count, int width, int r, Border border, T outside, T* scratch,
                    Strip strip) {
  const T* rows[RowCache<T>::kMaxSlots];
  auto padded_strip = [&](int x0, int x1) {
    const int n = x1 - x0 + 2 * r;
    for (int i = 0; i < count; ++i) {
      T* copy = scratch + size_t(i) * n;
      for (int j = 0; j < n; ++j) {
        const int source = border_index(x0 - r + j, width, border);
        copy[j] = source < 0 ? outside : sources[i][source];
      }
      rows[i] = copy;
    }
    strip(rows, x0, x1 - x0);
  };
  if (width <= 2 * r) return padded_strip(0, width);
  if (r > 0) padded_strip(0, r);
  for (int i = 0; i < count; ++i) rows[i] = sources[i];
  strip(rows, r, width - 2 * r);
  if (r > 0) padded_strip(width - r, width);
}

// The 3 x 3 median, two output rows at a time (they share two of their four source rows).
template <typename T>
bool median3_filter(const T* in, T* out, PlaneStack s, Border border, float cval, int num_threads) {
  const RowTable& table = rows_table();
  const FilterRows<T>& rows = rows_for<T>(table);
  const int H = s.height, W = s.width;
  const T outside = outside_value<T>(cval);
  return for_row_blocks(s.planes, H, W, num_threads, [&](int64_t p, int y0, int y1) {
    const T* plane = in + p * H * W;
    T* constant = scratch<T, 10>(2 * size_t(W)).data();
    T* discarded = constant + W;  // the second row of a pair past the block's end
    std::fill(constant, constant + W, outside);
    T* strips = scratch<T, 4>(4 * 4).data();
    bool finite = true;
    for (int y = y0; y < y1; y += 2) {
      const T* sources[4];
      source_rows(plane, H, W, y - 1, 4, border, constant, sources);
      T* out0 = out + (p * H + y) * W;
      T* out1 = y + 1 < y1 ? out0 + W : discarded;
      if constexpr (std::is_same_v<T, float>) {
        for (int r = 0; r < 2 && y + r < y1; ++r) finite = table.copy_finite(nullptr, sources[r + 1], W) && finite;
      }
      for_row_strips(sources, 4, W, 1, border, outside, strips, [&](const T* const* window, int x0, int n) {
        rows.median3_pair(window, n, out0 + x0, out1 + x0);
      });
    }
    return finite;
  });
}

}  // namespace

template <typename T>
bool separable_filter_cpu(const T* in, T* out, PlaneStack s, const float* kernel_y, int ky, const float* kernel_x,
                          int kx, Border border, float cval, int num_threads) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    if (is_uint8_box(kernel_y, ky, kernel_x, kx))
      return box_filter_u8(in, out, s, ky, kx, kernel_y[0] * kernel_x[0], border, cval, num_threads);
  }
  const RowTable& table = rows_table();
  const FilterRows<T>& rows = rows_for<T>(table);
  const int ry = ky / 2, rx = kx / 2, H = s.height, W = s.width;
  float sum_y = 0.f;
  for (int i = 0; i < ky; ++i) sum_y += kernel_y[i];
  const float outside = static_cast<float>(outside_value<T>(cval));
  // uint8 source rows are widened to float once per block (each feeds up to ky output rows) and the vertical
  // pass runs on those; float rows are read in place.
  const bool widen = std::is_same_v<T, uint8_t> && ky < RowCache<float>::kMaxSlots;
  const int slots = widen ? ky + 1 : 0;
  return for_row_blocks(s.planes, H, W, num_threads, [&](int64_t p, int y0, int y1) {
    const T* plane = in + p * H * W;
    RowCache<float, T> cache(plane, H, W, 0, border, 0.f, slots,
                             scratch<float, 5>(RowCache<float>::storage_size(W, 0, slots)).data());
    float* padded = scratch<float, 0>(W + 2 * rx).data();
    const T** sources = scratch<const T*, 1>(ky).data();
    const float** widened = scratch<const float*, 6>(ky).data();
    float* weights = scratch<float, 2>(ky).data();
    bool finite = true;
    for (int y = y0; y < y1; ++y) {
      int count = 0;
      float bias = 0.f;  // rows of a constant border contribute weight * value
      for (int i = 0; i < ky; ++i) {
        const int source = border_index(y - ry + i, H, border);
        if (source < 0) {
          bias += kernel_y[i] * outside;
          continue;
        }
        if (widen) {
          widened[count] = cache.row(y - ry + i);
        } else {
          sources[count] = plane + int64_t(source) * W;
        }
        weights[count++] = kernel_y[i];
      }
      if constexpr (std::is_same_v<T, float>) finite = table.copy_finite(nullptr, plane + int64_t(y) * W, W) && finite;
      if (widen) {
        table.f32.weighted_rows(widened, weights, count, bias, W, padded + rx);
      } else {
        rows.weighted_rows(sources, weights, count, bias, W, padded + rx);
      }
      // Outside columns of the vertical result: the border rule on it, or the constant after the vertical pass.
      pad_row(padded, W, rx, border, outside * sum_y);
      rows.horizontal(padded, kernel_x, kx, W, out + (p * H + y) * W);
    }
    return finite;
  });
}

template <typename T>
bool correlate2d_cpu(const T* in, T* out, PlaneStack s, const float* kernel, int kh, int kw, Border border, float cval,
                     int num_threads) {
  const FilterRows<T>& rows = rows_for<T>(rows_table());
  const int ry = kh / 2, rx = kw / 2, H = s.height, W = s.width;
  const int slots = kh + 1;
  std::vector<filter_rows::Tap> taps;
  for (int i = 0; i < kh; ++i)
    for (int j = 0; j < kw; ++j)
      if (kernel[i * kw + j] != 0.f) taps.push_back({i, j, kernel[i * kw + j]});
  return for_row_blocks(s.planes, H, W, num_threads, [&](int64_t p, int y0, int y1) {
    RowCache<T> cache(in + p * H * W, H, W, rx, border, outside_value<T>(cval), slots,
                      scratch<T, 3>(RowCache<T>::storage_size(W, rx, slots)).data());
    const T** window = scratch<const T*, 1>(kh).data();
    for (int y = y0; y < y1; ++y) {
      window_rows(cache, y, ry, window);
      rows.correlate(window, taps.data(), int(taps.size()), W, out + (p * H + y) * W);
    }
    return cache.finite();
  });
}

// A 1 x 1 median is the pixel itself; the row kernels start at 3 x 3 (given ksize 1, the network read seven row
// pointers from a buffer of one: found by cpp_tests/sanitize_kernels.cpp under ASan).
template <typename T>
bool copy_pixels(const T* in, T* out, int64_t count) {
  bool finite = true;
  for (int64_t i = 0; i < count; ++i) {
    out[i] = in[i];
    if constexpr (std::is_same_v<T, float>) finite = finite && std::isfinite(in[i]);
  }
  return finite;
}

template <typename T>
bool median_filter_cpu(const T* in, T* out, PlaneStack s, int ksize, Border border, float cval, int num_threads) {
  if (ksize == 1) return copy_pixels(in, out, s.planes * s.height * s.width);
  if (ksize == 3) return median3_filter(in, out, s, border, cval, num_threads);
  const FilterRows<T>& rows = rows_for<T>(rows_table());
  const int r = ksize / 2, H = s.height, W = s.width;
  const int slots = ksize + 1;
  return for_row_blocks(s.planes, H, W, num_threads, [&](int64_t p, int y0, int y1) {
    RowCache<T> cache(in + p * H * W, H, W, r, border, outside_value<T>(cval), slots,
                      scratch<T, 3>(RowCache<T>::storage_size(W, r, slots)).data());
    const T** window = scratch<const T*, 1>(ksize).data();
    for (int y = y0; y < y1; ++y) {
      window_rows(cache, y, r, window);
      T* row_out = out + (p * H + y) * W;
      if (ksize <= 7) {
        rows.median_network(window, ksize, W, row_out);
      } else {
        median_select_row(window, ksize, W, row_out, scratch<T, 4>(size_t(ksize) * ksize).data());
      }
    }
    return cache.finite();
  });
}

template <typename T>
bool bilateral_filter_cpu(const T* in, T* out, int64_t images, int channels, int height, int width, int radius,
                          float sigma_color, float sigma_space, Border border, float cval, int num_threads) {
  const RowTable& table = rows_table();
  const int taps = (2 * radius + 1) * (2 * radius + 1);
  std::vector<int> dy(taps), dx(taps);
  std::vector<float> space_exponent(taps);
  BilateralRowArgs args;
  args.offsets = bilateral_disc(radius, sigma_space, dy.data(), dx.data(), space_exponent.data());
  args.dy = dy.data();
  args.dx = dx.data();
  args.space_exponent = space_exponent.data();
  args.channels = channels;
  args.radius = radius;
  args.width = width;
  args.color_exponent = static_cast<float>(-0.5 * M_LOG2E / (double(sigma_color) * sigma_color));
  const int window = 2 * radius + 1, slots = window + 1;
  const size_t cache_size = RowCache<float>::storage_size(width, radius, slots);
  const int64_t plane_size = int64_t(height) * width;
  const float outside = static_cast<float>(outside_value<T>(cval));
  return for_row_blocks(
      images, height, int64_t(width) * channels * (args.offsets + 1), num_threads, [&](int64_t n, int y0, int y1) {
        float* storage = scratch<float, 3>(cache_size * channels).data();
        const float** rows = scratch<const float*, 1>(size_t(window) * channels).data();
        float* rounded = scratch<float, 9>(size_t(width) * channels).data();  // uint8: float rows before rounding
        std::vector<RowCache<float, T>> caches;
        BilateralRowArgs a = args;
        for (int c = 0; c < channels; ++c) {
          caches.emplace_back(in + (n * channels + c) * plane_size, height, width, radius, border, outside, slots,
                              storage + c * cache_size);
          a.rows[c] = rows + c * window;
        }
        bool finite = true;
        for (int y = y0; y < y1; ++y) {
          T* out_rows[kMaxBilateralChannels];
          for (int c = 0; c < channels; ++c) {
            window_rows(caches[c], y, radius, rows + c * window);
            out_rows[c] = out + (n * channels + c) * plane_size + int64_t(y) * width;
            if constexpr (std::is_same_v<T, float>) {
              a.out[c] = out_rows[c];
            } else {
              a.out[c] = rounded + size_t(c) * width;
            }
          }
          table.bilateral(a);
          if constexpr (std::is_same_v<T, uint8_t>) {
            for (int c = 0; c < channels; ++c) table.narrow(out_rows[c], a.out[c], width);
          }
        }
        for (const auto& cache : caches) finite = finite && cache.finite();
        return finite;
      });
}

template bool separable_filter_cpu<float>(const float*, float*, PlaneStack, const float*, int, const float*, int,
                                          Border, float, int);
template bool separable_filter_cpu<uint8_t>(const uint8_t*, uint8_t*, PlaneStack, const float*, int, const float*, int,
                                            Border, float, int);
template bool correlate2d_cpu<float>(const float*, float*, PlaneStack, const float*, int, int, Border, float, int);
template bool correlate2d_cpu<uint8_t>(const uint8_t*, uint8_t*, PlaneStack, const float*, int, int, Border, float,
                                       int);
template bool median_filter_cpu<float>(const float*, float*, PlaneStack, int, Border, float, int);
template bool median_filter_cpu<uint8_t>(const uint8_t*, uint8_t*, PlaneStack, int, Border, float, int);
template bool bilateral_filter_cpu<float>(const float*, float*, int64_t, int, int, int, int, float, float, Border,
                                          float, int);
template bool bilateral_filter_cpu<uint8_t>(const uint8_t*, uint8_t*, int64_t, int, int, int, int, float, float, Border,
                                            float, int);

}  // namespace pydenoise
