// CPU DDAE: the layer stack over a batch of windows, threaded with OpenMP.
//
// Large batches: each thread takes blocks of rows and runs the whole network on a block, its activations
// ping-ponging between two thread-local buffers that stay in the core's L2; weights stream from L3.
// Small batches (the streaming case, B = 1): all threads share each layer, each computing a slice of its
// output features, with a barrier between layers; this splits the weight traffic across cores.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu_dispatch.h"
#include "kernels/ddae.h"
#include "kernels/ddae_cpu_layer.h"

namespace pydenoise {

int DdaeNet::max_width() const { return *std::max_element(widths, widths + num_layers + 1); }

bool cpu_has_avx2() { return cpu_uses(CpuPath::kAvx2); }

namespace {

// Rows per block in row-parallel mode: 2 buffers x 64 rows x 512 floats = 256 KiB, inside a 512 KiB L2.
constexpr int kRowBlock = 64;
// Below this many rows per thread, splitting the features of each layer across threads is faster.
constexpr int kMinRowsPerThread = 24;
// From this batch on, packing the weights into panels once per call pays for itself.
constexpr int64_t kMinBatchToPack = 128;
// With weights packed beforehand, the outer-product panel tiles beat the dot-product tiles from two rows on
// (one row is bound by the weight stream either way; measured 1.2x at two rows on Zen 3). Packed bf16 weights
// are float32 panels, twice the weight stream of the bf16 dot tiles: worth it once a few rows share it.
int min_rows_for_panels(const DdaeNet& net) { return net.weight_type == WeightType::kBFloat16 ? 4 : 2; }

// With AVX512_BF16, bf16 weights are multiplied as bf16 by dot-product tiles: no float32 panels.
bool uses_bf16_dot(const DdaeNet& net) {
  return net.weight_type == WeightType::kBFloat16 && cpu_path() == CpuPath::kAvx512Bf16;
}

// One row is bound by the bf16 weight stream: the dot tiles read it at least as fast as pair panels.
constexpr int kMinRowsForPairPanels = 2;

bool use_prepacked(const DdaeNet& net, int64_t batch) {
  const int min_rows = uses_bf16_dot(net) ? kMinRowsForPairPanels : min_rows_for_panels(net);
  return net.prepacked && batch >= min_rows && cpu_uses(CpuPath::kAvx2);
}

// Per layer, the packed weights one call uses: float32 panels, or bf16 pair panels on the bf16 dot path.
struct PackedLayer {
  const float* panels = nullptr;
  const uint16_t* pairs = nullptr;
};
using PackedNet = std::vector<PackedLayer>;  // empty: none

// Floats of the packed form this path uses for layer l (a part of what ddae_pack_weights writes).
int64_t packed_floats_used(const DdaeNet& net, int l) {
  return uses_bf16_dot(net) ? detail::packed_pair_floats(net.widths[l], net.widths[l + 1])
                            : detail::packed_floats(net.widths[l], net.widths[l + 1]);
}

PackedNet prepacked_layers(const DdaeNet& net) {
  PackedNet layers(net.num_layers);
  for (int l = 0; l < net.num_layers; ++l) {
    if (uses_bf16_dot(net)) {
      const float* pairs = net.packed[l] + detail::packed_floats(net.widths[l], net.widths[l + 1]);
      layers[l].pairs = reinterpret_cast<const uint16_t*>(pairs);
    } else {
      layers[l].panels = net.packed[l];
    }
  }
  return layers;
}

void dense_layer(const detail::DenseLayerArgs& args) {
  switch (cpu_path()) {
    case CpuPath::kAvx512Bf16:
      if (args.weight_type == WeightType::kBFloat16) return detail::dense_layer_avx512_bf16(args);
      return detail::dense_layer_avx512(args);
    case CpuPath::kAvx512:
      return detail::dense_layer_avx512(args);
    case CpuPath::kAvx2:
      return detail::dense_layer_avx2(args);
    case CpuPath::kScalar:
      return detail::dense_layer_scalar(args);
  }
}

// Arguments of layer l for `rows` rows, features [n_begin, n_end); the caller picks in/out buffers.
detail::DenseLayerArgs layer_args(const DdaeNet& net, int l, int rows, int n_begin, int n_end) {
  detail::DenseLayerArgs a{};
  a.rows = rows;
  a.in_features = net.widths[l];
  a.weight = net.weights[l];
  a.weight_type = net.weight_type;
  a.bias = net.biases[l];
  a.n_begin = n_begin;
  a.n_end = n_end;
  a.relu = l + 1 < net.num_layers;
  return a;
}

// Runs the whole network on rows [0, rows) of `frames`, using `scratch` (2 * rows * max_width floats).
// Only features [n_begin(l), n_end(l)) of each layer are computed by this caller; `sync` runs between layers.
template <typename Slice, typename Sync>
void run_network(const DdaeNet& net, const float* frames, int64_t frame_stride, int rows, bool residual, float* out,
                 float* scratch, const PackedLayer* packed, Slice slice, Sync sync) {
  const int64_t ld = net.max_width();
  const float* in = frames;
  int64_t in_stride = frame_stride;
  for (int l = 0; l < net.num_layers; ++l) {
    const bool last = l + 1 == net.num_layers;
    const auto [n_begin, n_end] = slice(net.widths[l + 1]);
    detail::DenseLayerArgs a = layer_args(net, l, rows, n_begin, n_end);
    if (packed) {
      a.packed_weight = packed[l].panels;
      a.packed_pairs = packed[l].pairs;
    }
    a.in = in;
    a.in_stride = in_stride;
    a.out = last ? out : scratch + (l % 2) * rows * ld;
    a.out_stride = last ? net.window() : ld;
    if (last && residual) {
      a.residual_of = frames;
      a.residual_stride = frame_stride;
    }
    dense_layer(a);
    if (!last) sync();
    in = a.out;
    in_stride = a.out_stride;
  }
}

// Packs every layer's full panels, in the form this path uses, into `buffer`; returns per-layer pointers.
// Called inside a parallel region.
PackedNet pack_all_layers(const DdaeNet& net, float* buffer) {
  PackedNet layers(net.num_layers);
  std::vector<int64_t> first_panel(net.num_layers + 1, 0);
  const bool pairs = uses_bf16_dot(net);
  for (int l = 0; l < net.num_layers; ++l) {
    if (pairs) {
      layers[l].pairs = reinterpret_cast<const uint16_t*>(buffer);
    } else {
      layers[l].panels = buffer;
    }
    buffer += packed_floats_used(net, l);
    first_panel[l + 1] = first_panel[l] + net.widths[l + 1] / detail::kPanelWidth;
  }
#pragma omp for schedule(static)
  for (int64_t job = 0; job < first_panel[net.num_layers]; ++job) {
    const int l =
        static_cast<int>(std::upper_bound(first_panel.begin(), first_panel.end(), job) - first_panel.begin()) - 1;
    const int p = static_cast<int>(job - first_panel[l]);
    if (pairs) {
      detail::pack_pair_panels(static_cast<const uint16_t*>(net.weights[l]), net.widths[l], p, p + 1,
                               const_cast<uint16_t*>(layers[l].pairs));
    } else {
      detail::pack_weight_panels(net.weights[l], net.weight_type, net.widths[l], p, p + 1,
                                 const_cast<float*>(layers[l].panels));
    }
  }
  return layers;
}

void forward_row_parallel(const DdaeNet& net, const float* frames, int64_t batch, int64_t frame_stride, bool residual,
                          float* out, int threads) {
  // Blocks of at most kRowBlock rows, small enough that every thread gets one (rounded to the 6-row tile).
  const int64_t per_thread = (batch + threads - 1) / threads;
  const int block_rows = static_cast<int>(std::min<int64_t>(kRowBlock, (per_thread + 5) / 6 * 6));
  const int64_t blocks = (batch + block_rows - 1) / block_rows;
  // Sized by the blocks actually run: a stream's one-row calls then touch 48 KB, not 512 KB, on a first call.
  const size_t scratch_floats = size_t{2} * block_rows * net.max_width();
  const bool pack_now = !net.prepacked && batch >= kMinBatchToPack && cpu_uses(CpuPath::kAvx2);
  float* packed_buffer = nullptr;
  if (pack_now) {
    int64_t floats = 0;
    for (int l = 0; l < net.num_layers; ++l) floats += packed_floats_used(net, l);
    packed_buffer = detail::thread_buffer(static_cast<size_t>(floats), detail::Scratch::kPackedWeights);
  }
  const PackedNet prepacked = use_prepacked(net, batch) ? prepacked_layers(net) : PackedNet{};
#pragma omp parallel num_threads(threads)
  {
    const PackedNet packed_now = pack_now ? pack_all_layers(net, packed_buffer) : PackedNet{};
    const PackedLayer* packed = pack_now ? packed_now.data() : prepacked.empty() ? nullptr : prepacked.data();
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t r0 = block * block_rows;
      const int rows = static_cast<int>(std::min<int64_t>(block_rows, batch - r0));
      run_network(
          net, frames + r0 * frame_stride, frame_stride, rows, residual, out + r0 * net.window(),
          detail::thread_buffer(scratch_floats, detail::Scratch::kActivations), packed,
          [](int n) {
            return std::pair<int, int>{0, n};
          },
          [] {});
    }
  }
}

void forward_feature_parallel(const DdaeNet& net, const float* frames, int64_t batch, int64_t frame_stride,
                              bool residual, float* out, int threads) {
  const int rows = static_cast<int>(batch);
  float* scratch = detail::thread_buffer(size_t{2} * rows * net.max_width(), detail::Scratch::kActivations);
  const PackedNet prepacked = use_prepacked(net, batch) ? prepacked_layers(net) : PackedNet{};
  const PackedLayer* packed = prepacked.empty() ? nullptr : prepacked.data();
  // Slices are whole vector tiles (8 features), or whole panels (16) when the panel tiles run.
  const int granule = packed ? detail::kPanelWidth : 8;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int nt = omp_get_num_threads();
    auto slice = [t, nt, granule](int n) {
      const int groups = (n + granule - 1) / granule;
      const int begin = std::min(n, groups * t / nt * granule);
      const int end = std::min(n, groups * (t + 1) / nt * granule);
      return std::pair<int, int>{begin, end};
    };
    run_network(net, frames, frame_stride, rows, residual, out, scratch, packed, slice, [] {
#pragma omp barrier
    });
  }
}

}  // namespace

