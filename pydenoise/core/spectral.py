"""Spectral-mask denoising: a DDAE that reads a short-time spectrum and writes a gain per frequency bin.

In the spirit of DeepDenoiser (Zhu et al. 2019) and of the log-spectral speech DDAE (Lu et al. 2013): each
frame of ``frame`` samples (a sqrt-Hann or Hann window, ``hop`` apart) is Fourier-transformed; its
``frame // 2 + 1`` bins (the DDAE's window) become features ``log(power / noise floor)``, with the power
recursively smoothed over frames and the floor a low quantile of it over the last ``history`` frames; the fused
op maps the features to one logit correction per bin, added to the logit of a classical Wiener gain
(decision-directed; both in :mod:`pydenoise.core.spectral_features`), and the bin is scaled by the
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
from pydenoise.core.spectral_features import FeatureTracker

__all__ = [
    "SPECTRAL_KIND",
    "MaskSettings",
    "SpectralMaskDenoiser",
    "SpectralMaskStream",
    "SpectralMaskEngine",
    "frame_spectra",
]

#: ``config["denoiser"]`` of a spectral-mask model file.
SPECTRAL_KIND = "spectral_mask"
#: Analysis = synthesis windows, and how many frames per hop each needs to overlap-add to a constant.
WINDOWS = {"sqrt-hann": 2, "hann": 3}


@dataclass(frozen=True)
class MaskSettings:
    """Everything of a spectral-mask model but its network: the keys of its file's config. A key a file lacks
    takes the value the first shipped model was made with, so that file keeps its results.

    ``floor_quantile`` 0.25 with ``noise_scale`` 3.5, a Hann ``window`` and no ``restore_level`` gained 1.7 dB on
    the seismic validation split over those first values (median, 2.0, sqrt-Hann, restored): a median floor rises
    into long codas, a sqrt-Hann window leaks the microseism into the event's band, and the level added back
    carries the microseism of a trace's first minutes (``docs/seismic.md``). ``max_correction`` limits how far
    the network may overrule the classical gain: outside what it was trained on (a 50 Hz station's short clip in
    its own noise, nothing above 25 Hz) its correction of about -20 erased events the prior keeps.
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
    max_correction: float | None = None  # the network may move a bin's gain logit this far from the prior's

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
        if self.max_correction is not None and not self.max_correction >= 0:
            raise ValueError(f"max_correction must be >= 0 (or None: unlimited), got {self.max_correction}")


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
        limit = self.settings.max_correction
        correction = correction.double() if limit is None else correction.double().clamp_(-limit, limit)
        return self._emit(self._overlap_add(spectra * torch.sigmoid(prior + correction)))

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
