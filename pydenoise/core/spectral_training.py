"""What training a spectral-mask model needs of the engine (:mod:`pydenoise.core.spectral`), for every domain:
the frames, features and prior gains the engine computes for whole traces, the loss on them, and the training
loop of the network's correction.

The seismic and speech models train through these (:mod:`pydenoise.seismic.spectral_training`,
:mod:`pydenoise.audio.spectral_training`), so what a network learns from is what inference feeds it.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from pydenoise.core.level import LocalLevel
from pydenoise.core.nn import DDAE
from pydenoise.core.spectral import MaskSettings, SpectralMaskDenoiser, analysis_window, frame_spectra
from pydenoise.core.spectral_features import FeatureTracker

__all__ = ["trace_frames", "output_snr_loss", "fit_correction"]


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


def fit_correction(
    data, held, config: dict, widths, epochs: int, learning_rate: float, batch: int, validate=None, announce=print
):
    """Train a mask network's logit correction on ``data`` (the tuples :func:`trace_frames` gives, with the
    clean energy per trace) and keep the best epoch: by ``validate(denoiser) -> float`` (higher is better), or
    by the loss on ``held`` without one. Epoch 0 is the zero correction, the classical prior alone: a network
    that does not beat its own prior is not kept. Returns ``(module, best epoch, its score, log rows)``."""
    module = DDAE(widths)
    with torch.no_grad():  # start from the classical prior: a zero correction
        module.layers[-1].weight.zero_()
        module.layers[-1].bias.zero_()
    optimiser = torch.optim.Adam(module.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    best, log = None, []
    for epoch in range(epochs + 1):
        began = time.time()
        if epoch:
            module.train()
            for rows in torch.randperm(data[0].shape[0]).split(batch):
                optimiser.zero_grad()
                output_snr_loss(module, *(d[rows] for d in data)).backward()
                optimiser.step()
            schedule.step()
        module.eval()
        with torch.no_grad():
            held_loss = float(output_snr_loss(module, *held))
        score = validate(SpectralMaskDenoiser(module, config)) if validate else -held_loss
        validation = score if validate else float("nan")  # without a validation set, the held-out loss chooses
        log.append({"epoch": epoch, "held_loss": held_loss, "validation": validation, "seconds": time.time() - began})
        announce(f"epoch {epoch}: held-out loss {held_loss:.4f}, validation {score:+.3f} ({log[-1]['seconds']:.0f} s)")
        if best is None or score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in module.state_dict().items()})
    module.load_state_dict(best[2])
    return module.eval(), best[1], best[0], log
