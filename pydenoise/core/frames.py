"""The framing contract shared by offline and streaming denoising: windows, padding, normalisation, overlap-add.

The framing is defined once here and used by :class:`~pydenoise.core.denoiser.Denoiser` (offline) and
:mod:`pydenoise.core.streaming`, so that streaming and offline processing give the same samples:

* window ``N`` (the model's), hop ``h`` with ``N % h == 0``;
* where the config has ``highpass_hz`` (:meth:`Denoiser.with_highpass`), each channel, its level removed, first
  passes a causal Butterworth high-pass (:class:`CausalHighpass`) that takes out sensor drift;
* the signal is padded on the left with ``N - h`` copies of its first sample and on the right with copies of
  its last sample (not zeros: a trace with an offset would get a step at each end), and frame ``k`` starts
  at padded sample ``k * h``; every input sample is then covered by exactly ``N / h`` frames; a stream knows
  its first sample when it starts and its last at ``flush()``, so this padding is causal;
* each frame is divided by its RMS (:func:`normalise_frames`) before the network and scaled back after, so a
  model works on counts, m/s or [-1, 1] audio alike; an all-zero frame stays zero. A model whose config has
  ``noise_floor_s`` is instead divided by ``sqrt(rms · floor)``, where ``floor`` is the smallest frame RMS of
  the last ``noise_floor_s`` seconds (:class:`NoiseFloor`, causal): the input's size then tells the network
  the frame's level above the noise, which a frame alone cannot show (a fricative and white noise look alike);
* the denoised frames are weighted by a Hann window shifted by half a sample (never zero) and overlap-added;
  dividing by the sum of the weights covering each sample (a length-``h`` periodic vector) makes the
  reconstruction exact: an identity network returns its input, edges included. Because that sum depends only
  on the position within a hop, the division is folded into the frame weights (:func:`frame_weights`);
* where the config has ``postfilter`` (the shipped ``seismic`` model; :meth:`Denoiser.with_postfilter`,
  :meth:`Denoiser.without_postfilter`), the denoised frames pass a causal Wiener filter
  (:class:`SpectralPostfilter`) before the overlap-add: it removes the stationary noise the network leaves,
  within the same frames, so it adds no latency;
* where the config has ``long_period`` (the shipped ``seismic`` model; :meth:`Denoiser.with_long_period`), the
  output's band below ``crossover_hz`` is replaced by that of a second model run at an integer fraction of
  the rate (``seismic_lp``, 12.5 Hz: 20.5 s windows), which tells a long-period wave train from the
  microseism where a 2.56 s window cannot (:mod:`pydenoise.core.longperiod`); streams then wait about 24 s.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

__all__ = [
    "synthesis_window",
    "overlap_normaliser",
    "frame_weights",
    "frame_count",
    "check_hop",
    "channel_offset",
    "normalisation_scale",
    "normalise_frames",
    "pad_edges",
    "as_signal",
    "SAMPLE_LIMITS",
    "LONG_PERIOD_LIMIT",
    "check_sample_limit",
    "overlap_add",
]

#: The largest sample magnitude a signal of each dtype may hold. Frame energies (sums of squares over a window)
#: and the noise floor are computed in the signal's dtype; these limits keep them finite with a margin of 1e8
#: in energy (``sqrt(finfo.max)`` is 1.8e19 for float32, 1.3e154 for float64), far above any real recording
#: (audio is within ±1, a 32-bit digitiser within ±2.1e9). Beyond them the output would be NaN or Inf.
SAMPLE_LIMITS = {torch.float32: 1e15, torch.float64: 1e150}
#: Why a long-period model keeps every signal to the float32 limit: its FIR and network run in float32.
LONG_PERIOD_LIMIT = "the long-period path computes in float32; with_long_period(None) lifts this"


@lru_cache(maxsize=32)
def synthesis_window(window: int) -> np.ndarray:
    """Overlap-add weights: a Hann window sampled half a sample off its zeros, so no weight is 0."""
    n = np.arange(window) + 0.5
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / window)


@lru_cache(maxsize=32)
def overlap_normaliser(window: int, hop: int) -> np.ndarray:
    """Sum of the synthesis weights covering padded sample ``p``; depends only on ``p % hop``."""
    return synthesis_window(window).reshape(window // hop, hop).sum(axis=0)


@lru_cache(maxsize=64)
def frame_weights(window: int, hop: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Synthesis weights divided by the overlap normaliser: overlap-adding weighted frames gives final samples.

    Frame sample ``j`` lands on padded index ``k·hop + j``, whose normaliser is ``overlap_normaliser[j % hop]``.
    """
    weights = synthesis_window(window) / np.tile(overlap_normaliser(window, hop), window // hop)
    return torch.as_tensor(weights, dtype=dtype, device=device)


def frame_count(samples: int, window: int, hop: int) -> int:
    """Frames needed so that each of ``samples`` input samples is covered by ``window // hop`` frames."""
    return (window - hop + samples - 1) // hop + 1


def check_hop(hop: int, window: int) -> int:
    """Validate a hop for a window: ``1 <= hop <= window`` and ``window % hop == 0``."""
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)):
        raise TypeError(f"hop must be an integer, got {type(hop).__name__}")
    hop = int(hop)
    if not 1 <= hop <= window or window % hop:
        raise ValueError(f"hop must divide the window ({window}) and lie in 1..{window}, got {hop}")
    return hop


