// CUDA implementation of pydenoise::ddae_forward: checks, then one launch of the fused kernel on the current
// stream. Nothing is moved between devices: every tensor must already be on the frames' GPU.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <vector>

#include "torch/ddae_net.h"

namespace pydenoise {
namespace {

// WMMA fragment loads need 32-byte aligned weight rows; a weight view at an odd storage offset is copied.
constexpr uintptr_t kWmmaAlignment = 32;

at::Tensor ddae_forward_cuda_op(const at::Tensor& frames_in, at::TensorList weights, at::TensorList biases,
                                bool residual, bool allow_tf32, std::optional<at::TensorList> packed_weights) {
  TORCH_CHECK_VALUE(!packed_weights.has_value(),
                    "ddae_forward: packed_weights are for the CPU kernel; the CUDA "
                    "kernel streams the weights as they are");
  DdaeNet net = make_ddae_net(frames_in, weights, biases);
  const c10::cuda::CUDAGuard guard(frames_in.device());
  std::vector<at::Tensor> aligned_copies;
  for (int l = 0; l < net.num_layers; ++l) {
    if (reinterpret_cast<uintptr_t>(net.weights[l]) % kWmmaAlignment != 0) {
      aligned_copies.push_back(weights[l].clone());
      net.weights[l] = aligned_copies.back().data_ptr();
    }
  }
  const at::Tensor frames = frame_row_stride(frames_in) < 0 ? frames_in.contiguous() : frames_in;
  at::Tensor out = at::empty({frames.size(0), net.window()}, frames.options());
  const char* error = ddae_forward_cuda(
      net, frames.data_ptr<float>(), frames.size(0), frame_row_stride(frames), residual, out.data_ptr<float>(),
      allow_tf32 ? CudaMath::kTF32 : CudaMath::kFloat32, at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(error[0] == '\0', "ddae_forward (CUDA): ", error);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pydenoise, CUDA, m) { m.impl("ddae_forward", &ddae_forward_cuda_op); }

}  // namespace pydenoise