void ddae_forward_cpu(const DdaeNet& net, const float* frames, int64_t batch, int64_t frame_stride, bool residual,
                      float* out, int num_threads) {
  if (batch <= 0) return;
  const int threads = num_threads > 0 ? num_threads : omp_get_max_threads();
  if (threads > 1 && batch < int64_t{kMinRowsPerThread} * threads && !omp_in_parallel()) {
    forward_feature_parallel(net, frames, batch, frame_stride, residual, out, threads);
  } else {
    forward_row_parallel(net, frames, batch, frame_stride, residual, out, threads);
  }
}

int64_t ddae_packed_floats(int in_features, int out_features, WeightType weight_type) {
  const int64_t pairs =
      weight_type == WeightType::kBFloat16 ? detail::packed_pair_floats(in_features, out_features) : 0;
  return detail::packed_floats(in_features, out_features) + pairs;
}

void ddae_pack_weights(const void* weight, WeightType weight_type, int in_features, int out_features, float* packed) {
  const int panels = out_features / detail::kPanelWidth;
  detail::pack_weight_panels(weight, weight_type, in_features, 0, panels, packed);
  if (weight_type == WeightType::kBFloat16) {
    detail::pack_pair_panels(static_cast<const uint16_t*>(weight), in_features, 0, panels,
                             reinterpret_cast<uint16_t*>(packed + detail::packed_floats(in_features, out_features)));
  }
}

