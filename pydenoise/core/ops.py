"""The fused DDAE custom op, its pure-torch reference, and its fake (meta) kernel.

``ddae_forward`` runs a whole stack of dense layers over a batch of windows in one call of the compiled
kernel (``torch.ops.pydenoise.ddae_forward``); it dispatches to the CPU or CUDA kernel by the frames' device
and works under ``torch.compile`` through the fake kernel registered here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from pydenoise.core import _C  # noqa: F401  (loading the extension registers torch.ops.pydenoise)

__all__ = ["ddae_forward", "ddae_reference", "ddae_overlap_add", "ddae_pack_weights", "cpu_paths", "cpu_path"]


def cpu_paths() -> list[str]:
    """The CPU kernel paths this machine runs, lowest first; the last is the default.

    ``"scalar"``, ``"avx2"`` (AVX2 + FMA), ``"avx512"`` (AVX-512 F/BW/DQ/VL) and ``"avx512_bf16"`` (bf16
    weights multiplied as bf16 by VDPBF16PS, float32 accumulation), detected once with cpuid. The environment
    variable ``PYDENOISE_CPU_PATH`` lowers the default for a whole process.
    """
    return list(_C.cpu_paths())


@contextlib.contextmanager
def cpu_path(name: str) -> Iterator[str]:
    """Run the CPU kernels with the path ``name`` (one of :func:`cpu_paths`) inside the block.

    For tests and benchmarks that compare paths on one machine; not thread-safe against kernels running in
    other threads.

    Examples
    --------
    >>> import pydenoise
    >>> with pydenoise.ops.cpu_path("scalar"):
    ...     pydenoise.info()["cpu_kernels"]
    'scalar'
    """
    previous = _C.cpu_path()
    _C.set_cpu_path(name)
    try:
        yield name
    finally:
        _C.set_cpu_path(previous)


def ddae_forward(
    frames: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    residual: bool = False,
    allow_tf32: bool = False,
    packed_weights: Sequence[torch.Tensor] | None = None,
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
        the kernel reads bf16 and accumulates in float32; on the ``avx512_bf16`` CPU path and on CUDA the
        activations are rounded to bf16 too). The last layer must output ``window`` values.
    residual : bool
        Return ``frames - f(frames)`` (noise-learning DAE) instead of ``f(frames)``.
    allow_tf32 : bool
        CUDA only: use tf32 tensor cores for float32 weights (fp32 accumulation, ~1e-3 relative accuracy).
    packed_weights : sequence of torch.Tensor, optional
        CPU only: :func:`ddae_pack_weights` of these ``weights``, made once for many calls, so that the kernel
        runs its panel tiles at every batch size without packing per call (as inference engines prepack
        constant weights). :class:`pydenoise.core.nn.DDAE` keeps them for its inference.

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
    packed = None if packed_weights is None else list(packed_weights)
    return torch.ops.pydenoise.ddae_forward(frames, list(weights), list(biases), residual, allow_tf32, packed)


def ddae_pack_weights(weights: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The CPU kernel's packed form of each weight matrix, for ``packed_weights`` of the fused ops.

    Float32 copies of ``W^T`` in panels of 16 output features (bfloat16 weights are widened, and followed by
    the same panels as bf16 pairs along K for the ``avx512_bf16`` path); a layer with fewer than 16 outputs
    gets an empty tensor. They go stale when the weights change: pack again.
    """
    return torch.ops.pydenoise.ddae_pack_weights(list(weights))


def _packed_floats(weight: torch.Tensor) -> int:
    panel_features = weight.shape[0] // 16 * 16
    pairs = panel_features * ((weight.shape[1] + 1) // 2) if weight.dtype == torch.bfloat16 else 0
    return panel_features * weight.shape[1] + pairs


@torch.library.register_fake("pydenoise::ddae_pack_weights")
def _ddae_pack_weights_fake(weights):
    return [w.new_empty((_packed_floats(w),), dtype=torch.float32) for w in weights]


def ddae_reference(
    frames: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    residual: bool = False,
) -> torch.Tensor:
    """Plain-torch reference of :func:`ddae_forward`, in the frames' dtype (use float64 for a true reference).

    Differentiable, so it is also the training path of :class:`pydenoise.core.nn.DDAE`.
    """
    hidden = frames
    last = len(weights) - 1
    for index, (weight, bias) in enumerate(zip(weights, biases)):
        hidden = torch.nn.functional.linear(hidden, weight.to(hidden.dtype), bias.to(hidden.dtype))
        if index < last:
            hidden = torch.relu(hidden)
    return frames - hidden if residual else hidden


def ddae_overlap_add(
    padded: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    residual: bool,
    hop: int,
    frame_weights: torch.Tensor,
    carry: torch.Tensor,
    packed_weights: Sequence[torch.Tensor] | None = None,
    frame_scales: torch.Tensor | None = None,
) -> torch.Tensor:
    """The trace denoiser's framing pipeline in one CPU call (what a streaming chunk costs).

    Frames of ``padded`` ``(channels, length)`` start every ``hop`` samples; each is divided by its scale, run
    through the network (float32), scaled back, multiplied by ``frame_weights`` ``(window,)`` and
    overlap-added. Returns ``(channels, (K - 1) * hop + window)`` for ``K`` frames, whose first
    ``window - hop`` samples start from ``carry``. A frame's scale is its RMS, or ``frame_scales[c, k]``
    ``(channels, K)`` if given (a noise-floor model's :func:`~pydenoise.core.frames.normalisation_scale`).
    ``padded``, ``frame_weights``, ``carry`` and ``frame_scales`` share a dtype (float32 or float64, in which
    scales and sums are computed); given scales must be >= 0. A frame of scale 0 (all zeros) contributes zeros.
    ``packed_weights``: as in :func:`ddae_forward`.
    :meth:`pydenoise.Denoiser.denoise_overlap_add` is the same function in plain torch (any device).
    """
    packed = None if packed_weights is None else list(packed_weights)
    return torch.ops.pydenoise.ddae_overlap_add(
        padded, list(weights), list(biases), residual, hop, frame_weights, carry, packed, frame_scales
    )


@torch.library.register_fake("pydenoise::ddae_overlap_add")
def _ddae_overlap_add_fake(
    padded, weights, biases, residual, hop, frame_weights, carry, packed_weights=None, frame_scales=None
):
    window = weights[0].shape[1]
    torch._check(padded.dim() == 2 and padded.shape[1] >= window, lambda: "ddae_overlap_add: padded too short")
    frames = (padded.shape[1] - window) // hop + 1
    return padded.new_empty((padded.shape[0], (frames - 1) * hop + window))


@torch.library.register_fake("pydenoise::ddae_forward")
def _ddae_forward_fake(frames, weights, biases, residual=False, allow_tf32=False, packed_weights=None):
    torch._check(frames.dim() == 2, lambda: f"ddae_forward: frames must be 2-D, got {frames.dim()}-D")
    torch._check(frames.dtype == torch.float32, lambda: f"ddae_forward: frames must be float32, got {frames.dtype}")
    torch._check(len(weights) == len(biases), lambda: "ddae_forward: as many biases as weights are needed")
    for index, tensor in enumerate([*weights, *biases]):
        torch._check(
            tensor.device == frames.device,
            lambda: (
                f"ddae_forward: weights and biases must be on the frames' device {frames.device}, "
                f"tensor {index} is on {tensor.device}"
            ),
        )
    window = weights[0].shape[1]
    torch._check(frames.shape[1] == window, lambda: f"ddae_forward: frames must have {window} columns")
    return frames.new_empty((frames.shape[0], window))
