"""Quality metrics, defined once for the whole project (benchmarks and tests use these).

Traces: :func:`snr` and :func:`si_sdr`. Images: :func:`psnr` and :func:`ssim`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["snr", "si_sdr"]


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
