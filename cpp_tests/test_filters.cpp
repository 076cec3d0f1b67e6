// The CPU filters against direct float64 loops over the window, in every border mode, on image sizes that
// exercise the vector bodies, the overlapping row ends, rows narrower than a vector and windows larger than
// the image; float32 and uint8.
#include <algorithm>
#include <cstdint>
#include <string>

#include "check.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/filters.h"
#include "kernels/filters_median_network.h"

namespace {

using pydenoise::Border;
using pydenoise::PlaneStack;

const Border kBorders[] = {Border::kReflect101, Border::kReflect, Border::kReplicate, Border::kWrap, Border::kConstant};
constexpr float kCval = 0.25f;

// Pixel (y, x) of a plane, outside coordinates read through the border.
template <typename T>
double pixel(const std::vector<T>& img, int64_t plane, int H, int W, int y, int x, Border b, double cval) {
  const int yy = pydenoise::border_index(y, H, b), xx = pydenoise::border_index(x, W, b);
  if (yy < 0 || xx < 0) return cval;
  return img[(plane * H + yy) * W + xx];
}

template <typename T>
double cval_of() {
  return std::is_same_v<T, float> ? kCval : 0.0;  // uint8 images round the constant: use 0
}

template <typename T>
double round_like(double v) {
  if constexpr (std::is_same_v<T, float>) {
    return v;
  } else {
    return std::clamp(std::nearbyint(v), 0.0, 255.0);
  }
}

// Largest |out - ref| over the image, ref from a per-pixel function.
template <typename T, typename Ref>
double max_error(const std::vector<T>& out, PlaneStack s, Ref ref) {
  double err = 0;
  for (int64_t p = 0; p < s.planes; ++p)
    for (int y = 0; y < s.height; ++y)
      for (int x = 0; x < s.width; ++x)
        err = std::max(err, std::fabs(double(out[(p * s.height + y) * s.width + x]) - round_like<T>(ref(p, y, x))));
  return err;
}

template <typename T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1.0;  // uint8: a float32 sum may round the other way at .5
}

template <typename T>
void test_correlate_and_separable(PlaneStack s, int kh, int kw, std::mt19937& rng) {
  const auto img = random_image<T>(s.planes * s.height * s.width, rng);
  std::vector<float> ky = random_floats(kh, rng), kx = random_floats(kw, rng), k2(kh * kw);
  for (int i = 0; i < kh; ++i)
    for (int j = 0; j < kw; ++j) k2[i * kw + j] = ky[i] * kx[j];
  for (Border b : kBorders) {
    const double cval = cval_of<T>();
    auto ref = [&](int64_t p, int y, int x) {
      double sum = 0;
      for (int i = 0; i < kh; ++i)
        for (int j = 0; j < kw; ++j)
          sum += double(k2[i * kw + j]) * pixel(img, p, s.height, s.width, y + i - kh / 2, x + j - kw / 2, b, cval);
      return sum;
    };
    std::vector<T> out(img.size());
    CHECK(pydenoise::separable_filter_cpu(img.data(), out.data(), s, ky.data(), kh, kx.data(), kw, b, cval, 0),
          "separable reported non-finite input");
    const double e1 = max_error(out, s, ref);
    CHECK(e1 <= tolerance<T>(), "separable %dx%d on %dx%d, border %d: error %g", kh, kw, s.height, s.width, int(b), e1);
    CHECK(pydenoise::correlate2d_cpu(img.data(), out.data(), s, k2.data(), kh, kw, b, cval, 0),
          "correlate reported non-finite input");
    const double e2 = max_error(out, s, ref);
    CHECK(e2 <= tolerance<T>(), "correlate %dx%d on %dx%d, border %d: error %g", kh, kw, s.height, s.width, int(b), e2);
  }
}

template <typename T>
void test_median(PlaneStack s, int k, std::mt19937& rng) {
  const auto img = random_image<T>(s.planes * s.height * s.width, rng);
  for (Border b : kBorders) {
    const double cval = cval_of<T>();
    auto ref = [&](int64_t p, int y, int x) {
      std::vector<double> w;
      for (int i = 0; i < k; ++i)
        for (int j = 0; j < k; ++j)
          w.push_back(pixel(img, p, s.height, s.width, y + i - k / 2, x + j - k / 2, b, cval));
      std::nth_element(w.begin(), w.begin() + w.size() / 2, w.end());
      return w[w.size() / 2];
    };
    std::vector<T> out(img.size());
    CHECK(pydenoise::median_filter_cpu(img.data(), out.data(), s, k, b, cval, 0), "median: non-finite reported");
    const double e = max_error(out, s, ref);
    CHECK(e == 0, "median %d on %dx%d, border %d: error %g", k, s.height, s.width, int(b), e);
  }
}

