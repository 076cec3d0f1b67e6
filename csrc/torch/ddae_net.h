// Validates the tensors of a ddae_forward call and turns them into the kernel's DdaeNet.
#pragma once

#include <ATen/ATen.h>

#include "kernels/ddae.h"

namespace pydenoise {

// Checks the weights' and biases' dtypes, shapes, contiguity and device, with errors that name the argument.
DdaeNet make_ddae_net(at::TensorList weights, at::TensorList biases, c10::Device device);

// make_ddae_net plus the frames: float32, (batch, window), on the weights' device.
DdaeNet make_ddae_net(const at::Tensor& frames, at::TensorList weights, at::TensorList biases);

// Row stride of `frames` when its rows are unit-stride (a strided view works without a copy), else -1.
int64_t frame_row_stride(const at::Tensor& frames);

}  // namespace pydenoise
