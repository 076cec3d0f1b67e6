"""Shared fixtures: small random networks and a CUDA marker that skips cleanly without a GPU."""

import pytest
import torch

import pydenoise

requires_cuda = pytest.mark.skipif(
    not (pydenoise.info()["cuda_kernels"] and torch.cuda.is_available()),
    reason="needs a CUDA GPU and pydenoise built with CUDA kernels",
)


def random_ddae(widths=pydenoise.nn.DEFAULT_WIDTHS, residual=False, seed=0):
    """A DDAE with random (but well-scaled) weights and non-zero biases, in eval mode."""
    torch.manual_seed(seed)
    net = pydenoise.nn.DDAE(widths, residual=residual)
    with torch.no_grad():
        for layer in net.layers:
            layer.bias.uniform_(-0.1, 0.1)
    return net.eval()
