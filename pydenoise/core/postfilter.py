"""Causal filters applied around the network: a spectral Wiener post-filter on the denoised frames and IIR
filters (a high-pass against sensor drift) on the input, each with per-channel state carried across chunks.
"""

from __future__ import annotations

import numpy as np
import torch

from pydenoise.core.noise_floor import NoiseFloor

__all__ = ["SpectralPostfilter", "CausalFilter", "CausalHighpass"]

#: :class:`SpectralPostfilter`'s recursive power smoothing per frame (a model's config gives it for its own hop).
DEFAULT_SMOOTHING = 0.7


class SpectralPostfilter:
    """Causal Wiener post-filter on denoised frames: removes the stationary noise a network leaves.

    A noise-learning model removes the noise it can reproduce (the smooth microseism) and leaves broadband noise;
    this filter takes the rest out where it stays below the signal. Per channel and frequency bin, each frame's
    power (Hann-tapered) is smoothed recursively over frames (``smoothing``); the bin's noise power is the
    smallest smoothed power over the last ``history`` frames (minimum statistics, as :class:`NoiseFloor` does
    for whole frames; it falls below the noise's mean power, which ``over_subtraction`` makes up for and
    exceeds); the frame's spectrum is scaled by ``sqrt(max(1 - over_subtraction · noise / power, gain_floor²))``.
    Frames are fed in order, in one call or many, with the same result, so streams match offline processing.
    The first ``skip`` frames (the offline left padding) are not counted in the noise history.

    Examples
    --------
    >>> import torch
    >>> post = SpectralPostfilter(history=20)
    >>> noise = torch.randn(1, 40, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> bool(post(noise).square().mean() < 0.3 * noise.square().mean())  # steady noise loses over 5 dB
    True
    """

    def __init__(
        self,
        history: int,
        skip: int = 0,
        over_subtraction: float = 3.0,
        smoothing: float = DEFAULT_SMOOTHING,
        gain_floor: float = 0.1,
    ):
        if not (over_subtraction >= 0 and 0 <= smoothing < 1 and 0 <= gain_floor <= 1):
            raise ValueError(
                "postfilter needs over_subtraction >= 0, 0 <= smoothing < 1 and 0 <= gain_floor <= 1, got "
                f"over_subtraction={over_subtraction}, smoothing={smoothing}, gain_floor={gain_floor}"
            )
        self.over_subtraction, self.smoothing, self.gain_floor = over_subtraction, smoothing, gain_floor
        self._noise = NoiseFloor(history, skip)
        self._smoothed = None  # (channels, bins) smoothed power of the last frame
        self._taper = None  # Hann window of the frames, made once: a stream calls this per chunk

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Filter ``(channels, K, window)`` frames, the next ``K`` of each channel's stream."""
        count, window = frames.shape[1:]
        if count == 0:
            return frames
        if self._taper is None:
            self._taper = torch.hann_window(window, dtype=frames.dtype, device=frames.device)
        tapered = torch.fft.rfft(frames * self._taper)
        power = torch.addcmul(tapered.real.square(), tapered.imag, tapered.imag)  # |X|²: abs() is 8x slower
        smoothed = torch.empty_like(power)
        previous = power[:, 0] if self._smoothed is None else self._smoothed
        for k in range(count):  # a recursion over frames; a stream step has one or two
            previous = torch.lerp(power[:, k], previous, self.smoothing, out=smoothed[:, k])
        self._smoothed = previous
        ratio = self._noise.update(smoothed).div_(smoothed.clamp_min(torch.finfo(smoothed.dtype).tiny))  # <= 1
        gain = ratio.mul_(-self.over_subtraction).add_(1).clamp_(self.gain_floor**2, 1).sqrt_()
        return torch.fft.irfft(torch.fft.rfft(frames).mul_(gain), n=window)


class CausalFilter:
    """A causal IIR filter (second-order sections), one state per channel, carried from chunk to chunk.

    Chunks fed in order give the same samples as the whole signal, so streams still match offline processing.
    The state starts as if the first sample had always been there, so a trace that starts off zero causes no
    start-up transient. Works on ``(channels, samples)`` numpy arrays or torch tensors (computed in float64 by
    SciPy, returned in the input's type, dtype and device).
    """

    def __init__(self, sos: np.ndarray):
        self._sos = sos
        self._state = None  # (sections, channels, 2), set from the first samples

    def __call__(self, x):
        """The next ``(channels, samples)`` of each channel's stream, filtered."""
        from scipy.signal import sosfilt, sosfilt_zi

        if x.shape[1] == 0:  # (a stream's empty chunk: nothing to copy off a device)
            return x
        data = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
        data = data.astype(np.float64, copy=False)
        if self._state is None:
            self._state = sosfilt_zi(self._sos)[:, None, :] * data[None, :, :1]
        filtered, self._state = sosfilt(self._sos, data, axis=1, zi=self._state)
        if isinstance(x, torch.Tensor):
            return torch.from_numpy(filtered).to(dtype=x.dtype, device=x.device)
        return filtered.astype(x.dtype, copy=False)


class CausalHighpass(CausalFilter):
    """Causal 2-pole Butterworth high-pass (a :class:`CausalFilter`) for removing sensor drift before denoising.

    Examples
    --------
    >>> import numpy as np
    >>> drift = 50.0 + np.linspace(0.0, 30.0, 60_000)[None]   # 10 minutes at 100 Hz: offset 50, then a ramp
    >>> out = CausalHighpass(0.01, 100.0)(drift)
    >>> round(float(abs(out).max()), 2), bool(abs(out[0, 30_000:]).max() < 1e-5)  # the offset of 50 leaves no step
    (0.36, True)
    """

    def __init__(self, cutoff_hz: float, sample_rate: float):
        from scipy.signal import butter

        super().__init__(butter(2, cutoff_hz, "highpass", fs=sample_rate, output="sos"))
