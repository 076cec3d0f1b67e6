"""The README's main job: denoise a trace with the shipped seismic model and report what changed.

Run with ``python -m pydenoise.demo``.
"""

from __future__ import annotations

import time

import numpy as np

import pydenoise


def main() -> None:
    """Denoise a synthetic 100 Hz trace (a decaying wavelet in white noise) and print timing and SNR."""
    if "seismic" not in pydenoise.available_models():
        print("The seismic model is not shipped yet: running the framing and the fused kernel on an untrained")
        print("network, to show the pipeline works (its output is not a denoised trace).")
        model = pydenoise.Denoiser(pydenoise.nn.DDAE(), {"sample_rate": 100.0})
    else:
        model = pydenoise.load("seismic")
    rng = np.random.default_rng(0)
    t = np.arange(60_000) / 100.0
    clean = np.exp(-((t - 300.0) / 20.0) ** 2) * np.sin(2 * np.pi * 2.0 * t)
    noisy = clean + 0.3 * rng.standard_normal(t.size)
    start = time.perf_counter()
    denoised = model.denoise(noisy)
    seconds = time.perf_counter() - start
    print(f"{model}: {t.size} samples ({t.size / 100.0 / 60:.0f} min at 100 Hz) in {seconds * 1e3:.1f} ms")
    print(f"SNR in {pydenoise.metrics.snr(clean, noisy):.1f} dB, out {pydenoise.metrics.snr(clean, denoised):.1f} dB")


if __name__ == "__main__":
    main()
