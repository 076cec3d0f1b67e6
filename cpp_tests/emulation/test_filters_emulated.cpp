// The CUDA filters (csrc/kernels/filters_cuda.cu, built for the CPU with HIP-CPU) against the CPU filters
// (filters_cpu.cpp): separable (random taps, the uint8 box the CPU sums in integers, the largest extent),
// correlate2d, the median networks (3, 5, 7) and the counting median above, bilateral with 1/3/4 channels;
// image sizes 1x1, 3x17, 255x257 and 1024x1024, every border, float32 and uint8, 1/3/4 planes; the grid's
// plane striding beyond 65535 planes, the NaN/Inf flag and the refusals.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../check.h"
#include "kernels/cuda_compat.h"
#include "kernels/filters.h"

namespace {

using pydenoise::Border;
using pydenoise::PlaneStack;

const Border kBorders[] = {Border::kReflect101, Border::kReflect, Border::kReplicate, Border::kWrap, Border::kConstant};
const char* border_name(Border b) {
  const char* names[] = {"reflect101", "reflect", "replicate", "wrap", "constant"};
  return names[int(b)];
}
constexpr float kCvalFloat = 0.25f;
constexpr float kCvalUint8 = 77.4f;  // both sides round it to 77

struct Size {
  int height, width;
};
const int kPlaneCounts[] = {1, 3, 4};  // also the bilateral's channel counts
const std::vector<Size> kSizes{{1, 1}, {3, 17}, {255, 257}, {1024, 1024}};
// --quick (the sanitized build and the mutation check): every path, at sizes with 1, 1 and 3 x 3 tiles.
const std::vector<Size> kQuickSizes{{1, 1}, {3, 17}, {70, 90}};
bool is_large(Size s) { return int64_t(s.height) * s.width > 10000; }

template <typename T>
const char* type_name() {
  return std::is_same_v<T, float> ? "f32" : "u8";
}

// Bounds, per pixel type and filter:
// - float32 linear filters: the same float32 products summed in another order (and, for separable, the
//   vertical pass of the same columns): each output is off by a few ulp of sum |tap * pixel|, at most
//   (taps) x 2^-24 relative. 1e-5 of max |output| covers 961 taps with margin; a wrong tap, border index or
//   missing row is off by O(1).
// - uint8 linear filters: both sides round the float sum to nearest; they differ only where the exact value
//   lies within that float error of a .5 tie, which for random taps is ~1e-5 of the pixels and for box
//   filters (sums n / k^2, k odd: never a tie) none. Bound: every pixel within 1, at most 0.1 % off by 1.
// - medians: exact (both select one of the window's pixels).
// - bilateral: the weights are exponentials: the CPU's exp polynomial is within 2e-7 relative and clamps
//   arguments below -69.3 (weights < 1e-30, below float resolution of the sum); the emulation's __expf is
//   std::exp. 1e-5 of max |output| (float), uint8 as the linear filters.
struct Bound {
  double max_relative;    // float32: max |got - want| / max |want|
  double max_off_by_one;  // uint8: fraction of pixels allowed to differ by exactly 1
};
constexpr Bound kLinear{1e-5, 1e-3};
constexpr Bound kExact{0, 0};

struct Stats {
  int cases = 0;
  double worst_relative = 0, worst_off_by_one = 0;
};
Stats g_stats;

template <typename T>
void compare(const std::vector<T>& got, const std::vector<T>& want, Bound bound, const std::string& what) {
  CHECK(got.size() == want.size(), "%s: sizes differ", what.c_str());
  if constexpr (std::is_same_v<T, float>) {
    double diff = 0, ref = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      CHECK(std::isfinite(got[i]), "%s: output %zu is %g (want %g)", what.c_str(), i, got[i], want[i]);
      diff = std::fmax(diff, std::fabs(double(got[i]) - want[i]));
      ref = std::fmax(ref, std::fabs(double(want[i])));
    }
    const double relative = ref > 0 ? diff / ref : diff;
    g_stats.worst_relative = std::fmax(g_stats.worst_relative, relative);
    CHECK(relative <= bound.max_relative, "%s: max error %g of max |output| %g (bound %g)", what.c_str(), relative, ref,
          bound.max_relative);
  } else {
    size_t off_by_one = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const int d = std::abs(int(got[i]) - int(want[i]));
      CHECK(d <= 1 && (d == 0 || bound.max_off_by_one > 0), "%s: pixel %zu is %d, want %d", what.c_str(), i,
            int(got[i]), int(want[i]));
      off_by_one += d;
    }
    const double fraction = double(off_by_one) / double(want.size());
    g_stats.worst_off_by_one = std::fmax(g_stats.worst_off_by_one, fraction);
    CHECK(fraction <= bound.max_off_by_one, "%s: %zu of %zu pixels off by one (bound %g of them)", what.c_str(),
          off_by_one, want.size(), bound.max_off_by_one);
  }
  ++g_stats.cases;
}

