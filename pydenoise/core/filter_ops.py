"""The 2D filter custom ops on (N, C, H, W) tensors, and their fake (meta) kernels.

These are the compiled kernels behind :mod:`pydenoise.image` (``torch.ops.pydenoise.*``); they dispatch to
the CPU or CUDA kernel by the image's device and work under ``torch.compile``. Images are float32 or uint8;
the result has the input's shape, dtype and device, uint8 results rounded
to nearest and saturated. Every op raises ``ValueError`` for an image holding NaN or Inf.

``border`` is one of ``"reflect101"`` (``dcb|abcd|cba``, OpenCV's default), ``"reflect"`` (``cba|abcd|dcb``),
``"replicate"``, ``"wrap"`` or ``"constant"`` (the value ``cval``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pydenoise.core import _C  # noqa: F401  (loading the extension registers torch.ops.pydenoise)

__all__ = ["separable_filter", "correlate2d", "median_filter", "bilateral_filter"]


def separable_filter(
    img: torch.Tensor,
    kernel_y: Sequence[float],
    kernel_x: Sequence[float],
    border: str = "reflect101",
    cval: float = 0.0,
) -> torch.Tensor:
    """Correlate every plane with the outer product ``kernel_y ⊗ kernel_x`` (two 1-D passes, float32 math).

    Examples
    --------
    >>> import torch
    >>> img = torch.arange(25.0).reshape(1, 1, 5, 5)
    >>> out = separable_filter(img, [1 / 3] * 3, [1 / 3] * 3)   # 3x3 mean
    >>> round(float(out[0, 0, 2, 2]), 4)
    12.0
    """
    return torch.ops.pydenoise.separable_filter(img, _floats(kernel_y), _floats(kernel_x), border, cval)


def _floats(values: Sequence[float]) -> list[float]:
    return values.tolist() if isinstance(values, np.ndarray) else [float(v) for v in values]


def correlate2d(img: torch.Tensor, kernel, border: str = "reflect101", cval: float = 0.0) -> torch.Tensor:
    """Correlate every plane with a small 2-D kernel (odd height and width), like OpenCV's ``filter2D``.

    Examples
    --------
    >>> import torch
    >>> img = torch.zeros(1, 1, 5, 5); img[0, 0, 2, 2] = 1
    >>> out = correlate2d(img, [[0, 0, 0], [0, 0, 1], [0, 0, 0]])
    >>> float(out[0, 0, 2, 1])   # correlation: the kernel is not flipped
    1.0
    """
    kernel = kernel.cpu().numpy() if isinstance(kernel, torch.Tensor) else kernel
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"correlate2d: kernel must be 2-D, got shape {kernel.shape}")
    return torch.ops.pydenoise.correlate2d(img, kernel.ravel().tolist(), list(kernel.shape), border, cval)


def median_filter(img: torch.Tensor, ksize: int, border: str = "reflect101", cval: float = 0.0) -> torch.Tensor:
    """Median of the ``ksize × ksize`` window of every pixel (``ksize`` odd).

    Examples
    --------
    >>> import torch
    >>> img = torch.zeros(1, 1, 5, 5); img[0, 0, 2, 2] = 9    # an isolated spike
    >>> float(median_filter(img, 3).abs().max())
    0.0
    """
    return torch.ops.pydenoise.median_filter(img, ksize, border, cval)


def bilateral_filter(
    img: torch.Tensor,
    radius: int,
    sigma_color: float,
    sigma_space: float,
    border: str = "reflect101",
    cval: float = 0.0,
) -> torch.Tensor:
    """Bilateral filter of (N, C, H, W) images with 1 to 4 channels, OpenCV's definition (float32 arithmetic).

    The support is the disc ``dy² + dx² ≤ radius²``; a neighbour weighs
    ``exp(-(dy² + dx²) / (2 sigma_space²)) · exp(-d² / (2 sigma_color²))`` with ``d`` the L1 distance between
    the colours of the two pixels (the sum over channels of the absolute differences).

    Examples
    --------
    >>> import torch
    >>> img = torch.zeros(1, 1, 8, 8); img[..., 4:] = 1       # a step edge
    >>> out = bilateral_filter(img, 2, sigma_color=0.1, sigma_space=2.0)
    >>> bool((out - img).abs().max() < 1e-6)                  # edges survive
    True
    """
    return torch.ops.pydenoise.bilateral_filter(img, radius, sigma_color, sigma_space, border, cval)


def _fake_image(op: str, img: torch.Tensor) -> torch.Tensor:
    torch._check(img.dtype in (torch.float32, torch.uint8), lambda: f"{op}: img must be float32 or uint8")
    torch._check(img.dim() == 4, lambda: f"{op}: img must be 4-D (N, C, H, W), got {img.dim()}-D")
    return torch.empty_like(img, memory_format=torch.contiguous_format)


@torch.library.register_fake("pydenoise::separable_filter")
def _separable_filter_fake(img, kernel_y, kernel_x, border="reflect101", cval=0.0):
    return _fake_image("separable_filter", img)


@torch.library.register_fake("pydenoise::correlate2d")
def _correlate2d_fake(img, kernel, kernel_size, border="reflect101", cval=0.0):
    return _fake_image("correlate2d", img)


@torch.library.register_fake("pydenoise::median_filter")
def _median_filter_fake(img, ksize, border="reflect101", cval=0.0):
    return _fake_image("median_filter", img)


@torch.library.register_fake("pydenoise::bilateral_filter")
def _bilateral_filter_fake(img, radius, sigma_color, sigma_space, border="reflect101", cval=0.0):
    return _fake_image("bilateral_filter", img)
