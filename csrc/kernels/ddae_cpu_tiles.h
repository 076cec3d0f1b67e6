// Internal to the CPU DDAE kernel: the loops that cover a layer's output with register tiles, shared by the
// AVX2 and AVX-512 code. Intrinsic-free; included inside each ISA file's target region, so the loops are
// compiled (and inline their tile lambdas) for that ISA. Tiles get their sizes as std::integral_constant.
#pragma once

#include <algorithm>
#include <type_traits>

#include "kernels/ddae_cpu_layer.h"

namespace pydenoise::detail {

template <int M>
using Int = std::integral_constant<int, M>;

template <int M, typename Tile>
inline void remainder_row_tile(int rows_left, int r0, Tile& tile) {
  if constexpr (M > 0) {
    if (rows_left == M) {
      tile(Int<M>{}, r0);
    } else {
      remainder_row_tile<M - 1>(rows_left, r0, tile);
    }
  }
}

// tile(Int<m>, r0) over rows [0, rows): tiles of MR rows, then one tile of the rows left.
template <int MR, typename Tile>
inline void for_row_tiles(int rows, Tile&& tile) {
  int r0 = 0;
  for (; r0 + MR <= rows; r0 += MR) tile(Int<MR>{}, r0);
  remainder_row_tile<MR - 1>(rows - r0, r0, tile);
}

// Dot-product tiles tile(Int<mr>, Int<nr>, r0, n0) over the layer's features [n_begin, n_end): column tiles
// outside, rows inside, so a tile's NR weight rows stay in L1 across all rows; the last columns take
// one-column tiles.
template <int MR, int NR, typename Tile>
inline void dot_tile_layer(const DenseLayerArgs& a, Tile&& tile) {
  for (int n0 = a.n_begin; n0 < a.n_end; n0 += NR) {
    const int width = std::min(NR, a.n_end - n0);
    for_row_tiles<MR>(a.rows, [&](auto mr, int r0) {
      if (width == NR) {
        tile(mr, Int<NR>{}, r0, n0);
      } else {
        for (int j = 0; j < width; ++j) tile(mr, Int<1>{}, r0, n0 + j);
      }
    });
  }
}

// K slice per pass over the rows. Measured on Zen 3: whole panels up to K = 512 (32 KiB, streamed from L2)
// beat 64- to 256-deep slices kept in L1 by 3-10%, as slicing re-reads and re-writes the partial sums.
constexpr int kPanelSlice = 512;

// Outer-product tiles tile(Int<mr>, Int<np>, panel, r0, k0, k1) over the full panels of features
// [n_begin, n_end): NP panels at a time (fewer for the last), all rows, K in slices. The caller handles the
// features past the last full panel.
template <int MR, int NP, typename Tile>
inline void panel_tile_layer(const DenseLayerArgs& a, Tile&& tile) {
  const int panel_end = a.n_end / kPanelWidth;
  for (int p = a.n_begin / kPanelWidth; p < panel_end; p += NP) {
    for (int k0 = 0; k0 < a.in_features; k0 += kPanelSlice) {
      const int k1 = std::min(a.in_features, k0 + kPanelSlice);
      auto rows = [&](auto np) { for_row_tiles<MR>(a.rows, [&](auto mr, int r0) { tile(mr, np, p, r0, k0, k1); }); };
      if constexpr (NP == 2) {
        if (p + 1 < panel_end) {
          rows(Int<2>{});
        } else {
          rows(Int<1>{});
        }
      } else {
        rows(Int<NP>{});
      }
    }
  }
}

}  // namespace pydenoise::detail