// Runs a CUDA filter launch(out, nonfinite) on the emulated device: no error, the flag as expected.
template <typename T, typename Launch>
std::vector<T> run_gpu(size_t n, const std::string& what, Launch launch, int want_flag = 0) {
  std::vector<T> out(n, T(123));  // a value no correct filter writes everywhere
  int nonfinite = 0;
  const std::string error = launch(out.data(), &nonfinite);
  CHECK(error.empty(), "%s: %s", what.c_str(), error.c_str());
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "%s: emulated device failed", what.c_str());
  CHECK(nonfinite == want_flag, "%s: nonfinite flag %d, want %d", what.c_str(), nonfinite, want_flag);
  return out;
}

struct Separable {
  std::vector<float> y, x;
  std::string name;
};
struct Correlation {
  std::vector<float> k;
  int kh, kw;
  std::string name;
};

Separable random_separable(int ky, int kx, std::mt19937& rng) {
  return {random_floats(ky, rng, 0.5f), random_floats(kx, rng, 0.5f),
          "separable " + std::to_string(ky) + "x" + std::to_string(kx)};
}
Separable box(int k) {
  return {std::vector<float>(k, 1.f / k), std::vector<float>(k, 1.f / k), "box " + std::to_string(k)};
}

template <typename T>
struct Case {
  PlaneStack s;
  Border border;
  std::vector<T> in;
  float cval() const { return std::is_same_v<T, float> ? kCvalFloat : kCvalUint8; }
  size_t pixels() const { return size_t(s.planes) * s.height * s.width; }
  std::string name(const std::string& filter) const {
    return filter + " " + type_name<T>() + " " + std::to_string(s.planes) + "x" + std::to_string(s.height) + "x" +
           std::to_string(s.width) + " " + border_name(border);
  }
};

template <typename T>
void check_separable(const Case<T>& c, const Separable& f) {
  const std::string what = c.name(f.name);
  std::vector<T> want(c.pixels());
  CHECK(pydenoise::separable_filter_cpu(c.in.data(), want.data(), c.s, f.y.data(), int(f.y.size()), f.x.data(),
                                        int(f.x.size()), c.border, c.cval(), 1),
        "%s: CPU refused", what.c_str());
  const auto got = run_gpu<T>(c.pixels(), what, [&](T* out, int* flag) {
    return pydenoise::separable_filter_cuda(c.in.data(), out, c.s, f.y.data(), int(f.y.size()), f.x.data(),
                                            int(f.x.size()), c.border, c.cval(), flag, nullptr);
  });
  compare(got, want, kLinear, what);
}

template <typename T>
void check_correlate(const Case<T>& c, const Correlation& f) {
  const std::string what = c.name(f.name);
  std::vector<T> want(c.pixels());
  CHECK(pydenoise::correlate2d_cpu(c.in.data(), want.data(), c.s, f.k.data(), f.kh, f.kw, c.border, c.cval(), 1),
        "%s: CPU refused", what.c_str());
  const auto got = run_gpu<T>(c.pixels(), what, [&](T* out, int* flag) {
    return pydenoise::correlate2d_cuda(c.in.data(), out, c.s, f.k.data(), f.kh, f.kw, c.border, c.cval(), flag,
                                       nullptr);
  });
  compare(got, want, kLinear, what);
}

template <typename T>
void check_median(const Case<T>& c, int k) {
  const std::string what = c.name("median " + std::to_string(k));
  std::vector<T> want(c.pixels());
  CHECK(pydenoise::median_filter_cpu(c.in.data(), want.data(), c.s, k, c.border, c.cval(), 1), "%s: CPU refused",
        what.c_str());
  const auto got = run_gpu<T>(c.pixels(), what, [&](T* out, int* flag) {
    return pydenoise::median_filter_cuda(c.in.data(), out, c.s, k, c.border, c.cval(), flag, nullptr);
  });
  compare(got, want, kExact, what);
}

