// The CPU kernels on the fuzz corpus's shapes and values, built with -fsanitize=address,undefined (issue #27,
// item 2; `make sanitize-test`): every CPU path this machine runs; DDAE forward (shipped and odd widths,
// float32/bf16 weights, packed or not, overlapping frames, batch 1..65), the framed overlap-add (float/double,
// hops, given and RMS scales, zero scales), and the filters (separable, correlate2d, median 1..9, bilateral) on
// 1x1, 1xN, Nx1, odd and larger images, every border, float32 and uint8. Values: ordinary, zeros, denormals,
// +-FLT_MAX, NaN and Inf. A sanitizer report (out-of-bounds, use after free, leak, overflow of a signed
// integer, misaligned or invalid load...) fails the run; so does a finite result where the kernel promises it
// (finite input, finite weights of moderate size) coming out NaN or Inf, or a filter accepting NaN input.
#include <cfloat>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "check.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/ddae.h"
#include "kernels/ddae_frames.h"
#include "kernels/filters.h"

namespace {

using pydenoise::Border;
using pydenoise::PlaneStack;

enum class Values { kOrdinary, kZeros, kDenormal, kHuge, kNaN, kInf };
constexpr Values kAllValues[] = {Values::kOrdinary, Values::kZeros, Values::kDenormal,
                                 Values::kHuge,     Values::kNaN,   Values::kInf};

bool finite_values(Values v) { return v != Values::kNaN && v != Values::kInf; }

// `n` floats of a kind; the special ones are mixed into ordinary values at a few positions.
std::vector<float> values(size_t n, Values kind, std::mt19937& rng, float huge = FLT_MAX) {
  std::vector<float> v = random_floats(n, rng);
  for (size_t i = 0; i < n; ++i) {
    switch (kind) {
      case Values::kZeros:
        v[i] = i % 7 == 3 ? v[i] : 0.f;
        break;
      case Values::kDenormal:
        v[i] = (i % 2 ? 1 : -1) * std::numeric_limits<float>::denorm_min() * float(i % 5);
        break;
      case Values::kHuge:
        v[i] = i % 5 == 0 ? (i % 2 ? huge : -huge) : v[i];
        break;
      case Values::kNaN:
        v[i] = i % 11 == 0 ? std::numeric_limits<float>::quiet_NaN() : v[i];
        break;
      case Values::kInf:
        v[i] = i % 13 == 0 ? std::numeric_limits<float>::infinity() : v[i];
        break;
      case Values::kOrdinary:
        break;
    }
  }
  return v;
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// ---- DDAE ------------------------------------------------------------------------------------------------------

struct Net {
  std::vector<std::vector<float>> weights, biases, packed;
  std::vector<std::vector<uint16_t>> bf16;
  pydenoise::DdaeNet net;
};

Net make_net(const std::vector<int>& widths, bool use_bf16, bool prepack, std::mt19937& rng) {
  Net n;
  n.net.num_layers = int(widths.size()) - 1;
  n.net.weight_type = use_bf16 ? pydenoise::WeightType::kBFloat16 : pydenoise::WeightType::kFloat32;
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    n.weights.push_back(random_floats(size_t(widths[l + 1]) * widths[l], rng, 1.f / std::sqrt(float(widths[l]))));
    n.biases.push_back(random_floats(widths[l + 1], rng, 0.1f));
    n.bf16.push_back(bf16_truncated(n.weights.back()));
  }
  for (size_t l = 0; l < widths.size(); ++l) n.net.widths[l] = widths[l];
  for (int l = 0; l < n.net.num_layers; ++l) {
    n.net.weights[l] = use_bf16 ? static_cast<const void*>(n.bf16[l].data()) : n.weights[l].data();
    n.net.biases[l] = n.biases[l].data();
    if (prepack) {
      n.packed.emplace_back(pydenoise::ddae_packed_floats(widths[l], widths[l + 1], n.net.weight_type));
      pydenoise::ddae_pack_weights(n.net.weights[l], n.net.weight_type, widths[l], widths[l + 1],
                                   n.packed.back().data());
    }
  }
  if (prepack) {
    n.net.prepacked = true;
    for (int l = 0; l < n.net.num_layers; ++l) n.net.packed[l] = n.packed[l].data();
  }
  return n;
}

int forward_cases(std::mt19937& rng) {
  const std::vector<std::vector<int>> shapes = {{256, 512, 256, 256, 256, 512, 256}, {7, 13, 7}, {1, 1}, {33, 17, 33}};
  int cases = 0;
  for (const auto& widths : shapes) {
    for (bool use_bf16 : {false, true}) {
      for (bool prepack : {false, true}) {
        Net n = make_net(widths, use_bf16, prepack, rng);
        const int window = widths[0];
        for (int64_t batch : window > 64 ? std::vector<int64_t>{1, 17} : std::vector<int64_t>{1, 3, 65}) {
          for (int64_t stride : {int64_t(1), int64_t(window), int64_t(window + 3)}) {
            for (Values kind : kAllValues) {
              const size_t length = size_t((batch - 1) * stride + window);
              // Huge inputs (1e30, still finite through the network's float32) stand for the Python layer's
              // normalised frames; FLT_MAX itself would overflow any sum, as IEEE says.
              std::vector<float> frames = values(length, kind, rng, 1e30f);
              std::vector<float> out(size_t(batch) * window);
              for (bool residual : {false, true}) {
                pydenoise::ddae_forward_cpu(n.net, frames.data(), batch, stride, residual, out.data(), 2);
                ++cases;
                if (finite_values(kind) && kind != Values::kHuge)
                  CHECK(all_finite(out), "ddae_forward: non-finite output for finite input (window %d, batch %lld)",
                        window, (long long)batch);
              }
            }
          }
        }
      }
    }
  }
  return cases;
}

template <typename T>
int overlap_add_cases(std::mt19937& rng) {
  Net n = make_net({64, 96, 64}, false, true, rng);
  const int window = 64;
  int cases = 0;
  for (int hop : {1, 8, 32, 64}) {
    for (int64_t channels : {1, 3}) {
      for (int64_t frames_count : {1, 2, 9}) {
        for (Values kind : kAllValues) {
          if (!finite_values(kind)) continue;  // the Python layer refuses NaN/Inf before this kernel
          const int64_t length = (frames_count - 1) * hop + window;
          std::vector<float> raw = values(size_t(channels * length), kind, rng, 1e30f);
          std::vector<T> padded(raw.begin(), raw.end());
          std::vector<T> weights(window, T(0.5));
          std::vector<T> scales(size_t(channels * frames_count));
          for (size_t i = 0; i < scales.size(); ++i) scales[i] = i % 3 == 0 ? T(0) : T(1e-3) * T(i);
          for (bool given : {false, true}) {
            std::vector<T> out(size_t(channels * length), T(0));
            pydenoise::ddae_overlap_add_cpu<T>(n.net, padded.data(), channels, length, hop, weights.data(),
                                               given ? scales.data() : nullptr, true, out.data(), 2);
            ++cases;
            bool finite = true;
            for (T x : out) finite = finite && std::isfinite(double(x));
            CHECK(finite || kind == Values::kHuge, "ddae_overlap_add: non-finite output (hop %d, %s scales)", hop,
                  given ? "given" : "RMS");
          }
        }
      }
    }
  }
  return cases;
}

// ---- Filters ---------------------------------------------------------------------------------------------------

template <typename T>
std::vector<T> image_values(size_t n, Values kind, std::mt19937& rng) {
  std::vector<float> v = values(n, kind, rng);
  std::vector<T> out(n);
  for (size_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<T, uint8_t>) {
      out[i] = uint8_t(std::isfinite(v[i]) ? (int(std::fabs(v[i]) * 60.f) & 255) : 255);
    } else {
      out[i] = v[i];
    }
  }
  return out;
}

