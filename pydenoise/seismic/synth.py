"""Synthetic earthquake-like traces, cheap enough to generate on the fly while training.

A trace holds a P and an S arrival (or nothing, for a share of event-free windows). Each phase is Gaussian
noise shaped to a velocity source spectrum and multiplied by an envelope:

* spectrum: the ω² (Brune) source model seen on a velocity sensor, ``f / (1 + (f/fc)²)``, times anelastic
  attenuation ``exp(-π f t*)``; the P corner ``fc`` is drawn log-uniformly in 1–15 Hz for local events and
  0.02–1 Hz for 30 % of large or distant ones (S a factor 1.2–2.5 lower), so the energy sits in roughly
  0.5–30 Hz at 100 Hz sampling, with some long-period records like those of teleseisms;
* envelope: a rise of 0.02–0.5 s (P) to a peak, then coda decay ``exp(-t/τ)`` with τ from 0.3 to 16 s
  (longer, up to ~150 s, for the low-corner events);
* random S/P amplitude ratio (1–6), S−P time (0.5–25 s), P onset anywhere from before the trace start (only
  coda visible) to its end, and an overall amplitude spanning four decades.

Everything is drawn from ``rng`` (a seed or :class:`numpy.random.Generator`) and computed with batched FFTs,
so tens of thousands of samples per millisecond come out on one CPU core.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Earthquakes", "earthquakes", "LARGE_EVENT_SHARE"]

#: Share of large or distant events, whose P corner lies at 0.02-1 Hz (teleseisms, big regional quakes).
LARGE_EVENT_SHARE = 0.3


class Earthquakes(NamedTuple):
    """A batch of synthetic traces and their true phase onsets (seconds from each trace's start).

    ``p_onset`` / ``s_onset`` are NaN for event-free traces; an onset may be negative (the phase began before
    the trace) or beyond its end.
    """

    traces: np.ndarray
    p_onset: np.ndarray
    s_onset: np.ndarray


def _log_uniform(rng: np.random.Generator, low: float, high: float, count: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), count))


def _phase(rng, count, samples, sample_rate, corner, onset, rise, decay) -> np.ndarray:
    """``count`` phases with unit peak envelope: spectrally shaped Gaussian noise times an onset/decay envelope."""
    frequency = np.fft.rfftfreq(samples, d=1.0 / sample_rate)
    t_star = _log_uniform(rng, 0.002, 0.04, count)[:, None]
    gain = frequency / (1.0 + (frequency / corner[:, None]) ** 2) * np.exp(-np.pi * frequency * t_star)
    carrier = np.fft.irfft(np.fft.rfft(rng.standard_normal((count, samples)), axis=1) * gain, n=samples, axis=1)
    carrier /= np.sqrt(np.mean(carrier**2, axis=1, keepdims=True)) + 1e-300
    lag = np.arange(samples) / sample_rate - onset[:, None]
    after = np.maximum(lag, 0.0)
    envelope = np.where(lag > 0, (1.0 - np.exp(-after / rise[:, None])) * np.exp(-after / decay[:, None]), 0.0)
    return carrier * envelope


def earthquakes(
    count: int, samples: int, sample_rate: float = 100.0, rng=None, event_fraction: float = 0.85
) -> Earthquakes:
    """Generate ``count`` synthetic earthquake-like traces of ``samples`` samples at ``sample_rate`` Hz.

    Parameters
    ----------
    count, samples : int
        Batch size and trace length.
    sample_rate : float
        Sampling rate in Hz; corner frequencies are capped at 40 % of it.
    rng : int, numpy.random.Generator or None
        Seed or generator; the same seed gives the same traces.
    event_fraction : float
        Share of traces holding an event; the others are all zeros (noise-only windows once mixed).

    Returns
    -------
    Earthquakes
        ``traces`` ``(count, samples)`` float64, and the true P and S onsets in seconds.

    Examples
    --------
    >>> batch = earthquakes(4, 2000, sample_rate=100.0, rng=0, event_fraction=1.0)
    >>> batch.traces.shape, bool(np.all(np.abs(batch.traces).max(axis=1) > 0))
    ((4, 2000), True)
    """
    if int(count) != count or count < 1 or int(samples) != samples or samples < 2:
        raise ValueError(f"count must be >= 1 and samples >= 2, got count={count}, samples={samples}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not 0 <= event_fraction <= 1:
        raise ValueError(f"event_fraction must lie in [0, 1], got {event_fraction}")
    count, samples = int(count), int(samples)
    rng = np.random.default_rng(rng)
    duration = samples / sample_rate
    nyquist_cap = 0.4 * sample_rate

    large = rng.random(count) < LARGE_EVENT_SHARE
    p_corner = np.where(large, _log_uniform(rng, 0.02, 1.0, count), _log_uniform(rng, 1.0, 15.0, count))
    p_corner = np.minimum(p_corner, nyquist_cap)
    s_corner = p_corner / rng.uniform(1.2, 2.5, count)
    p_onset = rng.uniform(-0.5 * duration, duration, count)
    s_onset = p_onset + _log_uniform(rng, 0.5, 25.0, count)
    p_decay = _log_uniform(rng, 0.3, 8.0, count) * np.maximum(1.0, 1.0 / p_corner)  # big events ring longer
    s_decay = p_decay * rng.uniform(1.0, 2.0, count)
    p = _phase(rng, count, samples, sample_rate, p_corner, p_onset, _log_uniform(rng, 0.02, 0.5, count), p_decay)
    s = _phase(rng, count, samples, sample_rate, s_corner, s_onset, _log_uniform(rng, 0.05, 1.0, count), s_decay)
    s_to_p = _log_uniform(rng, 1.0, 6.0, count)[:, None]
    amplitude = _log_uniform(rng, 1e-2, 1e2, count)[:, None]
    has_event = rng.random(count) < event_fraction
    traces = np.where(has_event[:, None], amplitude * (p + s_to_p * s), 0.0)
    no_event = np.where(has_event, 1.0, np.nan)
    return Earthquakes(traces, p_onset * no_event, s_onset * no_event)
