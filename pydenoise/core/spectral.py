"""Spectral-mask denoising: a DDAE that reads a short-time spectrum and writes a gain per frequency bin.

In the spirit of DeepDenoiser (Zhu et al. 2019) and of the log-spectral speech DDAE (Lu et al. 2013): each
frame of ``frame`` samples (a sqrt-Hann window, ``hop`` apart) is Fourier-transformed; its ``frame // 2 + 1``
bins (the DDAE's window) become features ``log(power / noise floor)``, with the power recursively smoothed over
frames and the floor its median over the last ``history`` frames (:class:`RunningMedian`); the
fused op maps the features to one logit correction per bin, added to the logit of a classical Wiener gain
(decision-directed, :class:`FeatureTracker`), and the bin is scaled by the sigmoid of the sum. The features are
scale-free (a ratio of powers), so a model sees a quiet station and a loud one alike.

One engine, :class:`SpectralMaskEngine`, serves both offline and streamed calls: every frame is computed from
the same samples in the same order whatever the chunking, so a stream gives the samples of the offline call.
Before framing, each channel's local level (:mod:`pydenoise.core.level`) is taken out and added back after.
Latency: ``frame - hop`` samples plus up to one hop of buffering.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pydenoise.core.frames import as_signal
from pydenoise.core.level import DEFAULT_LEVEL_BLOCKS, LocalLevel
from pydenoise.core.nn import DDAE

__all__ = [
    "SPECTRAL_KIND",
    "SpectralMaskDenoiser",
    "SpectralMaskStream",
    "SpectralMaskEngine",
    "FeatureTracker",
    "frame_spectra",
]

#: ``config["denoiser"]`` of a spectral-mask model file.
SPECTRAL_KIND = "spectral_mask"
#: Features are clipped to this range (log power ratios): far below the floor is as good as silence.
FEATURE_RANGE = (-4.0, 16.0)
#: The a posteriori SNR (power over noise power) is capped here: 300 dB, where every gain is already 1 - 1e-9.
MAX_POSTERIOR_SNR = 1e30


def spectral_features(power: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """The network's input: ``log(power / floor)`` per bin, clipped to :data:`FEATURE_RANGE`, float32."""
    tiny = torch.finfo(power.dtype).tiny
    ratio = torch.log(power.clamp_min(tiny)) - torch.log(floor.clamp_min(tiny))
    return ratio.clamp_(*FEATURE_RANGE).to(torch.float32)