def channel_offset(signal: torch.Tensor, offset) -> torch.Tensor:
    """A given constant level per channel (a number, or one per channel) as a ``(channels, 1)`` tensor.

    Without one, denoising removes the channel's local level (:mod:`pydenoise.core.level`).
    """
    values = torch.as_tensor(offset, dtype=signal.dtype, device=signal.device).reshape(-1, 1)
    if values.shape[0] not in (1, signal.shape[0]) or not bool(torch.isfinite(values).all()):
        raise ValueError(f"offset must be a finite number or one per channel ({signal.shape[0]}), got {offset!r}")
    return values.expand(signal.shape[0], 1)


#: The smallest noise floor a window is normalised with, as a fraction of its RMS: 240 dB below it, far beyond
#: any trained SNR (the normalised window's RMS stays <= 1e6, safe in the network's float32).
MIN_FLOOR_RATIO = 1e-12


def normalisation_scale(rms: torch.Tensor, floor: torch.Tensor | None = None) -> torch.Tensor:
    """What each window is divided by before the network: its ``rms``, or ``sqrt(rms · floor)`` given its noise
    ``floor`` (:class:`NoiseFloor`, same shape): a window at the noise floor then has RMS 1 and one 20 dB above
    it RMS √10, so the network sees the window's level above the noise. The floor counts as at least
    :data:`MIN_FLOOR_RATIO` of the RMS: a floor from a frame of a few tiny samples (1e-116 among zeros) made
    the normalised window overflow float32, and the output NaN."""
    if floor is None:
        return rms
    return (rms * torch.maximum(floor, rms * MIN_FLOOR_RATIO)).sqrt()


