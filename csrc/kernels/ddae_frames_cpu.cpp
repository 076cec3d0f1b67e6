// Fused framing pipeline around the CPU DDAE (see ddae_frames.h).
#include <omp.h>

#include <cmath>
#include <vector>

#include "kernels/ddae_cpu_layer.h"
#include "kernels/ddae_frames.h"

namespace pydenoise {
namespace {

template <typename T>
T root_mean_square(const T* values, int count) {
  T sum_squares = 0;
  for (int j = 0; j < count; ++j) sum_squares += values[j] * values[j];
  return std::sqrt(sum_squares / count);
}

}  // namespace

template <typename T>
void ddae_overlap_add_cpu(const DdaeNet& net, const T* padded, int64_t channels, int64_t length, int hop,
                          const T* frame_weights, const T* frame_scales, bool residual, T* out, int num_threads) {
  const int window = net.window();
  const int64_t frames = (length - window) / hop + 1;
  const int64_t batch = channels * frames;
  const int64_t out_length = (frames - 1) * hop + window;
  // Kept across calls: a 20,000-channel packet needs ~60 MB of frames, which fresh vectors would zero and
  // page-fault in on every call.
  float* const normalised = detail::thread_buffer(static_cast<size_t>(batch) * window, detail::Scratch::kFramesIn);
  float* const denoised = detail::thread_buffer(static_cast<size_t>(batch) * window, detail::Scratch::kFramesOut);
  std::vector<T> scales(static_cast<size_t>(batch));

#pragma omp parallel for schedule(static) num_threads(num_threads) if (batch > 64)
  for (int64_t b = 0; b < batch; ++b) {
    const T* frame = padded + (b / frames) * length + (b % frames) * hop;
    const T scale = frame_scales != nullptr ? frame_scales[b] : root_mean_square(frame, window);
    const T inverse = scale > 0 ? T(1) / scale : T(0);  // an all-zero frame stays zero
    float* row = normalised + b * window;
    for (int j = 0; j < window; ++j) row[j] = static_cast<float>(frame[j] * inverse);
    scales[b] = scale;
  }

  ddae_forward_cpu(net, normalised, batch, window, residual, denoised, num_threads);

  // Frames of one channel overlap, so each channel's adds stay in one thread, in frame order.
#pragma omp parallel for schedule(static) num_threads(num_threads) if (channels > 1 && batch > 64)
  for (int64_t c = 0; c < channels; ++c) {
    T* row = out + c * out_length;
    for (int64_t k = 0; k < frames; ++k) {
      const int64_t b = c * frames + k;
      const float* values = denoised + b * window;
      T* target = row + k * hop;
      for (int j = 0; j < window; ++j) target[j] += static_cast<T>(values[j]) * scales[b] * frame_weights[j];
    }
  }
}

template void ddae_overlap_add_cpu<float>(const DdaeNet&, const float*, int64_t, int64_t, int, const float*,
                                          const float*, bool, float*, int);
template void ddae_overlap_add_cpu<double>(const DdaeNet&, const double*, int64_t, int64_t, int, const double*,
                                           const double*, bool, double*, int);

}  // namespace pydenoise