// The planes of a case as images of `channels` planes. uint8 runs as the torch op does it: the float32 kernel
// on a float copy (constant border: the uint8 outside value), rounded to nearest even and saturated.
template <typename T>
void check_bilateral(const Case<T>& c, int channels, int radius) {
  const std::string what = c.name("bilateral r=" + std::to_string(radius) + " c=" + std::to_string(channels));
  const int64_t images = c.s.planes / channels;
  constexpr float kSigmaColor = std::is_same_v<T, float> ? 0.8f : 30.f, kSigmaSpace = 3.f;
  std::vector<T> want(c.pixels());
  CHECK(pydenoise::bilateral_filter_cpu(c.in.data(), want.data(), images, channels, c.s.height, c.s.width, radius,
                                        kSigmaColor, kSigmaSpace, c.border, c.cval(), 1),
        "%s: CPU refused", what.c_str());
  const std::vector<float> in(c.in.begin(), c.in.end());
  const float cval = std::is_same_v<T, float> ? c.cval() : std::nearbyint(c.cval());
  const auto filtered = run_gpu<float>(c.pixels(), what, [&](float* out, int* flag) {
    return pydenoise::bilateral_filter_cuda(in.data(), out, images, channels, c.s.height, c.s.width, radius,
                                            kSigmaColor, kSigmaSpace, c.border, cval, flag, nullptr);
  });
  std::vector<T> got(filtered.size());
  for (size_t i = 0; i < got.size(); ++i)
    got[i] = std::is_same_v<T, float> ? T(filtered[i]) : T(std::clamp(std::nearbyint(filtered[i]), 0.f, 255.f));
  compare(got, want, kLinear, what);
}

// Every filter on one image size, border and pixel type. The emulation costs what the arithmetic does, so the
// largest windows (31: correlation and bilateral disc; the counting median's k^4 comparisons at k = 9, 31)
// run on every border at 1x1 and 3x17 (where they exceed the image many times over), at 255x257 with one
// border (`wide`), and not at 1024x1024, which runs every other kernel path on one plane, the 5x5 and 7x7
// median networks (float32: 3.5 s a plane) with one border only (`all_medians`).
template <typename T>
void check_all_filters(Size size, Border border, int planes, bool wide, bool all_medians, std::mt19937& rng) {
  const PlaneStack s{planes, size.height, size.width};
  const Case<T> c{s, border, random_image<T>(size_t(planes) * size.height * size.width, rng)};
  check_separable(c, random_separable(5, 3, rng));
  check_separable(c, box(7));
  check_separable(c, random_separable(31, 1, rng));
  check_separable(c, random_separable(1, 31, rng));
  check_correlate(c, {random_floats(15, rng, 0.3f), 3, 5, "correlate 3x5"});
  check_median(c, 3);
  if (all_medians) {
    check_median(c, 5);
    check_median(c, 7);
  }
  check_bilateral(c, planes, 2);
  if (wide) {
    check_correlate(c, {random_floats(31 * 31, rng, 0.05f), 31, 31, "correlate 31x31"});
    check_bilateral(c, planes, 15);
    check_median(c, 9);
  }
  if (size.height * size.width == 1) check_median(c, 31);
}

// 65536 + 2 three-channel images: the grid's z extent stops at 65535, so blocks loop over images (the
// bilateral derives the image count from the planes) and re-sync before reusing their tiles. One launch:
// 65535 blocks of 256 emulated threads take ~6 s.
void check_plane_striding(std::mt19937& rng) {
  const int64_t planes = (65536 + 2) * 3;
  const Case<float> c{{planes, 2, 3}, Border::kWrap, random_image<float>(size_t(planes) * 6, rng)};
  check_bilateral(c, 3, 1);
}

// NaN and Inf set the device flag (and the CPU refuses): in the first, a middle and the last tile.
void check_nonfinite(std::mt19937& rng) {
  const PlaneStack s{2, 70, 90};
  const float kernel[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  for (size_t at : {size_t{0}, size_t{70 * 90 + 35 * 90 + 40}, size_t{2 * 70 * 90 - 1}}) {
    for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      auto in = random_image<float>(2 * 70 * 90, rng);
      in[at] = bad;
      const std::string what = "nonfinite " + std::to_string(bad) + " at " + std::to_string(at);
      std::vector<float> cpu(in.size());
      CHECK(!pydenoise::correlate2d_cpu(in.data(), cpu.data(), s, kernel, 3, 3, Border::kReflect101, 0.f, 1),
            "%s: the CPU accepted it", what.c_str());
      run_gpu<float>(
          in.size(), what + " correlate",
          [&](float* out, int* flag) {
            return pydenoise::correlate2d_cuda(in.data(), out, s, kernel, 3, 3, Border::kReflect101, 0.f, flag,
                                               nullptr);
          },
          1);
      run_gpu<float>(
          in.size(), what + " separable",
          [&](float* out, int* flag) {
            return pydenoise::separable_filter_cuda(in.data(), out, s, kernel, 3, kernel, 1, Border::kWrap, 0.f, flag,
                                                    nullptr);
          },
          1);
      run_gpu<float>(
          in.size(), what + " median",
          [&](float* out, int* flag) {
            return pydenoise::median_filter_cuda(in.data(), out, s, 5, Border::kConstant, 0.f, flag, nullptr);
          },
          1);
      run_gpu<float>(
          in.size(), what + " bilateral",
          [&](float* out, int* flag) {
            return pydenoise::bilateral_filter_cuda(in.data(), out, 1, 2, 70, 90, 2, 1.f, 2.f, Border::kReplicate, 0.f,
                                                    flag, nullptr);
          },
          1);
      ++g_stats.cases;
    }
  }
}

