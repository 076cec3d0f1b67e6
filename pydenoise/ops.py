"""The fused DDAE custom op, its pure-torch reference, and its fake (meta) kernel.

``ddae_forward`` runs a whole stack of dense layers over a batch of windows in one call of the compiled
kernel (``torch.ops.pydenoise.ddae_forward``); it dispatches to the CPU or CUDA kernel by the frames' device
and works under ``torch.compile`` through the fake kernel registered here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pydenoise import _C  # noqa: F401  (loading the extension registers torch.ops.pydenoise)

__all__ = ["ddae_forward", "ddae_reference"]


def ddae_forward(
    frames: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    residual: bool = False,
    allow_tf32: bool = False,
) -> torch.Tensor:
    """Run the dense autoencoder over a batch of windows with the fused kernel.

    Parameters
    ----------
    frames : torch.Tensor
        float32, shape ``(batch, window)``; rows must be unit-stride (any row stride, overlapping views from
        ``Tensor.unfold`` included, is read without a copy).
    weights, biases : sequence of torch.Tensor
        Layer ``l`` maps ``widths[l] -> widths[l+1]``: weight ``(widths[l+1], widths[l])`` as in
        ``torch.nn.Linear``, bias ``(widths[l+1],)`` float32. Weights are all float32, or all bfloat16 (then
        the kernel reads bf16 and accumulates in float32). The last layer must output ``window`` values.
    residual : bool
        Return ``frames - f(frames)`` (noise-learning DAE) instead of ``f(frames)``.
    allow_tf32 : bool
        CUDA only: use tf32 tensor cores for float32 weights (fp32 accumulation, ~1e-3 relative accuracy).

    Returns
    -------
    torch.Tensor
        float32 ``(batch, window)`` on the frames' device. Hidden layers use ReLU, the output is linear.

    Examples
    --------
    >>> import torch, pydenoise
    >>> net = pydenoise.nn.DDAE().eval()
    >>> x = torch.randn(8, 256)
    >>> y = pydenoise.ops.ddae_forward(x, net.weights(), net.biases())
    >>> torch.allclose(y, pydenoise.ops.ddae_reference(x, net.weights(), net.biases()), atol=1e-5)
    True
    """
    return torch.ops.pydenoise.ddae_forward(frames, list(weights), list(biases), residual, allow_tf32)


def ddae_reference(
    frames: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    residual: bool = False,
) -> torch.Tensor:
    """Plain-torch reference of :func:`ddae_forward`, in the frames' dtype (use float64 for a true reference).

    Differentiable, so it is also the training path of :class:`pydenoise.nn.DDAE`.
    """
    hidden = frames
    last = len(weights) - 1
    for index, (weight, bias) in enumerate(zip(weights, biases)):
        hidden = torch.nn.functional.linear(hidden, weight.to(hidden.dtype), bias.to(hidden.dtype))
        if index < last:
            hidden = torch.relu(hidden)
    return frames - hidden if residual else hidden


@torch.library.register_fake("pydenoise::ddae_forward")
def _ddae_forward_fake(frames, weights, biases, residual=False, allow_tf32=False):
    torch._check(frames.dim() == 2, lambda: f"ddae_forward: frames must be 2-D, got {frames.dim()}-D")
    torch._check(frames.dtype == torch.float32, lambda: f"ddae_forward: frames must be float32, got {frames.dtype}")
    torch._check(len(weights) == len(biases), lambda: "ddae_forward: as many biases as weights are needed")
    for index, tensor in enumerate([*weights, *biases]):
        torch._check(
            tensor.device == frames.device,
            lambda: f"ddae_forward: weights and biases must be on the frames' device {frames.device}, "
            f"tensor {index} is on {tensor.device}",
        )
    window = weights[0].shape[1]
    torch._check(frames.shape[1] == window, lambda: f"ddae_forward: frames must have {window} columns")
    return frames.new_empty((frames.shape[0], window))