class SpectralMaskEngine:
    """Frame-by-frame spectral masking of a ``(channels, samples)`` float64 stream (see the module docstring).

    ``process(chunk)`` returns the output samples that are final, ``flush()`` the rest; the output is delayed by
    :attr:`latency` samples (plus the buffering of an incomplete hop).
    """

    def __init__(
        self,
        module: DDAE,
        frame: int,
        hop: int,
        history: int,
        smoothing: float,
        level_blocks: int,
        noise_scale: float = 2.0,
    ):
        bins = frame // 2 + 1
        if module.window != bins:
            raise ValueError(f"a frame of {frame} samples has {bins} bins, the network's window is {module.window}")
        if hop < 1 or frame % hop or frame // hop < 2:
            raise ValueError(f"hop {hop} must divide the frame ({frame} samples) at least twice: frames overlap-add")
        self.module, self.frame, self.hop = module, frame, hop
        self.latency = frame - hop
        self.window = analysis_window(frame)
        self.features = FeatureTracker(history, smoothing, math.ceil(self.latency / hop), noise_scale)
        self._level = LocalLevel(frame, level_blocks)
        self._pending = None  # (channels, samples) centred input not yet framed, the left padding first
        self._levels = None  # (channels, samples) levels of the input samples not yet output
        self._tail = None  # (channels, frame - hop) overlap-add carry
        self._padding_left = self.latency  # output samples of the left padding still to drop
        self._first = None  # the input before a whole first block has arrived

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.shape[1] == 0:  # nothing to add (kept out of the first block, whose level needs samples)
            return chunk
        if self._pending is None:
            # The level of the first block needs the whole block (LocalLevel): wait for it.
            self._first = chunk if self._first is None else np.concatenate([self._first, chunk], axis=1)
            if self._first.shape[1] < self.frame:
                return chunk[:, :0]
            chunk, self._first = self._first, None
            self._begin(chunk.shape[0])
        return self._centred_step(chunk)

    def flush(self) -> np.ndarray:
        """The remaining samples: the input is padded with zeros until every sample's frames are complete."""
        if self._pending is None:
            if self._first is None:
                return np.zeros((0, 0))
            self._begin(self._first.shape[0])
            head = self._centred_step(self._first)
        else:
            head = np.zeros((self._pending.shape[0], 0))
        waiting = self._levels.shape[1]
        tail = self._step(np.zeros((self._pending.shape[0], self.frame)))[:, :waiting]
        return np.concatenate([head, tail], axis=1)

    def _centred_step(self, chunk: np.ndarray) -> np.ndarray:
        level = self._level.process(chunk)
        self._levels = np.concatenate([self._levels, level], axis=1)
        return self._step(chunk - level)

    def _begin(self, channels: int) -> None:
        self._pending = np.zeros((channels, self.latency))  # the left padding: the first frames start before x
        self._levels = np.zeros((channels, 0))
        self._tail = torch.zeros((channels, self.frame - self.hop), dtype=torch.float64)

    def _step(self, centred: np.ndarray) -> np.ndarray:
        joined = np.concatenate([self._pending, centred], axis=1)
        spectra = frame_spectra(joined, self.frame, self.hop, self.window)
        self._pending = joined[:, spectra.shape[1] * self.hop :]
        if spectra.shape[1] == 0:
            return centred[:, :0]
        features, prior = self.features.update(spectra)
        channels, count, bins = features.shape
        with torch.no_grad():
            correction = self.module(features.reshape(channels * count, bins)).reshape(channels, count, bins)
        return self._emit(self._overlap_add(spectra * torch.sigmoid(prior + correction.double())))

    def _overlap_add(self, spectra: torch.Tensor) -> torch.Tensor:
        """The ``K · hop`` samples that the ``K`` masked frames complete."""
        frames = torch.fft.irfft(spectra, n=self.frame) * self.window
        channels, count, _ = frames.shape
        total = torch.zeros((channels, (count - 1) * self.hop + self.frame), dtype=torch.float64)
        total[:, : self._tail.shape[1]] += self._tail
        for k in range(count):  # one pass over the frames
            total[:, k * self.hop : k * self.hop + self.frame] += frames[:, k]
        done = count * self.hop
        self._tail = total[:, done:].clone()
        return total[:, :done] / window_sum(self.frame, self.hop)

    def _emit(self, out: torch.Tensor) -> np.ndarray:
        """Add the levels back to the final samples, once the left padding's are dropped."""
        skip = min(out.shape[1], self._padding_left)
        self._padding_left -= skip
        out = out[:, skip:].numpy()
        levels, self._levels = self._levels[:, : out.shape[1]], self._levels[:, out.shape[1] :]
        return out[:, : levels.shape[1]] + levels


class RunningMedian:
    """Per channel and bin, the median of the last ``history`` values fed (fewer at a stream's start; the first
    ``skip`` values, the offline left padding, are never counted). Chunk sizes do not change the result.

    The median of recent frames is the noise floor of a bin as long as a signal occupies it less than half the
    time: a robust estimate where a minimum (minimum statistics) is biased low by a varying factor.

    Examples
    --------
    >>> import torch
    >>> median = RunningMedian(history=3)
    >>> median.update(torch.tensor([[[1.0], [9.0], [5.0], [7.0]]]))[0, :, 0].tolist()
    [1.0, 1.0, 5.0, 7.0]
    """

    def __init__(self, history: int, skip: int = 0):
        if history < 1 or skip < 0:
            raise ValueError(f"history must be >= 1 and skip >= 0, got history={history}, skip={skip}")
        self.history, self.skip = int(history), int(skip)
        self._recent = None  # (channels, history - 1, bins): the values before the next ones, NaN where none

    def update(self, values: torch.Tensor) -> torch.Tensor:
        """Medians ``(channels, K, bins)`` of the next ``K`` values ``(channels, K, bins)``."""
        if self._recent is None:
            shape = (values.shape[0], self.history - 1, *values.shape[2:])
            self._recent = values.new_full(shape, float("nan"))
        counted = values.clone()
        skipped = min(self.skip, values.shape[1])
        counted[:, :skipped] = float("nan")
        self.skip -= skipped
        joined = torch.cat([self._recent, counted], dim=1)
        self._recent = joined[:, joined.shape[1] - self.history + 1 :]
        windows = joined.unfold(1, self.history, 1)  # (channels, K, bins, history)
        medians = windows.nanmedian(dim=-1).values
        return torch.where(medians.isnan(), values, medians)  # nothing counted yet: the value itself