void test_bilateral(int channels, int H, int W, int radius, std::mt19937& rng) {
  const PlaneStack s{2 * channels, H, W};
  const auto img = random_image<float>(s.planes * H * W, rng);
  const float sigma_color = 0.7f, sigma_space = 1.6f;
  for (Border b : kBorders) {
    std::vector<float> out(img.size());
    CHECK(pydenoise::bilateral_filter_cpu(img.data(), out.data(), 2, channels, H, W, radius, sigma_color, sigma_space,
                                          b, kCval, 0),
          "bilateral: non-finite reported");
    for (int c = 0; c < channels; ++c) {
      auto ref = [&](int64_t n, int y, int x) {
        auto at = [&](int ch, int yy, int xx) { return pixel(img, n * channels + ch, H, W, yy, xx, b, kCval); };
        double sum = 0, wsum = 0;
        for (int i = -radius; i <= radius; ++i)
          for (int j = -radius; j <= radius; ++j) {
            if (i * i + j * j > radius * radius) continue;
            double d = 0;
            for (int ch = 0; ch < channels; ++ch) d += std::fabs(at(ch, y + i, x + j) - at(ch, y, x));
            const double w = std::exp(-(i * i + j * j) / (2.0 * sigma_space * sigma_space) -
                                      d * d / (2.0 * sigma_color * sigma_color));
            sum += w * at(c, y + i, x + j);
            wsum += w;
          }
        return sum / wsum;
      };
      std::vector<float> plane_out;
      for (int n = 0; n < 2; ++n)
        plane_out.insert(plane_out.end(), out.begin() + ((n * channels + c) * H) * W,
                         out.begin() + ((n * channels + c + 1) * H) * W);
      const double e = max_error(plane_out, PlaneStack{2, H, W}, [&](int64_t n, int y, int x) { return ref(n, y, x); });
      CHECK(e < 1e-4, "bilateral C=%d r=%d on %dx%d, border %d: error %g", channels, radius, H, W, int(b), e);
    }
  }
}

void test_nonfinite(std::mt19937& rng) {
  const PlaneStack s{1, 9, 40};
  auto img = random_image<float>(9 * 40, rng);
  img[5 * 40 + 33] = std::nanf("");
  std::vector<float> out(img.size());
  const float k3[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}, k1[3] = {0, 1, 0};
  CHECK(!pydenoise::separable_filter_cpu(img.data(), out.data(), s, k1, 3, k1, 3, Border::kReflect101, 0, 0),
        "separable missed a NaN");
  CHECK(!pydenoise::correlate2d_cpu(img.data(), out.data(), s, k3, 3, 3, Border::kReflect101, 0, 0),
        "correlate missed a NaN");
  CHECK(!pydenoise::median_filter_cpu(img.data(), out.data(), s, 3, Border::kReflect101, 0, 0), "median missed a NaN");
  img[5 * 40 + 33] = INFINITY;
  CHECK(!pydenoise::bilateral_filter_cpu(img.data(), out.data(), 1, 1, 9, 40, 2, 1, 1, Border::kReflect101, 0, 0),
        "bilateral missed an Inf");
}

void test_border_index() {
  // Row "abcd" (0 1 2 3), outside positions -3..-1 and 4..6.
  const int expected[4][6] = {{3, 2, 1, 2, 1, 0},   // reflect101: dcb|abcd|cba
                              {2, 1, 0, 3, 2, 1},   // reflect:    cba|abcd|dcb
                              {0, 0, 0, 3, 3, 3},   // replicate
                              {1, 2, 3, 0, 1, 2}};  // wrap
  const int where[6] = {-3, -2, -1, 4, 5, 6};
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < 6; ++i) {
      const int got = pydenoise::border_index(where[i], 4, Border(b));
      CHECK(got == expected[b][i], "border %d at %d: %d, expected %d", b, where[i], got, expected[b][i]);
    }
  CHECK(pydenoise::border_index(-1, 4, Border::kConstant) == -1, "constant border must read the constant");
  CHECK(pydenoise::border_index(-5, 1, Border::kReflect101) == 0, "a single pixel reflects onto itself");
}

void check_all_cases(std::mt19937& rng) {
  const PlaneStack shapes[] = {{2, 37, 45}, {1, 5, 70}, {3, 1, 1}, {1, 4, 6}, {1, 1, 50}};
  for (PlaneStack s : shapes) {
    for (auto [kh, kw] : {std::pair{3, 3}, {5, 7}, {1, 5}, {9, 3}}) {
      test_correlate_and_separable<float>(s, kh, kw, rng);
      test_correlate_and_separable<uint8_t>(s, kh, kw, rng);
    }
    for (int k : {3, 5, 7, 9}) {
      test_median<float>(s, k, rng);
      test_median<uint8_t>(s, k, rng);
    }
  }
  // Widths 41 and 70: pairs of vectors, then an overlapping last one (8 or 16 lanes); 5 and 12: scalar code
  // on the 16-lane path.
  for (int channels : {1, 3}) test_bilateral(channels, 23, 41, 3, rng);
  test_bilateral(4, 9, 70, 2, rng);
  test_bilateral(1, 7, 12, 2, rng);
  test_bilateral(2, 6, 5, 4, rng);
  test_nonfinite(rng);
}

}  // namespace

// Every row-kernel path this CPU runs, the lower ones forced.
int main() {
  std::mt19937 rng(7);
  test_border_index();
  const int best = static_cast<int>(pydenoise::cpu_best_path());
  for (int p = 0; p <= best; ++p) {
    CHECK(pydenoise::set_cpu_path(static_cast<pydenoise::CpuPath>(p)), "set_cpu_path(%d) refused", p);
    check_all_cases(rng);
    std::printf("test_filters: all cases passed on the %s path\n", pydenoise::cpu_path_name(pydenoise::cpu_path()));
  }
  return 0;
}