namespace detail {

float* thread_buffer(size_t floats, Scratch slot) {
  constexpr size_t kAlignFloats = 16;
  thread_local std::vector<float> buffers[static_cast<int>(Scratch::kCount)];
  std::vector<float>& buffer = buffers[static_cast<int>(slot)];
  if (buffer.size() < floats + kAlignFloats) buffer.resize(floats + kAlignFloats);
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return reinterpret_cast<float*>((address + 63) & ~uintptr_t{63});
}

void pack_weight_panels(const void* weight, WeightType weight_type, int K, int panel_begin, int panel_end,
                        float* packed) {
  const auto* w32 = static_cast<const float*>(weight);
  const auto* w16 = static_cast<const uint16_t*>(weight);
  for (int p = panel_begin; p < panel_end; ++p) {
    float* panel = packed + int64_t{p} * kPanelWidth * K;
    for (int j = 0; j < kPanelWidth; ++j) {
      const int64_t row = int64_t{p * kPanelWidth + j} * K;
      for (int k = 0; k < K; ++k) {
        panel[k * kPanelWidth + j] = weight_type == WeightType::kFloat32 ? w32[row + k] : bf16_to_float(w16[row + k]);
      }
    }
  }
}

void pack_pair_panels(const uint16_t* weight, int K, int panel_begin, int panel_end, uint16_t* packed) {
  const int pairs = pair_panel_k(K);
  for (int p = panel_begin; p < panel_end; ++p) {
    uint16_t* panel = packed + p * pair_panel_bf16s(K);
    for (int j = 0; j < kPanelWidth; ++j) {
      const uint16_t* row = weight + int64_t{p * kPanelWidth + j} * K;
      for (int kp = 0; kp < pairs; ++kp) {
        panel[(kp * kPanelWidth + j) * 2] = row[2 * kp];
        panel[(kp * kPanelWidth + j) * 2 + 1] = 2 * kp + 1 < K ? row[2 * kp + 1] : uint16_t{0};
      }
    }
  }
}

void dense_layer_scalar(const DenseLayerArgs& a) {
  const auto* w32 = static_cast<const float*>(a.weight);
  const auto* w16 = static_cast<const uint16_t*>(a.weight);
  const int K = a.in_features;
  for (int r = 0; r < a.rows; ++r) {
    const float* x = a.in + r * a.in_stride;
    for (int n = a.n_begin; n < a.n_end; ++n) {
      float sum = 0.f;
      if (a.weight_type == WeightType::kFloat32) {
        for (int k = 0; k < K; ++k) sum += x[k] * w32[int64_t{n} * K + k];
      } else {
        for (int k = 0; k < K; ++k) sum += x[k] * bf16_to_float(w16[int64_t{n} * K + k]);
      }
      a.out[r * a.out_stride + n] = apply_epilogue(a, r, n, sum);
    }
  }
}

}  // namespace detail
}  // namespace pydenoise