class FeatureTracker:
    """What the network sees of consecutive frames of a stream, and the classical gain it corrects.

    Features: each bin's power, recursively smoothed over frames (``smoothing``), against its noise floor (the
    median smoothed power over the last ``history`` frames, :class:`RunningMedian`). Prior gain: a Wiener gain
    with the decision-directed a priori SNR of Ephraim and Malah (``prior_smoothing``), the noise power being
    ``noise_scale`` times the floor, at least ``gain_floor``. The network adds its output to the prior gain's
    logit, so an untrained correction (zero) leaves the classical filter, and it learns what that filter gets
    wrong (event onsets, spikes, spectral shapes).
    """

    def __init__(
        self,
        history: int,
        smoothing: float,
        skip: int = 0,
        noise_scale: float = 2.0,
        prior_smoothing: float = 0.98,
        gain_floor: float = 0.05,
    ):
        if not (0 <= smoothing < 1 and 0 <= prior_smoothing < 1 and 0 < gain_floor < 1 and noise_scale > 0):
            raise ValueError(
                "need 0 <= smoothing < 1, 0 <= prior_smoothing < 1, 0 < gain_floor < 1 and noise_scale > 0, got "
                f"smoothing={smoothing}, prior_smoothing={prior_smoothing}, gain_floor={gain_floor}, "
                f"noise_scale={noise_scale}"
            )
        self.smoothing, self.noise_scale = smoothing, noise_scale
        self.prior_smoothing, self.gain_floor = prior_smoothing, gain_floor
        self._floor = RunningMedian(history, skip=skip)
        self._smoothed = None  # (channels, bins) of the last frame
        self._clean_power = None  # (channels, bins) the last frame's estimated clean power over the noise power

    def update(self, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (float32) and prior gain logits (float64), ``(channels, K, bins)`` each, of the next ``K``
        frames' spectra."""
        power = spectra.real.square() + spectra.imag.square()
        smoothed = self._recursion(power)
        floor = self._floor.update(smoothed)
        return spectral_features(smoothed, floor), self._prior_logits(power, floor)

    def _recursion(self, power: torch.Tensor) -> torch.Tensor:
        smoothed = torch.empty_like(power)
        previous = power[:, 0] if self._smoothed is None else self._smoothed
        for k in range(power.shape[1]):
            previous = torch.lerp(power[:, k], previous, self.smoothing, out=smoothed[:, k])
        self._smoothed = previous
        return smoothed

    def _prior_logits(self, power: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        # A zero floor (a channel that starts with zeros) must not make the posterior infinite: the prior would
        # then be inf and its gain inf / inf = NaN. Capped far above any SNR that changes a gain (1 - 1e-9 at most).
        posterior = (power / (self.noise_scale * floor).clamp_min(torch.finfo(power.dtype).tiny)).clamp_max_(
            MAX_POSTERIOR_SNR
        )
        gains = torch.empty_like(power)
        previous = torch.zeros_like(power[:, 0]) if self._clean_power is None else self._clean_power
        for k in range(power.shape[1]):
            prior = torch.lerp((posterior[:, k] - 1).clamp_min(0), previous, self.prior_smoothing)
            gain = (prior / (1 + prior)).clamp_(self.gain_floor, 1 - 1e-9)
            gains[:, k] = gain
            previous = gain.square() * posterior[:, k]
        self._clean_power = previous
        return torch.logit(gains)


def analysis_window(frame: int) -> torch.Tensor:
    """sqrt-Hann: applied at analysis and at synthesis, the product is a Hann window, which overlap-adds to a
    constant at any hop that divides the frame at least twice."""
    return torch.hann_window(frame, periodic=True, dtype=torch.float64).sqrt_()


def window_sum(frame: int, hop: int) -> float:
    return frame / hop / 2


def frame_spectra(signal: np.ndarray, frame: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """Spectra ``(channels, K, frame // 2 + 1)`` of the complete frames ``hop`` apart from ``signal``'s start."""
    count = (signal.shape[1] - frame) // hop + 1 if signal.shape[1] >= frame else 0
    if count == 0:
        return torch.zeros((signal.shape[0], 0, frame // 2 + 1), dtype=torch.complex128)
    frames = np.lib.stride_tricks.sliding_window_view(signal, frame, axis=1)[:, : (count - 1) * hop + 1 : hop]
    return torch.fft.rfft(torch.from_numpy(np.array(frames)) * window)


class SpectralMaskDenoiser:
    """A spectral-mask model (module docstring): ``denoise`` traces offline, or ``stream()`` them.

    Examples
    --------
    >>> import numpy as np
    >>> from pydenoise.core.nn import DDAE
    >>> m = SpectralMaskDenoiser(DDAE((256, 64, 256)), {"frame": 510, "hop": 85, "sample_rate": 100.0})
    >>> m.denoise(np.zeros(1000)).shape, m.latency
    ((1000,), 425)
    """

    residual = False  # the network writes gains, not a noise estimate

    def __init__(self, module: DDAE, config: dict, name: str | None = None):
        self.module = module.eval()
        self.config = dict(config)
        self.name = name
        self.window = module.window
        self.frame = int(self.config.get("frame", 2 * (module.window - 1)))
        self.hop = int(self.config.get("hop", self.frame // 6))
        rate = self.config.get("sample_rate")
        self.sample_rate = None if rate is None else float(rate)
        self.history = int(self.config.get("history_frames", 60))
        self.smoothing = float(self.config.get("smoothing", 0.5))
        self.level_blocks = int(self.config.get("level_blocks", DEFAULT_LEVEL_BLOCKS))
        self.noise_scale = float(self.config.get("noise_scale", 2.0))
        self.engine()  # checks the configuration now, not at the first call

    def __repr__(self) -> str:
        rate = f"{self.sample_rate:g} Hz" if self.sample_rate else "any rate"
        return f"SpectralMaskDenoiser({self.name or 'unnamed'}: frame {self.frame}, hop {self.hop}, {rate})"

    @property
    def latency(self) -> int:
        """Samples a stream holds back (``frame - hop``; up to one more hop is buffered)."""
        return self.frame - self.hop

    def engine(self) -> SpectralMaskEngine:
        """A fresh engine: one per stream, or per offline call."""
        return SpectralMaskEngine(
            self.module, self.frame, self.hop, self.history, self.smoothing, self.level_blocks, self.noise_scale
        )

    def denoise(self, x, hop: int | None = None):
        """Denoise ``(samples,)`` or ``(channels, samples)`` float data; same type, shape and dtype back.

        ``hop`` is accepted for the interface of :class:`~pydenoise.core.denoiser.Denoiser` and must be the
        model's own: the frames' overlap is part of what the network learnt.
        """
        self._check_hop(hop)
        signal, was_1d = _as_float64_signal(x)
        engine = self.engine()
        out = np.concatenate([engine.process(signal), engine.flush()], axis=1) if signal.shape[1] else signal
        out = out[0] if was_1d else out
        if isinstance(x, torch.Tensor):
            return torch.from_numpy(np.ascontiguousarray(out)).to(dtype=x.dtype, device=x.device)
        return out.astype(np.asarray(x).dtype, copy=False)

    def stream(self, hop: int | None = None) -> SpectralMaskStream:
        """A stream of ``(channels, samples)`` (or ``(samples,)``) chunks giving the samples of :meth:`denoise`."""
        self._check_hop(hop)
        return SpectralMaskStream(self)

    def _check_hop(self, hop) -> None:
        if hop is not None and int(hop) != self.hop:
            raise ValueError(f"a spectral-mask model runs at its own hop ({self.hop} samples), got hop={hop}")


class SpectralMaskStream:
    """Chunk-by-chunk processing with a :class:`SpectralMaskDenoiser`: ``process`` returns the samples that are
    final (the input's, :attr:`latency` samples late), ``flush`` the rest; together they equal ``denoise``."""

    def __init__(self, model: SpectralMaskDenoiser):
        self.latency = model.latency
        self._engine = model.engine()
        self._was_1d = None

    def process(self, chunk):
        signal, was_1d = _as_float64_signal(chunk)
        if self._was_1d is None:
            self._was_1d = was_1d
        elif was_1d != self._was_1d:
            raise ValueError("every chunk of a stream must have the same rank as the first")
        return self._shaped(self._engine.process(signal))

    def flush(self):
        return self._shaped(self._engine.flush())

    def _shaped(self, out: np.ndarray) -> np.ndarray:
        return out[0] if self._was_1d and out.shape[0] else out


def _as_float64_signal(x) -> tuple[np.ndarray, bool]:
    """``x`` checked as :func:`~pydenoise.core.frames.as_signal` checks a Denoiser's input (float32/float64, 1-D
    or 2-D, finite, within the dtype's sample limit), as a 2-D float64 array, and whether it was 1-D. (Other
    dtypes were cast: ints came back truncated or wrapped, complex lost its imaginary part.)"""
    signal, was_1d = as_signal(x, allow_empty=True)
    return signal.cpu().double().numpy(), was_1d
