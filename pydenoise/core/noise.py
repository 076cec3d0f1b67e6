"""Noise generators for training and evaluation, and :func:`mix` to add noise at a chosen SNR.

Every generator returns float64 samples of the requested ``shape`` (an int, or a tuple whose last axis is
time), with unit standard deviation along the last axis where that makes sense, and takes ``rng``: a seed,
a :class:`numpy.random.Generator`, or None (fresh entropy). The same seed gives the same noise.

* :func:`white` — white Gaussian noise;
* :func:`coloured` — power spectrum ∝ 1/f^exponent; :func:`pink` (1/f) and :func:`brown` (1/f²);
* :func:`band_limited` — Gaussian noise confined to a frequency band;
* :func:`spikes` — impulsive noise: sparse spikes of heavy-tailed amplitude;
* :func:`mask` — the seeds' masking corruption: a fraction of the samples set to zero;
* :func:`from_recording` — segments cut at random from a real noise recording;
  :func:`pydenoise.seismic.noise.obspy_noise` loads the ambient-noise recordings bundled with ObsPy.
"""

from __future__ import annotations

import numpy as np

from pydenoise.core.metrics import checked_pair

__all__ = ["unit_rms", "white", "coloured", "pink", "brown", "band_limited", "spikes", "mask", "from_recording", "mix"]


def _shape(shape) -> tuple[int, ...]:
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    if not shape or any(int(n) != n or n < 1 for n in shape):
        raise ValueError(f"shape must be a positive int or a tuple of positive ints, got {shape!r}")
    return tuple(int(n) for n in shape)


def unit_rms(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit RMS along its last axis (all-zero rows stay zero)."""
    rms = np.sqrt(np.mean(x**2, axis=-1, keepdims=True))
    return x / np.where(rms > 0, rms, 1.0)


def white(shape, rng=None) -> np.ndarray:
    """White Gaussian noise, zero mean and unit variance.

    Examples
    --------
    >>> x = white((2, 1000), rng=0)
    >>> x.shape, bool(abs(x.std() - 1) < 0.1)
    ((2, 1000), True)
    """
    return np.random.default_rng(rng).standard_normal(_shape(shape))


def _shaped(shape, gain, rng) -> np.ndarray:
    """Gaussian noise whose amplitude spectrum is ``gain(frequency in cycles/sample)``, unit RMS per row."""
    shape = _shape(shape)
    spectrum = np.fft.rfft(white(shape, rng), axis=-1)
    frequency = np.fft.rfftfreq(shape[-1])
    return unit_rms(np.fft.irfft(spectrum * gain(frequency), n=shape[-1], axis=-1))


def coloured(shape, exponent: float, rng=None) -> np.ndarray:
    """Gaussian noise with power spectral density ∝ ``1 / f**exponent`` (0 white, 1 pink, 2 brown).

    The zero-frequency bin is removed (zero mean); each row has unit RMS.

    Examples
    --------
    >>> x = coloured(4096, exponent=1.0, rng=1)
    >>> bool(abs(np.sqrt(np.mean(x**2)) - 1) < 1e-9)
    True
    """
    if not np.isfinite(exponent):
        raise ValueError(f"exponent must be finite, got {exponent}")

    def gain(frequency):
        out = np.zeros_like(frequency)
        out[1:] = frequency[1:] ** (-exponent / 2.0)
        return out

    return _shaped(shape, gain, rng)


def pink(shape, rng=None) -> np.ndarray:
    """Pink (1/f) noise with unit RMS per row; see :func:`coloured`."""
    return coloured(shape, 1.0, rng)


def brown(shape, rng=None) -> np.ndarray:
    """Brown (1/f², random-walk-like) noise with unit RMS per row; see :func:`coloured`."""
    return coloured(shape, 2.0, rng)


def band_limited(shape, fmin: float, fmax: float, sample_rate: float, rng=None) -> np.ndarray:
    """Gaussian noise with a flat spectrum between ``fmin`` and ``fmax`` Hz and nothing outside; unit RMS.

    Examples
    --------
    >>> x = band_limited(1000, 1.0, 5.0, sample_rate=100.0, rng=0)
    >>> spectrum = np.abs(np.fft.rfft(x))
    >>> bool(spectrum[100:].max() < 1e-9 * spectrum.max())   # above 10 Hz: nothing
    True
    """
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate/2 = {sample_rate / 2}, got fmin={fmin}, fmax={fmax}")
    shape = _shape(shape)
    bins = np.fft.rfftfreq(shape[-1], d=1.0 / sample_rate)
    if not np.any((bins >= fmin) & (bins <= fmax)):
        raise ValueError(f"band {fmin}-{fmax} Hz holds no frequency bin of a {shape[-1]}-sample signal")
    return _shaped(shape, lambda f: ((f * sample_rate >= fmin) & (f * sample_rate <= fmax)).astype(float), rng)


def spikes(shape, rate: float, rng=None) -> np.ndarray:
    """Impulsive noise: each sample is a spike with probability ``rate``, zero otherwise.

    Spike amplitudes are Laplacian with random sign (heavy-tailed, like glitches and electronic spikes); the
    result is not normalised, since a spike train's RMS depends on ``rate``.

    Examples
    --------
    >>> x = spikes(10000, rate=0.01, rng=0)
    >>> 50 < int(np.count_nonzero(x)) < 150
    True
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate}")
    rng = np.random.default_rng(rng)
    shape = _shape(shape)
    hits = rng.random(shape) < rate
    return np.where(hits, rng.laplace(size=shape), 0.0)


