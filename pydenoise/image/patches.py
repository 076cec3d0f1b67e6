"""Overlapping image patches for the patch denoiser: grid, reflect101 borders, normalisation, weighted folding.

The same fused DDAE op that denoises 256-sample trace windows denoises 16×16 image patches (16·16 = 256).
This module holds the machinery around it, shared by inference (:func:`pydenoise.image.learned.denoise`) and
training (:mod:`pydenoise.image.train`), so that both normalise patches the same way:

* **grid** — patches of ``patch × patch`` pixels placed every ``stride`` pixels; the image is padded with
  ``patch - stride`` reflect101 pixels before (and enough after) so every pixel is covered by the same
  number of patches when the stride divides the patch;
* **normalisation** — each noisy patch has its own mean removed and is divided by the noise level σ, so the
  network always sees unit-variance noise; a model is then independent of the image's units and of σ
  itself up to the contrast of the content (see :func:`normalise`);
* **folding** — denoised patches are weighted by a separable Hann window (centres are estimated better than
  edges) and averaged: summed with :func:`torch.nn.functional.fold`, divided by the summed weights.

Patches are processed in bands of patch rows, so memory stays bounded on large images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from pydenoise.core.frames import synthesis_window

__all__ = [
    "PATCH",
    "reflect101_index",
    "pad_reflect101",
    "grid",
    "normalise",
    "denormalise",
    "patch_weights",
    "map_patches",
]

#: Patch side: 16·16 = 256 pixels, the fused op's window.
PATCH = 16

#: Patches handed to the network per call (bounds the memory of the unfolded band).
BAND_PATCHES = 32768


def reflect101_index(size: int, before: int, after: int, device=None) -> torch.Tensor:
    """Source indices of a reflect101 padding (``dcb|abcd|cba``) of a length-``size`` axis, any pad width.

    Pads wider than the axis reflect again (the sequence is periodic with period ``2 (size - 1)``), so even a
    2-pixel image can be padded by 15; a 1-pixel axis repeats its pixel.

    Examples
    --------
    >>> reflect101_index(4, 3, 2).tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1]
    """
    positions = torch.arange(-before, size + after, device=device)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    folded = positions.remainder(period)
    return torch.where(folded < size, folded, period - folded)


def pad_reflect101(image: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Pad the last two axes of ``image`` with reflect101 borders of any width (gathers, no copies per pad)."""
    rows = reflect101_index(image.shape[-2], top, bottom, image.device)
    cols = reflect101_index(image.shape[-1], left, right, image.device)
    return image.index_select(-2, rows).index_select(-1, cols)


