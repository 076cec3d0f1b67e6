"""Training of the seismic spectral-mask model (:mod:`pydenoise.core.spectral`).

Signals: synthetic earthquakes (:mod:`pydenoise.seismic.synth`) and stretches around the onsets of the event
recordings given (the held-out
protocol's train split, ``benchmarks/seismic_manifests/train.json``, by default). Noise: one to three parts of
:class:`NoiseMixture` (recordings of the train split, coloured and band noise, spikes) summed at random
weights, some with a slow amplitude modulation (traffic) or machine tones. Each mix is a whole trace processed
from its start, so the network learns the features a stream sees, noise-floor warm-up included.

The loss is minus the mean output SNR in dB: per trace, the masked spectrum's squared error against the clean
spectrum (the clean trace less the level that inference takes out of the noisy one) over the clean energy, on the
frames the engine computes. Every training trace holds an event (the SNR needs a signal); the noise-only
stretches before and after it teach the quiet case.

    python benchmarks/train_seismic_mask.py      # the shipped model, from the protocol's train split
"""

from __future__ import annotations

import numpy as np
import torch

from pydenoise.core.nn import save_model
from pydenoise.core.spectral import (
    SPECTRAL_KIND,
)
from pydenoise.core.spectral_training import fit_correction, trace_frames
from pydenoise.seismic import synth
from pydenoise.seismic.training_data import NoiseMixture

__all__ = ["DEFAULTS", "LOW_LATENCY", "training_noise", "training_mixes", "train"]

DEFAULTS = {
    "sample_rate": 100.0,
    "frame": 510,
    "hop": 85,
    "history_frames": 60,
    "smoothing": 0.8,
    "level_blocks": 128,
    "noise_scale": 3.5,
    "floor_quantile": 0.25,
    "window": "hann",
    "restore_level": False,
}
#: The low-latency model's (2.5 s at 100 Hz, for early warning): 3 s frames zero-padded to the same 256 bins,
#: the floor's history kept at 51 s.
LOW_LATENCY = DEFAULTS | {"frame": 300, "hop": 50, "fft_size": 510, "history_frames": 102}
WIDTHS = (256, 512, 512, 256)


def training_noise(mixture: NoiseMixture, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, samples)`` unit-RMS noise rows: 1-3 mixture parts, some modulated, some with tones."""
    rate = mixture.sample_rate
    t = np.arange(samples) / rate
    rows = np.zeros((count, samples))
    for row in range(count):
        parts = mixture.sample(int(rng.integers(1, 4)), samples, rng)
        rows[row] = (parts * rng.lognormal(0, 1, (parts.shape[0], 1))).sum(axis=0)
        if rng.random() < 0.3:  # traffic-like modulation, periods of 10 s to 2 min
            depth, period = rng.uniform(0.3, 0.95), rng.uniform(10, 120)
            rows[row] *= 1 + depth * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.2:  # machine tones
            for f0 in rng.uniform(1, 0.45 * rate, int(rng.integers(1, 4))):
                rows[row] += rng.uniform(0.2, 1.5) * rows[row].std() * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 7))
        rows[row] /= max(rows[row].std(), 1e-12)
    return rows


def training_mixes(recordings, mixture, count, samples, rng, snr_db=(-10.0, 25.0)):
    """``(clean, noisy)`` rows: half synthetic events, half stretches of the recordings (``(samples, onset
    index)`` pairs) that hold the onset at least 5 s in, at input SNRs drawn uniformly in dB over the whole row.

    The stretch must hold the event: a stretch of a record's own background would teach the network to keep
    noise (it is the record's, but noise all the same)."""
    rate = mixture.sample_rate
    clean = synth.earthquakes(count, samples, rate, rng, event_fraction=1.0).traces
    for row in range(count // 2 if recordings else 0):
        record, onset = recordings[rng.integers(len(recordings))]
        if record.size > samples:
            latest = min(onset - int(5 * rate), record.size - samples)
            earliest = max(0, onset - samples + int(20 * rate))
            start = int(rng.integers(min(earliest, latest), latest + 1)) if latest >= 0 else 0
            stretch = record[start : start + samples]
            clean[row] = stretch - stretch.mean()
    noise = training_noise(mixture, count, samples, rng)
    energy = np.maximum(np.mean(clean**2, axis=1, keepdims=True), 1e-30)
    scale = np.sqrt(energy / 10 ** (rng.uniform(*snr_db, (count, 1)) / 10))
    return clean, clean + noise * scale


def _dataset(recordings, mixture, rows, samples, seed, config, snr_db):
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, rows, 32):  # 32 rows at a time: the running medians' windows need memory
        clean, noisy = training_mixes(recordings, mixture, min(32, rows - start), samples, rng, snr_db)
        parts.append(trace_frames(clean, noisy, config))
    features, prior, noisy, clean = (torch.cat(p, dim=0) for p in zip(*parts))
    energy = clean.real.square().sum(dim=(1, 2)) + clean.imag.square().sum(dim=(1, 2))
    return features, prior, noisy, clean, energy


def train(
    recordings,
    names,
    noise_recordings,
    noise_names,
    output,
    epochs=8,
    rows=4000,
    samples=12000,
    seed=0,
    learning_rate=1e-3,
    snr_db=(-10.0, 25.0),
    validate=None,
    announce=print,
    argv=None,
    config=DEFAULTS,
):
    """Train and save the model; ``validate(denoiser) -> float`` (higher is better) picks the epoch kept."""
    torch.manual_seed(seed)
    config = dict(config)
    mixture = NoiseMixture(noise_recordings, noise_names, config["sample_rate"], weights=(0.45, 0.15, 0.1, 0.2, 0.1))
    data = _dataset(recordings, mixture, rows, samples, seed, config, snr_db)
    held = _dataset(recordings, mixture, rows // 10, samples, seed + 1, config, snr_db)
    module, best_epoch, best_score, log = fit_correction(
        data, held, config, WIDTHS, epochs, learning_rate, batch=16, validate=validate, announce=announce
    )
    metadata = config | {
        "denoiser": SPECTRAL_KIND,
        "trained_on": f"signals: synthetic earthquakes + {', '.join(names)}; noise: {mixture.describe()}",
        "best_epoch": best_epoch,
        "validation_score": best_score,
        "command": " ".join(argv or []),
    }
    save_model(module.eval(), output, config=metadata)
    return module, metadata, log
