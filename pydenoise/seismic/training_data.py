"""Training batches for the trace models: clean signals (synthetic earthquakes or event recordings), a noise
mixture (real recordings and synthetic colours, with spikes and drift), windows cut where the events are, and
the network's input/target pair normalised exactly as inference does.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np
import torch

from pydenoise.core import noise as noise_gen
from pydenoise.core.frames import normalise_frames
from pydenoise.core.noise_floor import floor_history, window_floors
from pydenoise.seismic import synth

if TYPE_CHECKING:  # (train imports this module)
    from pydenoise.seismic.train import TrainConfig

__all__ = ["read_recordings", "SyntheticSignals", "RecordedSignals", "NoiseMixture", "make_windows", "network_pair"]

#: Share of the held-out tail of each recording kept for validation.
VALIDATION_SHARE = 0.2


def read_recordings(paths, sample_rate: float, announce=print) -> list[np.ndarray]:
    """Every trace of every ObsPy-readable file in ``paths`` as float64 samples at ``sample_rate``.

    Traces at another rate are resampled explicitly (and ``announce`` says so); masked gaps split a trace into
    its contiguous segments.
    """
    import obspy

    segments = []
    for path in paths:
        try:
            stream = obspy.read(os.fspath(path))
        except Exception as error:  # ObsPy raises many types for unreadable files
            raise ValueError(f"recording {path!r} is not readable by ObsPy: {error}") from None
        for trace in stream.split():
            trace.data = trace.data.astype(np.float64)
            if trace.stats.sampling_rate != sample_rate:
                announce(f"resampling {trace.id} from {trace.stats.sampling_rate:g} Hz to {sample_rate:g} Hz")
                trace.resample(sample_rate)
            segments.append(trace.data - trace.data.mean())
    return segments


def split_recordings(
    recordings: list[np.ndarray], kind: str, part: str, minimum: int, sample_rate: float, announce
) -> list[np.ndarray]:
    """The training head or the validation tail of each recording (time split, so no sample is shared); parts
    shorter than ``minimum`` samples are left out, and ``announce`` says how many."""
    pieces = []
    for data in recordings:
        cut = int(round(data.size * (1 - VALIDATION_SHARE)))
        pieces.append(data[:cut] if part == "train" else data[cut:])
    kept = [piece for piece in pieces if piece.size >= minimum]
    hint = f"of >= {minimum} samples (--trace-samples; by default two noise-floor histories)"
    if not kept:
        longest = max(piece.size for piece in pieces)
        share = f"first {1 - VALIDATION_SHARE:.0%}" if part == "train" else f"last {VALIDATION_SHARE:.0%}"
        raise ValueError(
            f"no {kind} recording has a {part} part {hint}: the longest has {longest} samples "
            f"({longest / sample_rate:g} s at {sample_rate:g} Hz; the {part} part is the {share} of each recording)"
        )
    if len(kept) < len(pieces):
        announce(f"left out {len(pieces) - len(kept)} of {len(pieces)} {kind} segments: {part} part not {hint}")
    return kept


class SyntheticSignals:
    """Clean traces from :func:`pydenoise.seismic.synth.earthquakes`."""

    def __init__(self, sample_rate: float):
        self.sample_rate = sample_rate

    def describe(self) -> str:
        """One line for the model metadata."""
        return "synthetic earthquakes (pydenoise.synth)"

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` clean traces; event-free rows are zeros."""
        return synth.earthquakes(count, samples, self.sample_rate, rng).traces


