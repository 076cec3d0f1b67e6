"""What training a spectral-mask model needs of the engine (:mod:`pydenoise.core.spectral`), for every domain:
the frames, features and prior gains the engine computes for whole traces, and the loss on them.

The seismic and speech models train through these (:mod:`pydenoise.seismic.spectral_training`,
:mod:`pydenoise.audio.spectral_training`), so what a network learns from is what inference feeds it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pydenoise.core.level import LocalLevel
from pydenoise.core.spectral import FeatureTracker, MaskSettings, analysis_window, frame_spectra

__all__ = ["trace_frames", "output_snr_loss"]


def trace_frames(clean: np.ndarray, noisy: np.ndarray, config: dict):
    """``(features, prior logits, noisy spectra, clean spectra)`` of every frame the engine computes for whole
    rows."""
    settings = MaskSettings.from_config(config)
    frame, hop = settings.frame, settings.hop
    latency = frame - hop
    level = LocalLevel(frame, settings.level_blocks).process(noisy)
    pad = np.zeros((noisy.shape[0], latency))
    window = analysis_window(frame, settings.window)
    noisy_spectra = frame_spectra(np.concatenate([pad, noisy - level], axis=1), frame, hop, window, settings.fft_size)
    clean_spectra = frame_spectra(np.concatenate([pad, clean - level], axis=1), frame, hop, window, settings.fft_size)
    features, prior = FeatureTracker.of(settings, skip=math.ceil(latency / hop)).update(noisy_spectra)
    return features, prior.float(), noisy_spectra.to(torch.complex64), clean_spectra.to(torch.complex64)


def output_snr_loss(module, features, prior, noisy, clean, clean_energy):
    """Minus the mean output SNR (dB) over the traces: the evaluation's measure, so every trace counts alike."""
    gain = torch.sigmoid(prior + module(features.reshape(-1, features.shape[-1])).reshape(features.shape))
    error = gain * noisy - clean
    residual = (error.real.square() + error.imag.square()).sum(dim=(1, 2))
    return (10 * torch.log10(residual / clean_energy + 1e-6)).mean()
