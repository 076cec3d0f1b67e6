"""The second stage of the patch denoiser: an empirical Wiener filter in the DCT domain of overlapping patches.

BM3D's second step, less its block matching: the first stage's output (the patch DDAE's) is the *pilot*, an
estimate of the clean image good enough to tell, coefficient by coefficient, how much of the noisy image's
energy is signal. Every ``patch × patch`` block (every ``stride`` pixels) of the noisy image and of the pilot
is taken to the orthonormal 2-D DCT; each noisy coefficient ``Y`` is shrunk by ``w = P² / (P² + σ²)`` (``P``
the pilot's coefficient), the block taken back, and the blocks averaged where they overlap with the weight
``1 / Σ w²`` (BM3D's: a block that keeps little noise counts more). The DDAE's errors are not those of a
DCT shrinkage, so the two combine. Settings were chosen on eight of scikit-image's bundled pictures (the
model's training pictures and its validation picture ``coffee``, never a test image): 12×12 blocks every 3
pixels add 0.25 / 0.28 dB on average at σ = 15 / 50 (``coffee``: +0.36 / -0.03 dB); 8×8 blocks made smooth
pictures worse, 16×16 blocks every 2 pixels gained 0.1 dB more at six times the cost, and a Hann window on
the blocks (as the DDAE's patches have) gained less (+0.18 / +0.12 dB).
"""

from __future__ import annotations

import math

import torch

from pydenoise.image.patches import grid, pad_reflect101

__all__ = ["WIENER_PATCH", "WIENER_STRIDE", "dct_matrix", "empirical_wiener"]

WIENER_PATCH, WIENER_STRIDE = 12, 3
#: Blocks per band (bounds the memory of the unfolded blocks on large images).
BAND_BLOCKS = 16384


def dct_matrix(size: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """The orthonormal DCT-II matrix ``D`` (``D @ x`` transforms ``x``; ``D.T`` inverts it)."""
    n = torch.arange(size, dtype=torch.float64, device=device)
    matrix = torch.cos(math.pi * (n[None, :] + 0.5) * n[:, None] / size) * math.sqrt(2.0 / size)
    matrix[0] /= math.sqrt(2.0)
    return matrix.to(dtype)


def empirical_wiener(
    noisy: torch.Tensor, pilot: torch.Tensor, sigma: float, patch: int = WIENER_PATCH, stride: int = WIENER_STRIDE
) -> torch.Tensor:
    """Shrink ``noisy``'s block-DCT coefficients by the Wiener gains of ``pilot``'s (see the module doc).

    Parameters
    ----------
    noisy, pilot : torch.Tensor
        ``(C, H, W)`` float, the same shape; channels are filtered independently.
    sigma : float
        Noise standard deviation, positive, in the images' units.
    patch, stride : int
        Block side and the pixels between blocks (``1 <= stride <= patch``).

    Returns
    -------
    torch.Tensor
        ``(C, H, W)`` in ``noisy``'s dtype. Reflect101 borders: every pixel is covered by the same blocks.

    Examples
    --------
    >>> import torch
    >>> clean = torch.linspace(0, 1, 40).repeat(1, 40, 1)
    >>> out = empirical_wiener(clean + 0.1 * torch.randn(1, 40, 40), clean, 0.1)
    >>> float((out - clean).pow(2).mean()) < 0.1**2 / 4
    True
    """
    if noisy.shape != pilot.shape or noisy.dim() != 3:
        raise ValueError(f"noisy and pilot must both be (C, H, W), got {tuple(noisy.shape)} and {tuple(pilot.shape)}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if not 1 <= stride <= patch:
        raise ValueError(f"stride must lie in 1..{patch} (the block side), got {stride}")
    channels, height, width = noisy.shape
    rows, top, bottom = grid(height, stride, patch)
    cols, left, right = grid(width, stride, patch)
    padded = [pad_reflect101(image.float(), top, bottom, left, right) for image in (noisy, pilot)]
    transform = dct_matrix(patch, torch.float32, noisy.device)
    summed = torch.zeros_like(padded[0])
    weights = torch.zeros_like(padded[0])
    band_rows = max(1, BAND_BLOCKS // (cols * channels))
    for first in range(0, rows, band_rows):
        count = min(band_rows, rows - first)
        y0, band_height = first * stride, (count - 1) * stride + patch
        blocks = [_blocks(image[:, y0 : y0 + band_height], stride, patch) for image in padded]
        spectra = [transform @ block @ transform.T for block in blocks]  # (C, rows, cols, patch, patch)
        gain = spectra[1].square() / (spectra[1].square() + sigma**2)
        estimate = transform.T @ (gain * spectra[0]) @ transform
        weight = 1.0 / gain.square().sum(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
        summed[:, y0 : y0 + band_height] += _fold(estimate * weight, band_height, stride, patch)
        weights[:, y0 : y0 + band_height] += _fold(weight.expand_as(estimate), band_height, stride, patch)
    out = summed / weights
    return out[:, top : top + height, left : left + width].to(noisy.dtype)


def _blocks(band: torch.Tensor, stride: int, patch: int) -> torch.Tensor:
    """``(C, rows, cols, patch, patch)`` blocks of a ``(C, h, W)`` band (a copy)."""
    return band.unfold(1, patch, stride).unfold(2, patch, stride).contiguous()


def _fold(blocks: torch.Tensor, band_height: int, stride: int, patch: int) -> torch.Tensor:
    """Sum ``(C, rows, cols, patch, patch)`` blocks back onto a ``(C, band_height, W)`` band."""
    import torch.nn.functional as F

    channels, rows, cols = blocks.shape[:3]
    width = (cols - 1) * stride + patch
    columns = blocks.permute(0, 3, 4, 1, 2).reshape(channels, patch * patch, rows * cols)
    return F.fold(columns, (band_height, width), patch, stride=stride)[:, 0]