def normalise_frames(
    frames: torch.Tensor, floor: torch.Tensor | None = None, scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window normalisation shared by inference and training: ``frames / scale``.

    ``scale`` is the :func:`normalisation_scale` of each row of ``frames`` ``(B, window)``: its RMS (about zero,
    not about the window's mean), or, given each row's noise ``floor`` ``(B, 1)``, ``sqrt(rms · floor)``; a
    caller that has the scales already passes them as ``scale`` ``(B, 1)``. The network sees the normalised
    rows and its output is mapped back with ``out * scale``. An all-zero row gets scale 0 and comes back as
    zeros whatever the network outputs. Training must normalise the *noisy* window this way and scale its
    target by the same number, or the model would not match inference.

    Returns
    -------
    normalised, scale : torch.Tensor
        ``(B, window)`` and ``(B, 1)``.

    Examples
    --------
    >>> import torch
    >>> z, scale = normalise_frames(torch.tensor([[3.0, -3.0], [0.0, 0.0]]))
    >>> z.tolist(), scale.flatten().tolist()
    ([[1.0, -1.0], [0.0, 0.0]], [3.0, 0.0])
    >>> normalise_frames(torch.tensor([[4.0, -4.0]]), floor=torch.tensor([[1.0]]))[0].tolist()
    [[2.0, -2.0]]
    """
    if scale is None:
        scale = normalisation_scale(frames.square().mean(dim=1, keepdim=True).sqrt(), floor)
    return frames / torch.where(scale > 0, scale, torch.ones_like(scale)), scale


def pad_edges(signal: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """``(channels, samples)`` padded with ``left`` copies of the first and ``right`` of the last sample."""
    return torch.cat([signal[:, :1].expand(-1, left), signal, signal[:, -1:].expand(-1, right)], dim=1)


def as_signal(x, allow_empty: bool = False) -> tuple[torch.Tensor, bool]:
    """``x`` as a 2-D (channels, samples) float tensor, and whether the caller gave a 1-D signal.

    Raises ``TypeError`` for anything but float32/float64 numpy arrays or tensors, ``ValueError`` for a wrong
    rank, no channels, NaN/Inf samples, samples beyond the dtype's :data:`SAMPLE_LIMITS`, or no samples (unless
    ``allow_empty``: a stream may receive an empty chunk).
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating) or x.dtype == np.float16:
            raise TypeError(f"x must be float32 or float64, got dtype {x.dtype}")
        if x.ndim == 0:  # np.ascontiguousarray would make a 0-D array 1-D and denoise it as a 1-sample trace
            raise ValueError(f"x must be 1-D (samples) or 2-D (channels, samples), got shape {x.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x must be float32 or float64, got dtype {x.dtype}")
        tensor = x.detach()
    else:
        raise TypeError(f"x must be a numpy array or a torch tensor, got {type(x).__name__}")
    if tensor.dim() not in (1, 2):
        raise ValueError(f"x must be 1-D (samples) or 2-D (channels, samples), got shape {tuple(tensor.shape)}")
    if tensor.dim() == 2 and tensor.shape[0] == 0:  # (streams' FFTs failed inside MKL on an empty batch)
        raise ValueError(f"x has no channels (shape {tuple(tensor.shape)}): (channels, samples) needs channels >= 1")
    if tensor.numel() == 0 and not allow_empty:
        raise ValueError(f"x is empty (shape {tuple(tensor.shape)})")
    # numpy's check costs a few µs on a small chunk, torch's ~20 µs: it matters per streaming chunk
    check_sample_limit(x if isinstance(x, np.ndarray) else tensor, SAMPLE_LIMITS[tensor.dtype])
    return (tensor.unsqueeze(0), True) if tensor.dim() == 1 else (tensor, False)


def within_sample_limit(samples, limit: float) -> bool:
    """Whether every sample of a numpy array or tensor is finite and within ``±limit`` (a NaN propagates
    through max and min, and fails the comparison)."""
    if 0 in samples.shape:
        return True
    return bool(samples.max() <= limit) and bool(samples.min() >= -limit)


def check_sample_limit(samples, limit: float, reason: str | None = None) -> None:
    """Raise ``ValueError`` for NaN/Inf samples or samples beyond ``±limit`` (naming the value and the limit)."""
    if within_sample_limit(samples, limit):
        return
    finite = np.isfinite(samples).all() if isinstance(samples, np.ndarray) else torch.isfinite(samples).all()
    if not bool(finite):
        raise ValueError("x contains NaN or Inf samples")
    peak = float(abs(samples).max())
    dtype = str(samples.dtype).removeprefix("torch.")
    reason = reason or f"the frame energies of a {dtype} signal overflow beyond it"
    raise ValueError(
        f"x holds a sample of magnitude {peak:.3g}, beyond the limit of {limit:g} ({reason}): scale it down"
    )


def overlap_add(frames: torch.Tensor, hop: int, carry: torch.Tensor | None = None) -> torch.Tensor:
    """Sum ``(channels, K, window)`` frames placed ``hop`` apart: ``(channels, (K - 1) * hop + window)``.

    ``carry``, ``(channels, window - hop)``, seeds the first ``window - hop`` output samples.
    """
    channels, count, window = frames.shape
    overlaps = window // hop
    blocks = frames.reshape(channels, count, overlaps, hop)
    out = frames.new_zeros(channels, count + overlaps - 1, hop)
    if carry is not None:
        out[:, : overlaps - 1] = carry.reshape(channels, overlaps - 1, hop)
    for i in range(overlaps):  # window / hop vectorised adds, not a loop over samples
        out[:, i : i + count].add_(blocks[:, :, i])  # in place on the view: no write-back copy as with +=
    return out.reshape(channels, -1)
