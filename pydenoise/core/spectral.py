"""Spectral-mask denoising: a DDAE that reads a short-time spectrum and writes a gain per frequency bin.

In the spirit of DeepDenoiser (Zhu et al. 2019) and of the log-spectral speech DDAE (Lu et al. 2013): each
frame of ``frame`` samples (a sqrt-Hann or Hann window, ``hop`` apart) is Fourier-transformed; its
``frame // 2 + 1`` bins (the DDAE's window) become features ``log(power / noise floor)``, with the power
recursively smoothed over frames and the floor a low quantile of it over the last ``history`` frames
(:class:`RunningQuantile`); the fused op maps the features to one logit correction per bin, added to the
logit of a classical Wiener gain (decision-directed, :class:`FeatureTracker`), and the bin is scaled by the
sigmoid of the sum. The features are scale-free (a ratio of powers), so a model sees a quiet station and a loud
one alike.

One engine, :class:`SpectralMaskEngine`, serves both offline and streamed calls: every frame is computed from
the same samples in the same order whatever the chunking, so a stream gives the samples of the offline call.
Before framing, each channel's local level (:mod:`pydenoise.core.level`) is taken out; models made since the
level's leak was measured leave it out of the output too, as a band-pass does (:class:`MaskSettings`).
Latency: ``frame - hop`` samples plus up to one hop of buffering. An ``fft_size`` above the frame zero-pads each
frame before the transform (``fft_size // 2 + 1`` bins, the network's window, from a shorter frame): a 256-wide
network on a 20 ms frame at 16 kHz, where 256 bins of the frame itself would take 32 ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pydenoise.core.frames import as_signal
from pydenoise.core.level import DEFAULT_LEVEL_BLOCKS, LocalLevel
from pydenoise.core.nn import DDAE

__all__ = [
    "SPECTRAL_KIND",
    "MaskSettings",
    "SpectralMaskDenoiser",
    "SpectralMaskStream",
    "SpectralMaskEngine",
    "FeatureTracker",
    "RunningQuantile",
    "frame_spectra",
]

#: ``config["denoiser"]`` of a spectral-mask model file.
SPECTRAL_KIND = "spectral_mask"
#: Features are clipped to this range (log power ratios): far below the floor is as good as silence.
FEATURE_RANGE = (-4.0, 16.0)
#: The a posteriori SNR (power over noise power) is capped here: 300 dB, where every gain is already 1 - 1e-9.
MAX_POSTERIOR_SNR = 1e30
#: The decision-directed prior's smoothing over frames (Ephraim and Malah's usual value).
PRIOR_SMOOTHING = 0.98
#: Analysis = synthesis windows, and how many frames per hop each needs to overlap-add to a constant.
WINDOWS = {"sqrt-hann": 2, "hann": 3}


@dataclass(frozen=True)
class MaskSettings:
    """Everything of a spectral-mask model but its network: the keys of its file's config. A key a file lacks
    takes the value the first shipped model was made with, so that file keeps its results.

    ``floor_quantile`` 0.25 with ``noise_scale`` 3.5, a Hann ``window`` and no ``restore_level`` gained 1.7 dB on
    the seismic validation split over those first values (median, 2.0, sqrt-Hann, restored): a median floor rises
    into long codas, a sqrt-Hann window leaks the microseism into the event's band, and the level added back
    carries the microseism of a trace's first minutes (``docs/seismic.md``).
    """

    frame: int
    hop: int
    history: int = 60  # frames of the noise-floor window
    smoothing: float = 0.5  # of each bin's power, recursively over frames
    level_blocks: int = DEFAULT_LEVEL_BLOCKS
    noise_scale: float = 2.0  # the noise power over the floor
    floor_quantile: float = 0.5
    window: str = "sqrt-hann"
    restore_level: bool = True  # add the local level back to the output
    fft_size: int | None = None  # a frame zero-padded to this many samples: bins for a short, low-latency frame
    floor_stride: int = 1  # the floor's quantile over every k-th frame of its history: 1/k of the work

    @property
    def bins(self) -> int:
        return (self.fft_size or self.frame) // 2 + 1

    @classmethod
    def from_config(cls, config: dict, bins: int | None = None) -> MaskSettings:
        """The settings of a model file's ``config``; without a ``frame`` key, the frame of ``bins`` bins."""
        frame = int(config["frame"] if bins is None else config.get("frame", 2 * (bins - 1)))
        names = {"history_frames": "history"}
        given = {names.get(k, k): v for k, v in config.items() if names.get(k, k) in cls.__dataclass_fields__}
        return cls(**(given | {"frame": frame, "hop": int(config.get("hop", frame // 6))}))

    def __post_init__(self):
        if self.window not in WINDOWS:
            raise ValueError(f"window {self.window!r} is not one of {sorted(WINDOWS)}")
        least = WINDOWS[self.window]
        if self.hop < 1 or self.frame % self.hop or self.frame // self.hop < least:
            raise ValueError(
                f"hop {self.hop} must divide the frame ({self.frame} samples) at least {least} times: "
                f"{self.window} frames overlap-add"
            )
        if self.fft_size is not None and self.fft_size < self.frame:
            raise ValueError(f"fft_size {self.fft_size} is shorter than the frame ({self.frame} samples)")
        if not 0 < self.floor_quantile < 1:
            raise ValueError(f"floor_quantile must be in (0, 1), got {self.floor_quantile}")


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

    def __init__(self, module: DDAE, settings: MaskSettings):
        frame, hop = settings.frame, settings.hop
        if module.window != settings.bins:
            padded = f" zero-padded to {settings.fft_size}" if (settings.fft_size or frame) > frame else ""
            raise ValueError(
                f"a frame of {frame} samples{padded} has {settings.bins} bins, the network's window is {module.window}"
            )
        self.module, self.settings, self.frame, self.hop = module, settings, frame, hop
        self.latency = frame - hop
        self.window = analysis_window(frame, settings.window)
        self.features = FeatureTracker.of(settings, skip=math.ceil(self.latency / hop))
        self._level = LocalLevel(frame, settings.level_blocks)
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
        spectra = frame_spectra(joined, self.frame, self.hop, self.window, self.settings.fft_size)
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
        frames = torch.fft.irfft(spectra, n=self.settings.fft_size or self.frame)[..., : self.frame] * self.window
        channels, count, _ = frames.shape
        total = torch.zeros((channels, (count - 1) * self.hop + self.frame), dtype=torch.float64)
        total[:, : self._tail.shape[1]] += self._tail
        for k in range(count):  # one pass over the frames
            total[:, k * self.hop : k * self.hop + self.frame] += frames[:, k]
        done = count * self.hop
        self._tail = total[:, done:].clone()
        return total[:, :done] / window_sum(self.frame, self.hop, self.settings.window)

    def _emit(self, out: torch.Tensor) -> np.ndarray:
        """The final samples, once the left padding's are dropped, with their levels back if the model says so."""
        skip = min(out.shape[1], self._padding_left)
        self._padding_left -= skip
        out = out[:, skip:].numpy()
        levels, self._levels = self._levels[:, : out.shape[1]], self._levels[:, out.shape[1] :]
        out = out[:, : levels.shape[1]]
        return out + levels if self.settings.restore_level else out


#: Values sorted at once by :class:`RunningQuantile` (a bound on its copies: 64 MiB of float64).
WINDOW_VALUES_PER_BLOCK = 1 << 23


class RunningQuantile:
    """Per channel and bin, the ``quantile`` of the last ``history`` values fed (fewer at a stream's start; the
    first ``skip`` values, the offline left padding, are never counted). Chunk sizes do not change the result.
    With a ``stride`` above 1 the quantile is of every ``stride``-th of those values, the newest included: the
    same span of time for a ``stride``-th of the work (at 48 kHz, hundreds of frames a second).

    A low quantile of recent frames is the noise floor of a bin as long as a signal occupies it less than
    ``1 - quantile`` of the time (a median rises into a coda longer than half the window): robust where a
    minimum (minimum statistics) is biased low by a factor that varies with the power's spread.

    Examples
    --------
    >>> import torch
    >>> median = RunningQuantile(history=3)
    >>> median.update(torch.tensor([[[1.0], [9.0], [5.0], [7.0]]]))[0, :, 0].tolist()
    [1.0, 1.0, 5.0, 7.0]
    """

    def __init__(self, history: int, quantile: float = 0.5, skip: int = 0, stride: int = 1):
        if history < 1 or stride < 1 or skip < 0 or not 0 < quantile < 1:
            raise ValueError(
                f"need history and stride >= 1, 0 < quantile < 1 and skip >= 0, got history={history}, "
                f"stride={stride}, quantile={quantile}, skip={skip}"
            )
        self.history, self.quantile, self.skip, self.stride = int(history), float(quantile), int(skip), int(stride)
        self._recent = None  # (channels, history - 1, bins): the values before the next ones, NaN where none

    def update(self, values: torch.Tensor) -> torch.Tensor:
        """Quantiles ``(channels, K, bins)`` at the next ``K`` values ``(channels, K, bins)``."""
        if self._recent is None:
            shape = (values.shape[0], self.history - 1, *values.shape[2:])
            self._recent = values.new_full(shape, float("nan"))
        counted = values.clone()
        skipped = min(self.skip, values.shape[1])
        counted[:, :skipped] = float("nan")
        self.skip -= skipped
        joined = torch.cat([self._recent, counted], dim=1)
        self._recent = joined[:, joined.shape[1] - self.history + 1 :]
        floors = self._window_quantiles(joined.detach())
        return torch.where(floors.isnan(), values, floors)  # nothing counted yet: the value itself

    def _window_quantiles(self, joined: torch.Tensor) -> torch.Tensor:
        """The quantile of each window of ``joined`` ``(channels, T, bins)``, NaNs not counted: the values of
        ``torch.nanquantile`` (the lower middle value for the median, as ``torch.nanmedian``).

        The windows are sorted along a contiguous axis, by numpy on the CPU: its SIMD sort of short rows is
        about 12x as fast as ``nanquantile`` over ``unfold``'s strided windows, which took 85 % of a seismic
        mask model's time. Blocks of windows bound the sorted copies' memory (an hour at 16 kHz has 360,000).
        """
        series = joined.movedim(1, -1).contiguous()  # (channels, bins, T)
        windows = series.shape[-1] - self.history + 1
        block = max(1, WINDOW_VALUES_PER_BLOCK // (series.shape[0] * series.shape[1] * self.history))
        floors = [
            self._quantiles_of_sorted(self._sorted_windows(series[..., k : k + block + self.history - 1]))
            for k in range(0, windows, block)
        ]
        return torch.cat(floors, dim=-1).movedim(-1, 1) if floors else joined[:, :0]  # (channels, K, bins)

    def _sorted_windows(self, series: torch.Tensor) -> torch.Tensor:
        """``(channels, bins, K, n)``: the values each window takes, ascending, NaNs last."""
        newest_in_step = (self.history - 1) % self.stride  # the values taken: every stride-th, the newest included
        if series.device.type != "cpu":
            return series.unfold(-1, self.history, 1)[..., newest_in_step :: self.stride].sort(-1).values
        windows = np.lib.stride_tricks.sliding_window_view(series.numpy(), self.history, axis=-1)
        return torch.from_numpy(np.sort(windows[..., newest_in_step :: self.stride], axis=-1))

    def _quantiles_of_sorted(self, ordered: torch.Tensor) -> torch.Tensor:
        last = torch.full(
            (*ordered.shape[:-1], 1), ordered.shape[-1] - 1, device=ordered.device
        )  # index of the last counted value
        uncounted = ordered[..., -1].isnan()  # only at a stream's start: counting NaNs everywhere cost 3x the sort
        if uncounted.any():
            last[uncounted] = (last[uncounted] - ordered[uncounted].isnan().sum(-1, keepdim=True)).clamp_min(0)
        if self.quantile == 0.5:
            return ordered.gather(-1, last // 2).squeeze(-1)
        rank = self.quantile * last.to(ordered.dtype)
        below = rank.floor().long()
        lower, upper = ordered.gather(-1, below), ordered.gather(-1, (below + 1).clamp_max(last))
        return torch.lerp(lower, upper, rank - below).squeeze(-1)


class FeatureTracker:
    """What the network sees of consecutive frames of a stream, and the classical gain it corrects.

    Features: each bin's power, recursively smoothed over frames (``smoothing``), against its noise floor (a
    quantile of the smoothed power over the last ``history`` frames, :class:`RunningQuantile`). Prior gain: a
    Wiener gain with the decision-directed a priori SNR of Ephraim and Malah (``prior_smoothing``), the noise
    power being ``noise_scale`` times the floor, at least ``gain_floor``. The network adds its output to the
    prior gain's logit, so an untrained correction (zero) leaves the classical filter, and it learns what that
    filter gets wrong (event onsets, spikes, spectral shapes).
    """

    def __init__(
        self,
        history: int,
        smoothing: float,
        skip: int = 0,
        noise_scale: float = 2.0,
        prior_smoothing: float = PRIOR_SMOOTHING,
        gain_floor: float = 0.05,
        floor_quantile: float = 0.5,
        floor_stride: int = 1,
    ):
        if not (0 <= smoothing < 1 and 0 <= prior_smoothing < 1 and 0 < gain_floor < 1 and noise_scale > 0):
            raise ValueError(
                "need 0 <= smoothing < 1, 0 <= prior_smoothing < 1, 0 < gain_floor < 1 and noise_scale > 0, got "
                f"smoothing={smoothing}, prior_smoothing={prior_smoothing}, gain_floor={gain_floor}, "
                f"noise_scale={noise_scale}"
            )
        self.smoothing, self.noise_scale = smoothing, noise_scale
        self.prior_smoothing, self.gain_floor = prior_smoothing, gain_floor
        self._floor = RunningQuantile(history, floor_quantile, skip=skip, stride=floor_stride)
        self._smoothed = None  # (channels, bins) of the last frame
        self._clean_power = None  # (channels, bins) the last frame's estimated clean power over the noise power

    @classmethod
    def of(cls, settings: MaskSettings, skip: int) -> FeatureTracker:
        """The tracker of a model's settings; ``skip``: frames of left padding, not counted in the floor."""
        return cls(
            settings.history,
            settings.smoothing,
            skip,
            settings.noise_scale,
            floor_quantile=settings.floor_quantile,
            floor_stride=settings.floor_stride,
        )

    def update(self, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (float32) and prior gain logits (float64), ``(channels, K, bins)`` each, of the next ``K``
        frames' spectra."""
        power = spectra.real.square() + spectra.imag.square()
        smoothed = self._recursion(power)
        floor = self._floor.update(smoothed)
        return spectral_features(smoothed, floor), self._prior_logits(power, floor)

    # The two recursions run over frames in numpy, in place: per frame, a few operations on one row of bins,
    # where each torch call's overhead cost 2.7x as much (a seismic day has 10,000 frames, 48 kHz audio 750 a
    # second). ``a + w * (b - a)`` is torch.lerp's arithmetic: the values are those of the torch loops before.
    def _recursion(self, power: torch.Tensor) -> torch.Tensor:
        values = power.numpy()
        smoothed = np.empty_like(values)
        previous = values[:, 0] if self._smoothed is None else self._smoothed
        for k in range(values.shape[1]):
            out = smoothed[:, k]
            np.subtract(previous, values[:, k], out=out)
            out *= self.smoothing
            out += values[:, k]
            previous = out
        self._smoothed = previous.copy()
        return torch.from_numpy(smoothed)

    def _prior_logits(self, power: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        # A zero floor (a channel that starts with zeros) must not make the posterior infinite: the prior would
        # then be inf and its gain inf / inf = NaN. Capped far above any SNR that changes a gain (1 - 1e-9 at most).
        posterior = (power / (self.noise_scale * floor).clamp_min(torch.finfo(power.dtype).tiny)).clamp_max_(
            MAX_POSTERIOR_SNR
        )
        posterior = posterior.numpy()
        excess = np.maximum(posterior - 1, 0)  # the maximum-likelihood SNR of each frame
        gains = np.empty_like(posterior)
        previous = np.zeros_like(posterior[:, 0]) if self._clean_power is None else self._clean_power
        for k in range(posterior.shape[1]):
            gain = gains[:, k]
            np.subtract(previous, excess[:, k], out=gain)  # the decision-directed prior, then its Wiener gain
            gain *= self.prior_smoothing
            gain += excess[:, k]
            np.divide(gain, gain + 1, out=gain)
            np.clip(gain, self.gain_floor, 1 - 1e-9, out=gain)
            previous = gain * gain * posterior[:, k]
        self._clean_power = previous
        return torch.logit(torch.from_numpy(gains))


def analysis_window(frame: int, kind: str = "sqrt-hann") -> torch.Tensor:
    """The window applied at analysis and again at synthesis. sqrt-Hann: the product is a Hann window, which
    overlap-adds to a constant at any hop that divides the frame at least twice. Hann: the product (Hann²) needs
    three times; its analysis sidelobes are lower (-31 dB, falling 18 dB an octave, against -23 and 12)."""
    hann = torch.hann_window(frame, periodic=True, dtype=torch.float64)
    return hann.sqrt_() if kind == "sqrt-hann" else hann


def window_sum(frame: int, hop: int, kind: str = "sqrt-hann") -> float:
    """The constant that the product of the windows overlap-adds to: the mean of Hann is 1/2, of Hann² 3/8."""
    return frame / hop * (0.5 if kind == "sqrt-hann" else 0.375)


def frame_spectra(
    signal: np.ndarray, frame: int, hop: int, window: torch.Tensor, fft_size: int | None = None
) -> torch.Tensor:
    """Spectra ``(channels, K, n // 2 + 1)`` of the complete frames ``hop`` apart from ``signal``'s start, each
    zero-padded to ``n = fft_size`` (default: the frame) samples."""
    n = fft_size or frame
    count = (signal.shape[1] - frame) // hop + 1 if signal.shape[1] >= frame else 0
    if count == 0:
        return torch.zeros((signal.shape[0], 0, n // 2 + 1), dtype=torch.complex128)
    frames = np.lib.stride_tricks.sliding_window_view(signal, frame, axis=1)[:, : (count - 1) * hop + 1 : hop]
    return torch.fft.rfft(torch.from_numpy(np.array(frames)) * window, n=n)


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
        self.settings = MaskSettings.from_config(self.config, module.window)
        self.frame, self.hop = self.settings.frame, self.settings.hop
        rate = self.config.get("sample_rate")
        self.sample_rate = None if rate is None else float(rate)
        self.engine()  # checks the network against the settings now, not at the first call

    def __repr__(self) -> str:
        rate = f"{self.sample_rate:g} Hz" if self.sample_rate else "any rate"
        return f"SpectralMaskDenoiser({self.name or 'unnamed'}: frame {self.frame}, hop {self.hop}, {rate})"

    @property
    def latency(self) -> int:
        """Samples a stream holds back (``frame - hop``; up to one more hop is buffered)."""
        return self.frame - self.hop

    def engine(self) -> SpectralMaskEngine:
        """A fresh engine: one per stream, or per offline call."""
        return SpectralMaskEngine(self.module, self.settings)

    def denoise(self, x, hop: int | None = None, device=None):
        """Denoise ``(samples,)`` or ``(channels, samples)`` float data; same type, shape and dtype back.

        ``hop`` and ``device`` are accepted for the interface of :class:`~pydenoise.core.denoiser.Denoiser`:
        the hop must be the model's own (the frames' overlap is part of what the network learnt) and the device
        the CPU (the frame recursions are sequential; a tensor elsewhere comes back where it was).
        """
        self._check_hop(hop)
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"a spectral-mask model runs on the CPU, got device={device!r}")
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
        self.latency, self.hop = model.latency, model.hop
        self.samples_in = self.samples_out = 0  # per channel, as the Denoiser's stream counts them
        self._engine = model.engine()
        self._was_1d = None

    def process(self, chunk):
        signal, was_1d = _as_float64_signal(chunk)
        if self._was_1d is None:
            self._was_1d = was_1d
        elif was_1d != self._was_1d:
            raise ValueError("every chunk of a stream must have the same rank as the first")
        self.samples_in += signal.shape[1]
        return self._shaped(self._engine.process(signal))

    def flush(self):
        return self._shaped(self._engine.flush())

    def _shaped(self, out: np.ndarray) -> np.ndarray:
        self.samples_out += out.shape[-1]
        return out[0] if self._was_1d and out.shape[0] else out


def _as_float64_signal(x) -> tuple[np.ndarray, bool]:
    """``x`` checked as :func:`~pydenoise.core.frames.as_signal` checks a Denoiser's input (float32/float64, 1-D
    or 2-D, finite, within the dtype's sample limit), as a 2-D float64 array, and whether it was 1-D. (Other
    dtypes were cast: ints came back truncated or wrapped, complex lost its imaginary part.)"""
    signal, was_1d = as_signal(x, allow_empty=True)
    return signal.cpu().double().numpy(), was_1d
