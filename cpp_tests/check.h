// Minimal test helpers for the C++ kernel tests (run by ctest): no framework, a failed CHECK exits non-zero.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#define CHECK(cond, ...)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fprintf(stderr, "\n");                                                   \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.f) {
  std::normal_distribution<float> normal(0.f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = normal(rng);
  return v;
}

// Standard normal floats, or uint8 levels uniform over 0..255: a test image of either pixel type.
template <typename T>
std::vector<T> random_image(size_t n, std::mt19937& rng) {
  std::vector<T> v(n);
  std::uniform_int_distribution<int> level(0, 255);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (auto& x : v) x = std::is_same_v<T, float> ? T(normal(rng)) : T(level(rng));
  return v;
}

// bf16 bit patterns of `values` by truncation: a float32 reference widened from them uses exactly these values.
inline std::vector<uint16_t> bf16_truncated(const std::vector<float>& values) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t word;
    std::memcpy(&word, &values[i], 4);
    bits[i] = uint16_t(word >> 16);
  }
  return bits;
}

// max |a - b| / max |b|
inline double relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::fmax(diff, std::fabs(a[i] - b[i]));
    ref = std::fmax(ref, std::fabs(b[i]));
  }
  return ref > 0 ? diff / ref : diff;
}

// sqrt(mean (a - b)^2 / mean b^2)
inline double rms_relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    ref += b[i] * b[i];
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}