def mask(x, fraction: float, rng=None) -> np.ndarray:
    """The seeds' masking corruption: a copy of ``x`` with a random ``fraction`` of its samples set to zero.

    Examples
    --------
    >>> y = mask(np.ones(1000), 0.25, rng=0)
    >>> int((y == 0).sum())
    250
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    x = np.array(x, dtype=np.float64)
    if x.size == 0:
        raise ValueError("x is empty")
    rng = np.random.default_rng(rng)
    flat = x.reshape(-1, x.shape[-1])
    count = int(round(fraction * flat.shape[1]))
    for row in flat:  # exactly `count` zeros per row
        row[rng.permutation(flat.shape[1])[:count]] = 0.0
    return flat.reshape(x.shape)


def from_recording(recording, shape, rng=None, augment: bool = True) -> np.ndarray:
    """Segments cut at random positions from a real noise recording, each with unit RMS.

    Parameters
    ----------
    recording : array_like or obspy.Trace
        1-D samples of noise (a quiet stretch of a real station). A Trace is used as it is: resample it to
        the rate you need first (see :func:`obspy_noise`).
    shape : int or tuple
        Output shape; the last axis (segment length) must not exceed the recording.
    augment : bool
        Flip the sign and reverse time of half the segments at random (same spectrum, more variety).

    Examples
    --------
    >>> noise = np.random.default_rng(0).standard_normal(10000)
    >>> from_recording(noise, (8, 500), rng=1).shape
    (8, 500)
    """
    data = np.asarray(getattr(recording, "data", recording), dtype=np.float64)
    if data.ndim != 1:
        raise ValueError(f"recording must be 1-D, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("recording contains NaN or Inf samples")
    shape = _shape(shape)
    length = shape[-1]
    if length > data.size:
        raise ValueError(f"segments of {length} samples do not fit in a recording of {data.size} samples")
    rng = np.random.default_rng(rng)
    starts = rng.integers(0, data.size - length + 1, size=shape[:-1] + (1,))
    segments = data[starts + np.arange(length)]
    segments = segments - segments.mean(axis=-1, keepdims=True)
    if augment:
        segments = np.where(rng.random(shape[:-1] + (1,)) < 0.5, segments[..., ::-1], segments)
        segments = segments * rng.choice([-1.0, 1.0], size=shape[:-1] + (1,))
    return unit_rms(segments)


def mix(clean, noise, snr_db) -> np.ndarray:
    """``clean + g * noise`` with the gain ``g`` chosen so that ``10·log10(Σ clean² / Σ (g·noise)²) = snr_db``.

    Energies are summed along the last axis, so a batch ``(B, samples)`` is mixed row by row; ``snr_db`` is a
    scalar or broadcasts against the leading axes (one SNR per row). A row of ``clean`` with zero energy (a
    window with no event) cannot define an SNR and raises; scale such noise yourself.

    Examples
    --------
    >>> s = np.sin(np.linspace(0, 50, 2000))
    >>> y = mix(s, white(2000, rng=0), snr_db=10.0)
    >>> from pydenoise.metrics import snr
    >>> round(snr(s, y), 6)
    10.0
    """
    clean, noise = checked_pair(clean, noise, names=("clean", "noise"))
    snr_db = np.asarray(snr_db, dtype=np.float64)
    if not np.isfinite(snr_db).all():
        raise ValueError("snr_db must be finite")
    signal_energy = np.sum(clean**2, axis=-1, keepdims=True)
    noise_energy = np.sum(noise**2, axis=-1, keepdims=True)
    if np.any(signal_energy == 0):
        raise ValueError("clean has a row with zero energy: the SNR is undefined")
    if np.any(noise_energy == 0):
        raise ValueError("noise has a row with zero energy: it cannot be scaled to an SNR")
    snr_db = snr_db.reshape(snr_db.shape + (1,)) if snr_db.ndim else snr_db
    gain = np.sqrt(signal_energy / (noise_energy * 10.0 ** (snr_db / 10.0)))
    return clean + gain * noise