// Windows above kCudaMaxKernel and more than 4 bilateral channels are refused with the reason, nothing written.
void check_refusals() {
  const PlaneStack s{1, 40, 40};
  std::vector<float> in(1600, 1.f), out(1600, 5.f);
  std::vector<uint8_t> in8(1600, 1), out8(1600, 5);
  const std::vector<float> taps(33 * 33, 0.f);
  int flag = 0;
  auto refused = [&](const char* error, const char* what) {
    CHECK(std::string(error).find("kCudaMaxKernel") != std::string::npos, "%s: '%s'", what, error);
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == 5.f; }) &&
              std::all_of(out8.begin(), out8.end(), [](uint8_t v) { return v == 5; }),
          "%s: output written", what);
  };
  refused(pydenoise::separable_filter_cuda(in.data(), out.data(), s, taps.data(), 33, taps.data(), 3, Border::kWrap,
                                           0.f, &flag, nullptr),
          "separable ky=33");
  refused(pydenoise::separable_filter_cuda(in8.data(), out8.data(), s, taps.data(), 3, taps.data(), 33, Border::kWrap,
                                           0.f, &flag, nullptr),
          "separable kx=33");
  refused(pydenoise::correlate2d_cuda(in.data(), out.data(), s, taps.data(), 3, 33, Border::kWrap, 0.f, &flag, nullptr),
          "correlate kw=33");
  refused(pydenoise::median_filter_cuda(in8.data(), out8.data(), s, 33, Border::kWrap, 0.f, &flag, nullptr),
          "median 33");
  refused(pydenoise::bilateral_filter_cuda(in.data(), out.data(), 1, 1, 40, 40, 16, 1.f, 1.f, Border::kWrap, 0.f, &flag,
                                           nullptr),
          "bilateral radius 16");
  std::vector<float> five(5 * 1600, 1.f), five_out(5 * 1600, 5.f);
  refused(pydenoise::bilateral_filter_cuda(five.data(), out.data(), 1, 5, 40, 40, 2, 1.f, 1.f, Border::kWrap, 0.f,
                                           &flag, nullptr),
          "bilateral 5 channels");
  CHECK(flag == 0, "a refusal set the nonfinite flag");
  ++g_stats.cases;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, striding = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    CHECK(arg == "--quick" || arg == "--no-striding", "unknown argument '%s' (--quick, --no-striding)", argv[i]);
    quick = quick || arg == "--quick";
    striding = striding && arg != "--no-striding";  // the 65535-block launch: 6 s, 30 s under ASan
  }
  std::mt19937 rng(2025);
  const auto start = std::chrono::steady_clock::now();
  int planes_index = 0;
  for (Size size : quick ? kQuickSizes : kSizes) {
    const auto t0 = std::chrono::steady_clock::now();
    for (Border border : kBorders) {
      const int planes = size.height > 512 ? 1 : kPlaneCounts[planes_index++ % 3];
      const bool wide = !is_large(size) || (size.height < 512 && border == Border::kReflect101);
      const bool all_medians = size.height < 512 || border == Border::kReflect101;
      check_all_filters<float>(size, border, planes, wide, all_medians, rng);
      check_all_filters<uint8_t>(size, border, planes, wide, all_medians, rng);
    }
    std::printf("test_filters_emulated: %dx%d: %.1f s\n", size.height, size.width,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (striding) {
    const auto t1 = std::chrono::steady_clock::now();
    check_plane_striding(rng);
    std::printf("test_filters_emulated: 65538 images: %.1f s\n",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
  }
  check_nonfinite(rng);
  check_refusals();
  std::printf(
      "test_filters_emulated: %d cases passed in %.1f s (worst float error %.3g of max |output|, uint8 "
      "off-by-one fraction %.3g)\n",
      g_stats.cases, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
      g_stats.worst_relative, g_stats.worst_off_by_one);
  return 0;
}
