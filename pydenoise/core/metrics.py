"""Quality metrics, defined once for the whole project (benchmarks and tests use these).

Traces: :func:`snr` and :func:`si_sdr`. Images: :func:`psnr` and :func:`ssim`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["snr", "si_sdr", "psnr", "ssim"]


def checked_pair(first, second, names=("reference", "estimate")) -> tuple[np.ndarray, np.ndarray]:
    """Two signals as float64 arrays of one shape, non-empty and finite; ``names`` name them in the errors."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if first.shape != second.shape:
        raise ValueError(f"{names[0]} and {names[1]} shapes differ: {first.shape} vs {second.shape}")
    if first.size == 0:
        raise ValueError(f"{names[0]} is empty")
    if not (np.isfinite(first).all() and np.isfinite(second).all()):
        raise ValueError(f"{names[0]} and {names[1]} must be finite (no NaN or Inf)")
    return first, second


def snr(reference, estimate) -> float:
    """Signal-to-noise ratio of an estimate in dB: ``10·log10(Σ s² / Σ (s − ŝ)²)``.

    Parameters
    ----------
    reference : array_like
        The clean signal ``s``.
    estimate : array_like
        The estimate ``ŝ`` (a noisy or a denoised signal), same shape.

    Returns
    -------
    float
        dB; ``inf`` when the estimate is exact.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.sin(np.linspace(0, 20, 1000))
    >>> round(snr(s, s + 0.1 * s), 2)
    20.0
    """
    reference, estimate = checked_pair(reference, estimate)
    error = np.sum((reference - estimate) ** 2)
    power = np.sum(reference**2)
    if power == 0:
        raise ValueError("reference has zero energy: SNR is undefined")
    return float("inf") if error == 0 else float(10.0 * np.log10(power / error))


def si_sdr(reference, estimate) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), over the last axis flattened.

    Both signals are mean-removed; the reference is scaled by the least-squares gain onto the estimate.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.sin(np.linspace(0, 20, 1000))
    >>> round(si_sdr(s, 3.0 * s + 0.01 * np.cos(np.linspace(0, 99, 1000))), 1) > 30
    True
    """
    reference, estimate = checked_pair(reference, estimate)
    reference = reference.ravel() - reference.mean()
    estimate = estimate.ravel() - estimate.mean()
    energy = np.dot(reference, reference)
    if energy == 0:
        raise ValueError("reference has zero energy: SI-SDR is undefined")
    target = (np.dot(estimate, reference) / energy) * reference
    distortion = np.sum((estimate - target) ** 2)
    return float("inf") if distortion == 0 else float(10.0 * np.log10(np.sum(target**2) / distortion))


def _data_range(reference: np.ndarray, data_range, dtype) -> float:
    """The image's value range: required for float images, the dtype's range for integer ones."""
    if data_range is None:
        if not np.issubdtype(dtype, np.integer):
            raise ValueError(
                "data_range is required for float images (e.g. 1.0 for [0, 1] data, 255.0 for [0, 255]); "
                "guessing it is how PSNR tables end up 48 dB off"
            )
        info = np.iinfo(dtype)
        return float(info.max - info.min)
    if isinstance(data_range, bool) or not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    return float(data_range)


def psnr(reference, estimate, data_range=None) -> float:
    """Peak signal-to-noise ratio in dB: ``10·log10(data_range² / mean((r − x)²))``.

    Parameters
    ----------
    reference, estimate : array_like
        The clean image and an estimate of it, same shape.
    data_range : float
        The range the pixel values span (``max − min`` possible): 1.0 for images in [0, 1], 255 for 8-bit.
        Required for float images; defaults to the dtype's range for integer images.

    Returns
    -------
    float
        dB; ``inf`` when the estimate is exact.

    Examples
    --------
    >>> import numpy as np
    >>> clean = np.full((8, 8), 0.5)
    >>> round(psnr(clean, clean + 0.01, data_range=1.0), 2)
    40.0
    """
    dtype = np.asarray(reference).dtype
    reference, estimate = checked_pair(reference, estimate)
    peak = _data_range(reference, data_range, dtype)
    mse = np.mean((reference - estimate) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak**2 / mse))


def ssim(reference, estimate, data_range=None, channel_axis=None) -> float:
    """Structural similarity (Wang et al. 2004): Gaussian window σ = 1.5 (11×11), population covariance.

    Local means, variances and covariance are Gaussian-weighted averages (``K1 = 0.01``, ``K2 = 0.03``), read
    through a ``reflect`` border, and the SSIM map is averaged away from the 5-pixel border, as
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` does. Colour images: the mean over channels.

    Parameters
    ----------
    reference, estimate : array_like
        2-D images, or 3-D with ``channel_axis``; same shape, at least 11×11.
    data_range : float
        As for :func:`psnr`: required for float images.
    channel_axis : int, optional
        The colour axis of 3-D images.

    Returns
    -------
    float
        In [-1, 1]; 1 for identical images.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0, 1, 256).reshape(16, 16)
    >>> ssim(x, x, data_range=1.0)
    1.0
    """
    dtype = np.asarray(reference).dtype
    reference, estimate = checked_pair(reference, estimate)
    peak = _data_range(reference, data_range, dtype)
    if channel_axis is not None:
        if reference.ndim != 3:
            raise ValueError(f"channel_axis needs 3-D images, got shape {reference.shape}")
        reference = np.moveaxis(reference, channel_axis, 0)
        estimate = np.moveaxis(estimate, channel_axis, 0)
        return float(np.mean([_ssim_plane(r, e, peak) for r, e in zip(reference, estimate)]))
    if reference.ndim != 2:
        raise ValueError(f"ssim takes 2-D images (or 3-D with channel_axis), got shape {reference.shape}")
    return _ssim_plane(reference, estimate, peak)


_SSIM_SIGMA = 1.5
_SSIM_TRUNCATE = 3.5  # radius int(3.5 * 1.5 + 0.5) = 5: the 11×11 window


def _ssim_plane(x: np.ndarray, y: np.ndarray, peak: float) -> float:
    radius = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
    if min(x.shape) < 2 * radius + 1:
        raise ValueError(f"ssim needs images of at least {2 * radius + 1}×{2 * radius + 1}, got {x.shape}")

    def local_mean(image):
        return ndimage.gaussian_filter(image, _SSIM_SIGMA, mode="reflect", truncate=_SSIM_TRUNCATE)

    mx, my = local_mean(x), local_mean(y)
    vx = local_mean(x * x) - mx * mx
    vy = local_mean(y * y) - my * my
    cxy = local_mean(x * y) - mx * my
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    ssim_map = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map[radius:-radius, radius:-radius].mean())