def grid(size: int, stride: int, patch: int = PATCH) -> tuple[int, int, int]:
    """Patch grid along one axis: ``(count, pad_before, pad_after)``.

    ``pad_before = patch - stride`` and ``count * stride >= pad_before + size``, so every pixel is covered by
    ``patch // stride`` patches when the stride divides the patch (``ceil`` or ``floor`` of it otherwise).
    """
    before = patch - stride
    count = -(-(before + size) // stride)
    after = (count - 1) * stride + patch - before - size
    return count, before, after


def normalise(patches: torch.Tensor, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove each patch's mean and divide by the noise level: ``z = (y - mean(y)) / σ``.

    Parameters
    ----------
    patches : torch.Tensor
        ``(B, patch * patch)`` noisy patches.
    sigma : float or torch.Tensor
        Noise standard deviation in the patches' units; a tensor broadcasts against ``(B, 1)`` (training
        draws one σ per patch).

    Returns
    -------
    (z, mean)
        The normalised patches (float32) and the means, for :func:`denormalise`.

    Examples
    --------
    >>> import torch
    >>> z, mean = normalise(torch.full((2, 256), 7.0) + torch.arange(256.0), 2.0)
    >>> float(z.mean()), float(mean[0, 0])
    (0.0, 134.5)
    """
    mean = patches.mean(dim=1, keepdim=True)
    return ((patches - mean) / sigma).to(torch.float32), mean


def denormalise(z: torch.Tensor, mean: torch.Tensor, sigma) -> torch.Tensor:
    """Inverse of :func:`normalise`: ``mean + σ z`` in the means' dtype."""
    return mean + z.to(mean.dtype) * sigma


def patch_weights(patch: int = PATCH, device=None, dtype=torch.float32) -> torch.Tensor:
    """Flattened ``patch × patch`` folding weights: the outer product of the half-sample-shifted Hann window."""
    window = torch.as_tensor(synthesis_window(patch), dtype=dtype, device=device)
    return torch.outer(window, window).reshape(-1)


def map_patches(
    image: torch.Tensor,
    fn: Callable[[torch.Tensor], torch.Tensor],
    stride: int,
    patch: int = PATCH,
) -> torch.Tensor:
    """Apply ``fn`` to every overlapping patch of ``image`` and fold the results back by weighted averaging.

    Parameters
    ----------
    image : torch.Tensor
        ``(C, H, W)`` float; channels are processed independently (all in the same batches).
    fn : callable
        Maps ``(B, patch * patch)`` patches of the image to ``(B, patch * patch)`` patches, same dtype.
    stride : int
        Pixels between neighbouring patches, ``1 <= stride <= patch``.

    Returns
    -------
    torch.Tensor
        ``(C, H, W)``: each pixel the Hann-weighted mean of its patches' outputs. An identity ``fn`` returns
        the image exactly (up to rounding), borders included.

    Examples
    --------
    >>> import torch
    >>> img = torch.rand(1, 40, 33, dtype=torch.float64)
    >>> torch.allclose(map_patches(img, lambda p: p, stride=4), img)
    True
    """
    channels, height, width = image.shape
    rows, top, bottom = grid(height, stride, patch)
    cols, left, right = grid(width, stride, patch)
    padded = pad_reflect101(image, top, bottom, left, right).contiguous()
    padded_width = padded.shape[-1]
    weights = patch_weights(patch, image.device, image.dtype)
    summed = torch.zeros_like(padded)
    band_rows = max(1, BAND_PATCHES // (cols * channels))
    for first in range(0, rows, band_rows):
        count = min(band_rows, rows - first)
        y0, band_height = first * stride, (count - 1) * stride + patch
        flat = _patch_view(padded[:, y0:], count, cols, stride, patch).reshape(-1, patch * patch)  # one copy
        out = (fn(flat) * weights).view(channels, -1, patch * patch).transpose(1, 2).contiguous()
        summed[:, y0 : y0 + band_height] += F.fold(out, (band_height, padded_width), patch, stride=stride)[:, 0]
    coverage = _coverage(rows, cols, stride, patch, padded.shape[-2:], padded)
    return summed[:, top : top + height, left : left + width] / coverage[top : top + height, left : left + width]


def _patch_view(band: torch.Tensor, rows: int, cols: int, stride: int, patch: int) -> torch.Tensor:
    """``(C, rows, cols, patch, patch)`` overlapping view of the patches of a contiguous ``(C, h, W)`` band."""
    channel_step, row_step = band.stride(0), band.stride(1)
    return band.as_strided(
        (band.shape[0], rows, cols, patch, patch),
        (channel_step, stride * row_step, stride, row_step, 1),
    )


def _coverage(rows: int, cols: int, stride: int, patch: int, shape, like: torch.Tensor) -> torch.Tensor:
    """Summed folding weights per padded pixel; separable, so the outer product of two 1-D overlap-adds."""
    window = torch.as_tensor(synthesis_window(patch), dtype=like.dtype, device=like.device)

    def overlap_add(count: int, length: int) -> torch.Tensor:
        return F.fold(window.repeat(count, 1).T.unsqueeze(0), (length, 1), (patch, 1), stride=(stride, 1)).reshape(-1)

    return torch.outer(overlap_add(rows, shape[0]), overlap_add(cols, shape[1]))
