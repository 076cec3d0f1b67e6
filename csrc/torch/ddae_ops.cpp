// pydenoise::ddae_forward: schema, input checks and the CPU implementation.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "kernels/ddae_frames.h"
#include "torch/ddae_net.h"

namespace pydenoise {

DdaeNet make_ddae_net(at::TensorList weights, at::TensorList biases, c10::Device device) {
  const auto layers = static_cast<int>(weights.size());
  TORCH_CHECK_VALUE(layers >= 1 && layers <= kMaxDdaeLayers, "ddae_forward: expected 1 to ", kMaxDdaeLayers,
                    " weight matrices, got ", layers);
  TORCH_CHECK_VALUE(biases.size() == weights.size(), "ddae_forward: got ", weights.size(), " weights but ",
                    biases.size(), " biases");
  DdaeNet net;
  net.num_layers = layers;
  net.weight_type = weights[0].scalar_type() == at::kBFloat16 ? WeightType::kBFloat16 : WeightType::kFloat32;
  net.widths[0] = static_cast<int>(weights[0].dim() == 2 ? weights[0].size(1) : -1);
  for (int l = 0; l < layers; ++l) {
    const at::Tensor& w = weights[l];
    const at::Tensor& b = biases[l];
    TORCH_CHECK_TYPE(w.scalar_type() == weights[0].scalar_type() &&
                         (w.scalar_type() == at::kFloat || w.scalar_type() == at::kBFloat16),
                     "ddae_forward: weights must all be float32 or all bfloat16; weights[", l, "] is ",
                     w.scalar_type());
    TORCH_CHECK_TYPE(b.scalar_type() == at::kFloat, "ddae_forward: biases must be float32; biases[", l, "] is ",
                     b.scalar_type());
    TORCH_CHECK_VALUE(w.device() == device && b.device() == device, "ddae_forward: weights[", l, "] and biases[", l,
                      "] must be on the frames' device ", device, ", got ", w.device(), " and ", b.device());
    TORCH_CHECK_VALUE(w.dim() == 2 && w.size(1) == net.widths[l], "ddae_forward: weights[", l,
                      "] must have shape (out, ", net.widths[l], "), got ", w.sizes());
    TORCH_CHECK_VALUE(b.dim() == 1 && b.size(0) == w.size(0), "ddae_forward: biases[", l, "] must have shape (",
                      w.size(0), "), got ", b.sizes());
    TORCH_CHECK_VALUE(w.is_contiguous() && b.is_contiguous(), "ddae_forward: weights[", l, "] and biases[", l,
                      "] must be contiguous");
    net.widths[l + 1] = static_cast<int>(w.size(0));
    net.weights[l] = w.data_ptr();
    net.biases[l] = b.data_ptr<float>();
  }
  TORCH_CHECK_VALUE(net.widths[layers] == net.widths[0], "ddae_forward: the last layer must output the window (",
                    net.widths[0], " values), got ", net.widths[layers]);
  return net;
}

DdaeNet make_ddae_net(const at::Tensor& frames, at::TensorList weights, at::TensorList biases) {
  TORCH_CHECK_TYPE(frames.scalar_type() == at::kFloat, "ddae_forward: frames must be float32, got ",
                   frames.scalar_type());
  TORCH_CHECK_VALUE(frames.dim() == 2, "ddae_forward: frames must be 2-D (batch, window), got shape ", frames.sizes());
  const DdaeNet net = make_ddae_net(weights, biases, frames.device());
  TORCH_CHECK_VALUE(frames.size(1) == net.window(), "ddae_forward: frames must have ", net.window(),
                    " columns (the network's window), got shape ", frames.sizes());
  return net;
}

void attach_packed_weights(DdaeNet& net, const std::optional<at::TensorList>& packed) {
  if (!packed.has_value()) return;
  TORCH_CHECK_VALUE(static_cast<int>(packed->size()) == net.num_layers, "ddae_forward: packed_weights must hold ",
                    net.num_layers, " tensors (one per layer, from ddae_pack_weights), got ", packed->size());
  for (int l = 0; l < net.num_layers; ++l) {
    const at::Tensor& p = (*packed)[l];
    const int64_t expected = ddae_packed_floats(net.widths[l], net.widths[l + 1], net.weight_type);
    TORCH_CHECK_VALUE(p.device().is_cpu() && p.scalar_type() == at::kFloat && p.dim() == 1 && p.numel() == expected &&
                          p.is_contiguous(),
                      "ddae_forward: packed_weights[", l, "] must be the CPU float32 (", expected,
                      ",) tensor ddae_pack_weights makes for weights[", l, "], got ", p.scalar_type(), " ", p.sizes(),
                      " on ", p.device());
    net.packed[l] = p.data_ptr<float>();
  }
  net.prepacked = true;
}

int64_t frame_row_stride(const at::Tensor& frames) {
  if (frames.size(0) <= 1) return frames.size(1);
  // Overlapping rows (stride < window, e.g. unfold with a hop) are fine: the kernels only read frames.
  if (frames.stride(1) == 1 && frames.stride(0) >= 1) return frames.stride(0);
  return -1;
}

namespace {

std::vector<at::Tensor> ddae_pack_weights_op(at::TensorList weights) {
  std::vector<at::Tensor> packed;
  for (size_t l = 0; l < weights.size(); ++l) {
    const at::Tensor& w = weights[l];
    TORCH_CHECK_VALUE(w.device().is_cpu() && w.dim() == 2 && w.is_contiguous(), "ddae_pack_weights: weights[", l,
                      "] must be a contiguous 2-D CPU tensor, got ", w.sizes(), " on ", w.device());
    TORCH_CHECK_TYPE(w.scalar_type() == at::kFloat || w.scalar_type() == at::kBFloat16, "ddae_pack_weights: weights[",
                     l, "] must be float32 or bfloat16, got ", w.scalar_type());
    const int in_features = static_cast<int>(w.size(1));
    const int out_features = static_cast<int>(w.size(0));
    const WeightType type = w.scalar_type() == at::kBFloat16 ? WeightType::kBFloat16 : WeightType::kFloat32;
    packed.push_back(at::empty({ddae_packed_floats(in_features, out_features, type)}, w.options().dtype(at::kFloat)));
    ddae_pack_weights(w.data_ptr(), type, in_features, out_features, packed.back().data_ptr<float>());
  }
  return packed;
}

at::Tensor ddae_forward_cpu_op(const at::Tensor& frames_in, at::TensorList weights, at::TensorList biases,
                               bool residual, bool allow_tf32, std::optional<at::TensorList> packed_weights) {
  (void)allow_tf32;  // CUDA only: the CPU paths choose their math from the weight type (ddae_cpu_avx512.cpp)
  TORCH_CHECK_VALUE(frames_in.device().is_cpu(), "ddae_forward: frames must be on the CPU for this kernel");
  DdaeNet net = make_ddae_net(frames_in, weights, biases);
  attach_packed_weights(net, packed_weights);
  const at::Tensor frames = frame_row_stride(frames_in) < 0 ? frames_in.contiguous() : frames_in;
  at::Tensor out =
      at::empty({frames.size(0), net.window()}, frames.options().memory_format(at::MemoryFormat::Contiguous));
  ddae_forward_cpu(net, frames.data_ptr<float>(), frames.size(0), frame_row_stride(frames), residual,
                   out.data_ptr<float>(), at::get_num_threads());
  return out;
}

at::Tensor ddae_overlap_add_cpu_op(const at::Tensor& padded_in, at::TensorList weights, at::TensorList biases,
                                   bool residual, int64_t hop, const at::Tensor& frame_weights, const at::Tensor& carry,
                                   std::optional<at::TensorList> packed_weights,
                                   const std::optional<at::Tensor>& frame_scales) {
  TORCH_CHECK_VALUE(padded_in.device().is_cpu(), "ddae_overlap_add: padded must be on the CPU");
  TORCH_CHECK_TYPE(padded_in.scalar_type() == at::kFloat || padded_in.scalar_type() == at::kDouble,
                   "ddae_overlap_add: padded must be float32 or float64, got ", padded_in.scalar_type());
  TORCH_CHECK_VALUE(padded_in.dim() == 2, "ddae_overlap_add: padded must be 2-D (channels, samples), got shape ",
                    padded_in.sizes());
  DdaeNet net = make_ddae_net(weights, biases, padded_in.device());
  attach_packed_weights(net, packed_weights);
  const int64_t window = net.window();
  TORCH_CHECK_VALUE(hop >= 1 && hop <= window && window % hop == 0, "ddae_overlap_add: hop must divide the window (",
                    window, "), got ", hop);
  TORCH_CHECK_VALUE(padded_in.size(1) >= window, "ddae_overlap_add: padded must hold at least one window (", window,
                    " samples), got ", padded_in.size(1));
  TORCH_CHECK_VALUE(frame_weights.dim() == 1 && frame_weights.size(0) == window &&
                        frame_weights.scalar_type() == padded_in.scalar_type(),
                    "ddae_overlap_add: frame_weights must be (", window, ",) of the padded dtype");
  const int64_t channels = padded_in.size(0);
  TORCH_CHECK_VALUE(carry.dim() == 2 && carry.size(0) == channels && carry.size(1) == window - hop &&
                        carry.scalar_type() == padded_in.scalar_type(),
                    "ddae_overlap_add: carry must be (", channels, ", ", window - hop, ") of the padded dtype, got ",
                    carry.sizes());
  const at::Tensor padded = padded_in.contiguous();
  const at::Tensor weights_1d = frame_weights.contiguous();
  const int64_t frames = (padded.size(1) - window) / hop + 1;
  at::Tensor scales;  // undefined: each frame's RMS
  if (frame_scales.has_value()) {
    const at::Tensor& given = *frame_scales;
    TORCH_CHECK_VALUE(given.dim() == 2 && given.size(0) == channels && given.size(1) == frames &&
                          given.scalar_type() == padded_in.scalar_type(),
                      "ddae_overlap_add: frame_scales must be (", channels, ", ", frames,
                      ") of the padded dtype (one per frame), got ", given.sizes());
    scales = given.contiguous();
  }
  at::Tensor out = at::zeros({channels, (frames - 1) * hop + window}, padded.options());
  out.narrow(1, 0, window - hop).copy_(carry);
  AT_DISPATCH_FLOATING_TYPES(padded.scalar_type(), "ddae_overlap_add", [&] {
    const scalar_t* scale_values = scales.defined() ? scales.data_ptr<scalar_t>() : nullptr;
    TORCH_CHECK_VALUE(scale_values == nullptr || std::all_of(scale_values, scale_values + scales.numel(),
                                                             [](scalar_t value) { return value >= 0; }),
                      "ddae_overlap_add: frame_scales must be >= 0 (no NaN)");
    ddae_overlap_add_cpu<scalar_t>(net, padded.data_ptr<scalar_t>(), channels, padded.size(1), static_cast<int>(hop),
                                   weights_1d.data_ptr<scalar_t>(), scale_values, residual, out.data_ptr<scalar_t>(),
                                   at::get_num_threads());
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(pydenoise, m) {
  m.def(
      "ddae_forward(Tensor frames, Tensor[] weights, Tensor[] biases, bool residual=False, "
      "bool allow_tf32=False, Tensor[]? packed_weights=None) -> Tensor");
  m.def(
      "ddae_overlap_add(Tensor padded, Tensor[] weights, Tensor[] biases, bool residual, int hop, "
      "Tensor frame_weights, Tensor carry, Tensor[]? packed_weights=None, Tensor? frame_scales=None) -> Tensor");
  m.def("ddae_pack_weights(Tensor[] weights) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(pydenoise, CPU, m) {
  m.impl("ddae_forward", &ddae_forward_cpu_op);
  m.impl("ddae_overlap_add", &ddae_overlap_add_cpu_op);
  m.impl("ddae_pack_weights", &ddae_pack_weights_op);
}

}  // namespace pydenoise
