// The trace denoiser's framing pipeline fused around the DDAE, so a streaming chunk costs one call:
// frames every `hop` samples -> divide each by its scale (its RMS, or one given) -> network (float32) ->
// scale back -> weight -> overlap-add. Torch-free, like ddae.h.
#pragma once

#include <cstdint>

#include "kernels/ddae.h"

namespace pydenoise {

// padded: `channels` rows of `length` samples (length >= window); frames start at 0, hop, 2*hop, ...
// out: `channels` rows of (frames - 1) * hop + window samples; on entry it holds the sums carried over from
// earlier frames (zeros otherwise), and each weighted denoised frame is added in place.
// frame_weights: `window` synthesis weights (with the overlap normaliser folded in).
// frame_scales: `channels` rows of `frames` numbers to divide the frames by (a noise-floor model's), or null
// for each frame's RMS. A frame with scale 0 (an all-zero frame) contributes zeros.
// T is float or double (scale and accumulation in T, network in float).
template <typename T>
void ddae_overlap_add_cpu(const DdaeNet& net, const T* padded, int64_t channels, int64_t length, int hop,
                          const T* frame_weights, const T* frame_scales, bool residual, T* out, int num_threads);

}  // namespace pydenoise
