"""Quality metrics, defined once for the whole project (benchmarks and tests use these).

Traces: :func:`snr` and :func:`si_sdr`. Images: :func:`psnr` and :func:`ssim`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["snr", "si_sdr"]


def _pair(reference, estimate) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(f"reference and estimate shapes differ: {reference.shape} vs {estimate.shape}")
    if reference.size == 0:
        raise ValueError("reference is empty")
    if not (np.isfinite(reference).all() and np.isfinite(estimate).all()):
        raise ValueError("reference and estimate must be finite (no NaN or Inf)")
    return reference, estimate


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
    reference, estimate = _pair(reference, estimate)
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
    reference, estimate = _pair(reference, estimate)
    reference = reference.ravel() - reference.mean()
    estimate = estimate.ravel() - estimate.mean()
    energy = np.dot(reference, reference)
    if energy == 0:
        raise ValueError("reference has zero energy: SI-SDR is undefined")
    target = (np.dot(estimate, reference) / energy) * reference
    distortion = np.sum((estimate - target) ** 2)
    return float("inf") if distortion == 0 else float(10.0 * np.log10(np.sum(target**2) / distortion))
