"""Training of the spectral-mask speech models (:mod:`pydenoise.core.spectral`) at 16 and 48 kHz.

The engine is the seismic one (:mod:`pydenoise.seismic.spectral_training` gives the frames and the loss, minus
the mean output SNR in dB per row); only the data and the framing differ. Each 20 ms (16 kHz) or 10 ms (48 kHz)
frame is zero-padded to 510 samples, so the network's 256-wide input is the same at both rates and the
algorithmic latency stays at ``frame - hop`` (10 and 5 ms) plus up to one hop of buffering (<= 20 ms).

Speech: the real training speakers given (the protocol's TRAIN split) and synthetic voices (espeak-ng, flite),
each row one utterance at a random start after up to 0.4 s of silence, sometimes followed by another, with a
random spectral tilt (a microphone's or a room's colour) and polarity. Noise: white, pink, brown, babble of the
training speech, hum, fan and the recorded noises given (music of the TRAIN split), one or two kinds summed, at an
SNR drawn uniformly in dB over the row.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from pydenoise.audio import training_data
from pydenoise.audio.offline import resample
from pydenoise.core.nn import save_model
from pydenoise.core.noise import unit_rms
from pydenoise.core.spectral import SPECTRAL_KIND
from pydenoise.core.spectral_training import fit_correction, trace_frames

__all__ = ["CONFIGS", "WIDTHS", "NOISE_KINDS", "SpeechMixer", "train"]

#: Framing and feature settings per sample rate: 256 bins from a 510-point FFT of a shorter frame.
CONFIGS = {
    16000: {
        "sample_rate": 16000.0,
        "frame": 320,
        "fft_size": 510,
        "hop": 160,
        "history_frames": 80,
        "floor_stride": 2,
        "smoothing": 0.3,
        "level_blocks": 16,
        "noise_scale": 1.5,
    },
    48000: {
        "sample_rate": 48000.0,
        "frame": 480,
        "fft_size": 510,
        "hop": 240,
        "history_frames": 160,
        "floor_stride": 4,
        "smoothing": 0.3,
        "level_blocks": 32,
        "noise_scale": 1.5,
    },
}
WIDTHS = (256, 512, 512, 256)
NOISE_KINDS = ("white", "pink", "brown", "babble", "hum", "fan", "recorded")
NOISE_WEIGHTS = (0.12, 0.12, 0.1, 0.2, 0.08, 0.08, 0.3)


class SpeechMixer:
    """``(clean, noisy)`` rows at ``rate`` from utterances and recorded noises (all at ``source_rate``)."""

    def __init__(self, utterances, noises, rate: int, source_rate: int = 16000):
        if not utterances or not noises:
            raise ValueError(f"need utterances and recorded noises, got {len(utterances)} and {len(noises)}")
        self.rate, self.source_rate = int(rate), int(source_rate)
        self.utterances = [np.asarray(u, np.float64) for u in utterances]
        self.noises = [np.asarray(n, np.float64) for n in noises]

    def _at_rate(self, x: np.ndarray) -> np.ndarray:
        return x if self.rate == self.source_rate else resample(x, self.source_rate, self.rate)

    def _speech_row(self, samples: int, rng: np.random.Generator) -> np.ndarray:
        row = np.zeros(samples)
        position = int(rng.uniform(0, 0.4) * self.rate)
        while position < samples:
            utterance = self._at_rate(self.utterances[rng.integers(len(self.utterances))])
            take = min(utterance.size, samples - position)
            row[position : position + take] = utterance[:take] / max(np.std(utterance), 1e-9)
            position += take + int(rng.uniform(0.1, 0.6) * self.rate)
            if rng.random() < 0.5:
                break
        return _tilted(row, rng.uniform(-0.6, 0.6)) * rng.choice([-1.0, 1.0])

    def _noise(self, kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
        if kind in ("white", "pink", "brown"):
            return getattr(training_data, kind)(1, samples, rng)[0]
        if kind in ("hum", "fan"):
            return getattr(training_data, kind)(1, samples, rng, self.rate)[0]
        if kind == "babble":
            voices = [self._stretch(self.utterances, samples, rng) for _ in range(rng.integers(3, 8))]
            return unit_rms(np.sum([v / max(np.std(v), 1e-9) for v in voices], axis=0))
        return unit_rms(self._stretch(self.noises, samples, rng))

    def _stretch(self, sources, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``samples`` consecutive samples (at :attr:`rate`) of a random source, tiled if shorter."""
        source = sources[rng.integers(len(sources))]
        needed = int(np.ceil(samples * self.source_rate / self.rate)) + 1
        if source.size < needed:
            source = np.tile(source, -(-needed // source.size))
        start = rng.integers(0, source.size - needed + 1)
        return self._at_rate(source[start : start + needed])[:samples]

    def rows(self, count: int, samples: int, rng: np.random.Generator, snr_db=(-5.0, 25.0)):
        """``(clean, noisy)`` arrays ``(count, samples)``: one or two noise kinds per row at a random SNR."""
        clean = np.stack([self._speech_row(samples, rng) for _ in range(count)])
        noise = np.zeros_like(clean)
        for row in range(count):
            for kind in rng.choice(NOISE_KINDS, size=rng.integers(1, 3), p=NOISE_WEIGHTS):
                noise[row] += rng.uniform(0.3, 1.0) * self._noise(str(kind), samples, rng)
        noisy = training_data.mix(clean, noise, rng.uniform(*snr_db, count))
        scale = 10 ** rng.uniform(-2, 0, (count, 1)) / np.abs(noisy).max(axis=1, keepdims=True)
        return clean * scale, noisy * scale


def _tilted(x: np.ndarray, tilt: float) -> np.ndarray:
    """``x`` through a first-order pre-emphasis (tilt > 0, brighter) or de-emphasis (tilt < 0), same RMS."""
    if tilt >= 0:
        out = x - tilt * np.concatenate([[0.0], x[:-1]])
    else:
        from scipy.signal import lfilter

        out = lfilter([1.0], [1.0, tilt], x)
    return out * (np.std(x) / max(np.std(out), 1e-12))


def _dataset(mixer: SpeechMixer, rows: int, samples: int, seed: int, config: dict, snr_db):
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, rows, 8):  # 8 rows at a time: the running medians' windows need memory
        clean, noisy = mixer.rows(min(8, rows - start), samples, rng, snr_db)
        parts.append(trace_frames(clean, noisy, config))
    features, prior, noisy, clean = (torch.cat(p, dim=0) for p in zip(*parts))
    energy = clean.real.square().sum(dim=(1, 2)) + clean.imag.square().sum(dim=(1, 2))
    return features, prior, noisy, clean, energy


def train(
    mixer: SpeechMixer,
    description: str,
    output,
    epochs: int = 6,
    rows: int = 1200,
    seconds: float = 2.5,
    seed: int = 0,
    learning_rate: float = 1e-3,
    snr_db=(-5.0, 25.0),
    validate=None,
    announce=print,
    argv=None,
):
    """Train and save the model at ``mixer.rate``; ``validate(denoiser) -> float`` (higher is better) picks the
    epoch kept (epoch 0: the classical prior alone, a zero correction)."""
    torch.manual_seed(seed)
    config = dict(CONFIGS[mixer.rate])
    samples = int(seconds * mixer.rate)
    began = time.time()
    data = _dataset(mixer, rows, samples, seed, config, snr_db)
    held = _dataset(mixer, max(8, rows // 10), samples, seed + 1, config, snr_db)
    announce(f"{rows} training rows of {seconds:g} s at {mixer.rate} Hz made in {time.time() - began:.0f} s")
    module, best_epoch, best_score, log = fit_correction(
        data, held, config, WIDTHS, epochs, learning_rate, batch=8, validate=validate, announce=announce
    )
    metadata = config | {
        "denoiser": SPECTRAL_KIND,
        "trained_on": description,
        "best_epoch": best_epoch,
        "validation_score": best_score,
        "command": " ".join(argv or []),
    }
    save_model(module.eval(), output, config=metadata)
    return module, metadata, log