template <typename T>
int filter_cases(std::mt19937& rng) {
  const int sizes[][2] = {{1, 1}, {1, 7}, {7, 1}, {2, 3}, {5, 5}, {17, 33}};
  const Border borders[] = {Border::kReflect101, Border::kReflect, Border::kReplicate, Border::kWrap,
                            Border::kConstant};
  int cases = 0;
  for (const auto& hw : sizes) {
    for (int64_t planes : {1, 3}) {
      const PlaneStack stack{planes, hw[0], hw[1]};
      const size_t n = size_t(planes) * hw[0] * hw[1];
      for (Values kind : kAllValues) {
        if (std::is_same_v<T, uint8_t> && kind != Values::kOrdinary && kind != Values::kZeros) continue;
        std::vector<T> in = image_values<T>(n, kind, rng), out(n);
        const bool nonfinite = !finite_values(kind);
        for (Border border : borders) {
          for (int k : {1, 3, 5, 9}) {
            std::vector<float> taps(k, 1.f / float(k)), dense = random_floats(size_t(k) * k, rng);
            bool ok = pydenoise::separable_filter_cpu<T>(in.data(), out.data(), stack, taps.data(), k, taps.data(), k,
                                                         border, 0.5f, 2);
            CHECK(ok != nonfinite, "separable_filter: returned %d for %s input", ok, nonfinite ? "NaN/Inf" : "finite");
            ok = pydenoise::correlate2d_cpu<T>(in.data(), out.data(), stack, dense.data(), k, k, border, 0.5f, 2);
            CHECK(ok != nonfinite, "correlate2d: returned %d", ok);
            ok = pydenoise::median_filter_cpu<T>(in.data(), out.data(), stack, k, border, 0.5f, 2);
            CHECK(ok != nonfinite, "median_filter: returned %d (ksize %d)", ok, k);
            cases += 3;
          }
          for (int radius : {1, 2, 4}) {
            for (int channels : {1, 3}) {
              if (planes % channels) continue;
              bool ok = pydenoise::bilateral_filter_cpu<T>(in.data(), out.data(), planes / channels, channels, hw[0],
                                                           hw[1], radius, 0.1f, 3.f, border, 0.5f, 2);
              CHECK(ok != nonfinite, "bilateral_filter: returned %d", ok);
              ++cases;
            }
          }
        }
      }
    }
  }
  return cases;
}

}  // namespace

int main() {
  std::mt19937 rng(27);
  const int best = static_cast<int>(pydenoise::cpu_best_path());
  for (int p = 0; p <= best; ++p) {
    CHECK(pydenoise::set_cpu_path(static_cast<pydenoise::CpuPath>(p)), "set_cpu_path(%d) refused", p);
    const int cases = forward_cases(rng) + overlap_add_cases<float>(rng) + overlap_add_cases<double>(rng) +
                      filter_cases<float>(rng) + filter_cases<uint8_t>(rng);
    std::printf("sanitize_kernels: %d kernel calls clean on the %s path\n", cases,
                pydenoise::cpu_path_name(pydenoise::cpu_path()));
  }
  return 0;
}