class RecordedSignals:
    """Clean traces cut at random from event recordings, at random amplitudes (for fine-tuning)."""

    def __init__(self, recordings: list[np.ndarray], names: list[str]):
        self.recordings = recordings
        self.names = names

    def describe(self) -> str:
        """One line for the model metadata."""
        return "event recordings: " + ", ".join(self.names)

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` windows of the recordings, each scaled to a log-uniform RMS."""
        pick = rng.integers(0, len(self.recordings), count)
        rows = [noise_gen.from_recording(self.recordings[i], samples, rng) for i in pick]
        return np.stack(rows) * np.exp(rng.uniform(np.log(1e-2), np.log(1e2), (count, 1)))


class NoiseMixture:
    """Noise for training: real recordings and synthetic colours, with occasional spikes.

    Each row is, with the given weights, a segment of a recording, pink, brown, band-limited (random band
    inside 0.1 Hz – Nyquist) or white noise; ``spike_share`` of the rows also get impulsive spikes.
    """

    KINDS = ("recorded", "pink", "brown", "band", "white")

    def __init__(
        self,
        recordings: list[np.ndarray],
        names: list[str],
        sample_rate: float,
        weights=(0.6, 0.15, 0.0, 0.15, 0.1),
        spike_share: float = 0.1,
    ):
        self.recordings = recordings
        self.names = names
        self.sample_rate = sample_rate
        weights = np.asarray(weights, dtype=float)
        self.weights = weights / weights.sum()
        self.spike_share = spike_share

    def describe(self) -> str:
        """One line for the model metadata."""
        shares = ", ".join(f"{k} {w:.2f}" for k, w in zip(self.KINDS, self.weights))
        return f"noise: {shares} (recordings: {', '.join(self.names)}); spikes on {self.spike_share:.2f} of rows"

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` noise rows with unit RMS (before spikes)."""
        kinds = rng.choice(len(self.KINDS), size=count, p=self.weights)
        out = np.empty((count, samples))
        for kind in np.unique(kinds):
            rows = np.flatnonzero(kinds == kind)
            out[rows] = self._kind(self.KINDS[kind], rows.size, samples, rng)
        spiky = rng.random(count) < self.spike_share
        if spiky.any():
            rate = rng.uniform(0.001, 0.01, (int(spiky.sum()), 1))
            height = rng.uniform(2.0, 20.0, (int(spiky.sum()), 1))
            out[spiky] += (
                height
                * noise_gen.spikes((int(spiky.sum()), samples), 1.0, rng)
                * (rng.random((int(spiky.sum()), samples)) < rate)
            )
        return out

    def _kind(self, kind: str, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        if kind == "recorded":
            pick = rng.integers(0, len(self.recordings), count)
            return np.stack([noise_gen.from_recording(self.recordings[i], samples, rng) for i in pick])
        if kind == "pink":
            return noise_gen.pink((count, samples), rng)
        if kind == "brown":
            return noise_gen.brown((count, samples), rng)
        if kind == "white":
            return noise_gen.white((count, samples), rng)
        nyquist = self.sample_rate / 2
        low = math.exp(rng.uniform(math.log(0.1), math.log(0.5 * nyquist)))
        high = min(nyquist, low * math.exp(rng.uniform(math.log(2.0), math.log(50.0))))
        return noise_gen.band_limited((count, samples), low, high, self.sample_rate, rng)


def make_windows(signals, noises, config: TrainConfig, window: int, rng: np.random.Generator):
    """One batch: ``(noisy, clean, floor)``: windows ``(config.batch, window)``, float64, not yet normalised,
    and each noisy window's noise floor ``(config.batch, 1)`` (None unless ``config.noise_floor_s``).

    Traces of ``config.trace_samples`` are mixed at an SNR drawn uniformly from ``config.snr_db`` (event-free
    traces get noise alone), then ``config.windows_per_trace`` windows are cut from each at random offsets.
    """
    traces = config.batch // config.windows_per_trace
    length = max(config.trace_samples, window)
    clean = signals.sample(traces, length, rng)
    noise = noises.sample(traces, length, rng)
    # By energy, not by non-zero samples: a coda decayed to ~1e-170 is non-zero, yet its square underflows to 0.
    has_signal = np.sum(clean**2, axis=1) > 0
    noisy = noise * np.exp(rng.uniform(np.log(1e-2), np.log(1e2), (traces, 1)))  # event-free: any scale
    snr = rng.uniform(*config.snr_db, int(has_signal.sum()))
    if has_signal.any():
        noisy[has_signal] = noise_gen.mix(clean[has_signal], noise[has_signal], snr)
    if config.drift_share:  # (no draw otherwise: recorded commands keep their batches)
        noisy += _drift(noisy - clean, config.drift_share, rng)
    starts = _window_starts(clean, window, config.windows_per_trace, config.event_window_share, rng)
    floor = None
    if config.noise_floor_s is not None:
        history = floor_history(config.noise_floor_s, config.sample_rate, config.hop)
        floor = window_floors(noisy, starts, window, config.hop, history).reshape(-1, 1)
    starts = starts[:, :, None] + np.arange(window)
    rows = np.arange(traces)[:, None, None]
    return noisy[rows, starts].reshape(-1, window), clean[rows, starts].reshape(-1, window), floor


def _drift(noise: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor drift for a ``share`` of the noise rows: offset + linear trend, each uniform in ±A, with A
    log-uniform in 0.1–30 times the row's noise RMS; zero elsewhere."""
    rows, samples = noise.shape
    drifting = rng.random(rows) < share
    size = np.exp(rng.uniform(np.log(0.1), np.log(30.0), rows)) * np.sqrt(np.mean(noise**2, axis=1))
    offset, slope = rng.uniform(-1.0, 1.0, (2, rows))
    ramp = np.linspace(-1.0, 1.0, samples)
    return np.where(drifting, size, 0.0)[:, None] * (offset[:, None] + slope[:, None] * ramp)


def _window_starts(clean: np.ndarray, window: int, count: int, event_share: float, rng) -> np.ndarray:
    """``(traces, count)`` window offsets: a share placed where the clean trace has energy, the rest uniform.

    Uniform offsets alone would mostly land before the onset or in the faded coda (noise-only windows), while
    what matters most is denoising the event itself without distorting it.
    """
    positions = clean.shape[1] - window + 1
    starts = rng.integers(0, positions, (clean.shape[0], count))
    energy = np.cumsum(np.pad(clean**2, ((0, 0), (1, 0))), axis=1)
    in_window = energy[:, window:] - energy[:, :positions]  # energy of the window starting at each offset
    total = in_window.sum(axis=1, keepdims=True)
    cdf = np.cumsum(in_window, axis=1) / np.where(total > 0, total, 1.0)
    by_energy = (rng.random((clean.shape[0], count)) < event_share) & (total > 0)
    drawn = np.array([np.searchsorted(row, rng.random(count)) for row in cdf]).clip(0, positions - 1)
    return np.where(by_energy, drawn, starts)


def network_pair(
    noisy: np.ndarray, clean: np.ndarray, floor: np.ndarray | None, residual: bool, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network input and target (float32 on ``device``) for a batch of windows.

    Each noisy window is normalised by :func:`~pydenoise.core.frames.normalise_frames` (with its noise ``floor``
    ``(B, 1)`` for a noise-floor model), exactly as inference does, and the clean window is divided by the
    same scale. The target is that clean window (DAE), or the noise ``input - clean`` (nlDAE,
    ``residual=True``).
    """
    floor = None if floor is None else torch.from_numpy(floor)
    normalised, scale = normalise_frames(torch.from_numpy(noisy), floor)
    clean_target = torch.from_numpy(clean) / torch.where(scale > 0, scale, torch.ones_like(scale))
    target = normalised - clean_target if residual else clean_target
    return normalised.to(device, torch.float32), target.to(device, torch.float32)
