"""Offline denoising of whole traces: framing with a hop, per-window normalisation, the fused op, overlap-add.

The framing is defined once here and shared with :mod:`pydenoise.streaming`, so that streaming and offline
processing give the same samples:

* window ``N`` (the model's), hop ``h`` with ``N % h == 0``;
* where the config has ``highpass_hz`` (:meth:`Denoiser.with_highpass`), each channel, its level removed, first
  passes a causal Butterworth high-pass (:class:`CausalHighpass`) that takes out sensor drift;
* the signal is padded on the left with ``N - h`` copies of its first sample and on the right with copies of
  its last sample (not zeros: a trace with an offset would get a step at each end), and frame ``k`` starts
  at padded sample ``k * h``; every input sample is then covered by exactly ``N / h`` frames; a stream knows
  its first sample when it starts and its last at ``flush()``, so this padding is causal;
* each frame is divided by its RMS (:func:`normalise_frames`) before the network and scaled back after, so a
  model works on counts, m/s or [-1, 1] audio alike; an all-zero frame stays zero. A model whose config has
  ``noise_floor_s`` is instead divided by ``sqrt(rms · floor)``, where ``floor`` is the smallest frame RMS of
  the last ``noise_floor_s`` seconds (:class:`NoiseFloor`, causal): the input's size then tells the network
  the frame's level above the noise, which a frame alone cannot show (a fricative and white noise look alike);
* the denoised frames are weighted by a Hann window shifted by half a sample (never zero) and overlap-added;
  dividing by the sum of the weights covering each sample (a length-``h`` periodic vector) makes the
  reconstruction exact: an identity network returns its input, edges included. Because that sum depends only
  on the position within a hop, the division is folded into the frame weights (:func:`frame_weights`);
* where the config has ``postfilter`` (the shipped ``seismic`` model; :meth:`Denoiser.with_postfilter`,
  :meth:`Denoiser.without_postfilter`), the denoised frames pass a causal Wiener filter
  (:class:`SpectralPostfilter`) before the overlap-add: it removes the stationary noise the network leaves,
  within the same frames, so it adds no latency;
* where the config has ``long_period`` (the shipped ``seismic`` model; :meth:`Denoiser.with_long_period`), the
  output's band below ``crossover_hz`` is replaced by that of a second model run at an integer fraction of
  the rate (``seismic_lp``, 12.5 Hz: 20.5 s windows), which tells a long-period wave train from the
  microseism where a 2.56 s window cannot (:mod:`pydenoise.longperiod`); streams then wait about 24 s.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from pydenoise import ops
from pydenoise.nn import DDAE, FUSED_WEIGHT_DTYPES, load_model

__all__ = [
    "Denoiser",
    "load",
    "resolve_model",
    "available_models",
    "synthesis_window",
    "overlap_normaliser",
    "frame_count",
    "check_hop",
    "as_signal",
    "frame_weights",
    "overlap_add",
    "pad_edges",
    "normalise_frames",
    "normalisation_scale",
    "NoiseFloor",
    "CausalFilter",
    "CausalHighpass",
    "SpectralPostfilter",
    "window_floors",
    "floor_history",
    "channel_offset",
]

WEIGHTS_DIR = Path(__file__).with_name("weights")


def available_models() -> list[str]:
    """Names of the models shipped in ``pydenoise/weights``."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def load(name_or_path: str | os.PathLike) -> Denoiser:
    """Load a shipped model by name (``"seismic"``, ``"speech"``, ``"image"``) or a ``.safetensors`` path.

    Examples
    --------
    >>> import pydenoise
    >>> m = pydenoise.load("seismic")                     # doctest: +SKIP
    >>> clean = m.denoise(noisy_trace)                    # doctest: +SKIP
    """
    if isinstance(name_or_path, Denoiser):
        return name_or_path
    text = os.fspath(name_or_path)
    if text in available_models():
        path = WEIGHTS_DIR / f"{text}.safetensors"
    elif text.endswith(".safetensors") or os.sep in text:
        path = Path(text)
    else:
        shipped = ", ".join(available_models()) or "none yet"
        raise ValueError(f"unknown model name {text!r}: shipped models are {shipped}; or pass a .safetensors path")
    module, config = load_model(path)
    return Denoiser(module, config=config, name=text)


def resolve_model(model) -> Denoiser:
    """A :class:`Denoiser` from a shipped model name, a ``.safetensors`` path or a Denoiser.

    Loaded files are cached (keyed by path and modification time), so ``st.filter("ddae")`` over many traces,
    or every variant of a model with a long-period path, loads a file once.
    """
    if isinstance(model, Denoiser):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a model name, a .safetensors path or a Denoiser, got {type(model).__name__}")
    path = Path(model)
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return _load_cached(os.fspath(model), stamp)


@lru_cache(maxsize=8)
def _load_cached(name: str, stamp: int | None) -> Denoiser:
    return load(name)


@lru_cache(maxsize=32)
def synthesis_window(window: int) -> np.ndarray:
    """Overlap-add weights: a Hann window sampled half a sample off its zeros, so no weight is 0."""
    n = np.arange(window) + 0.5
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / window)


@lru_cache(maxsize=32)
def overlap_normaliser(window: int, hop: int) -> np.ndarray:
    """Sum of the synthesis weights covering padded sample ``p``; depends only on ``p % hop``."""
    return synthesis_window(window).reshape(window // hop, hop).sum(axis=0)


@lru_cache(maxsize=64)
def frame_weights(window: int, hop: int, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    """Synthesis weights divided by the overlap normaliser: overlap-adding weighted frames gives final samples.

    Frame sample ``j`` lands on padded index ``k·hop + j``, whose normaliser is ``overlap_normaliser[j % hop]``.
    """
    weights = synthesis_window(window) / np.tile(overlap_normaliser(window, hop), window // hop)
    return torch.as_tensor(weights, dtype=dtype, device=device)


def frame_count(samples: int, window: int, hop: int) -> int:
    """Frames needed so that each of ``samples`` input samples is covered by ``window // hop`` frames."""
    return (window - hop + samples - 1) // hop + 1


def check_hop(hop: int, window: int) -> int:
    """Validate a hop for a window: ``1 <= hop <= window`` and ``window % hop == 0``."""
    if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)):
        raise TypeError(f"hop must be an integer, got {type(hop).__name__}")
    hop = int(hop)
    if not 1 <= hop <= window or window % hop:
        raise ValueError(f"hop must divide the window ({window}) and lie in 1..{window}, got {hop}")
    return hop


def channel_offset(signal: torch.Tensor, offset=None) -> torch.Tensor:
    """The per-channel level removed before framing and added back after, as a ``(channels, 1)`` tensor.

    ``offset=None`` takes each channel's mean: a sensor offset must not swamp the network, and a short
    window's mean would be mostly low-frequency noise (microseism) that, added back, stays on the output.
    A number or one number per channel is used as given.
    """
    if offset is None:
        return signal.mean(dim=1, keepdim=True)
    values = torch.as_tensor(offset, dtype=signal.dtype, device=signal.device).reshape(-1, 1)
    if values.shape[0] not in (1, signal.shape[0]) or not bool(torch.isfinite(values).all()):
        raise ValueError(f"offset must be a finite number or one per channel ({signal.shape[0]}), got {offset!r}")
    return values.expand(signal.shape[0], 1)


def normalisation_scale(rms: torch.Tensor, floor: torch.Tensor | None = None) -> torch.Tensor:
    """What each window is divided by before the network: its ``rms``, or ``sqrt(rms · floor)`` given its noise
    ``floor`` (:class:`NoiseFloor`, same shape): a window at the noise floor then has RMS 1 and one 20 dB above
    it RMS √10, so the network sees the window's level above the noise."""
    return rms if floor is None else (rms * floor).sqrt()


def normalise_frames(frames: torch.Tensor, floor: torch.Tensor | None = None,
                     scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window normalisation shared by inference and training: ``frames / scale``.

    ``scale`` is the :func:`normalisation_scale` of each row of ``frames`` ``(B, window)``: its RMS (about zero,
    not about the window's mean), or, given each row's noise ``floor`` ``(B, 1)``, ``sqrt(rms · floor)``; a
    caller that has the scales already passes them as ``scale`` ``(B, 1)``. The network sees the normalised
    rows and its output is mapped back with ``out * scale``. An all-zero row gets scale 0 and comes back as
    zeros whatever the network outputs. Training must normalise the *noisy* window this way and scale its
    target by the same number, or the model would not match inference.

    Returns
    -------
    normalised, scale : torch.Tensor
        ``(B, window)`` and ``(B, 1)``.

    Examples
    --------
    >>> import torch
    >>> z, scale = normalise_frames(torch.tensor([[3.0, -3.0], [0.0, 0.0]]))
    >>> z.tolist(), scale.flatten().tolist()
    ([[1.0, -1.0], [0.0, 0.0]], [3.0, 0.0])
    >>> normalise_frames(torch.tensor([[4.0, -4.0]]), floor=torch.tensor([[1.0]]))[0].tolist()
    [[2.0, -2.0]]
    """
    if scale is None:
        scale = normalisation_scale(frames.square().mean(dim=1, keepdim=True).sqrt(), floor)
    return frames / torch.where(scale > 0, scale, torch.ones_like(scale)), scale


def floor_history(seconds: float, sample_rate: float, hop: int) -> int:
    """Frames at ``hop`` that span ``seconds`` of a :class:`NoiseFloor` history (at least one)."""
    return max(1, round(seconds * sample_rate / hop))


class NoiseFloor:
    """Causal noise-floor tracker: per channel, the smallest frame RMS over the last ``history`` frames.

    This is the minimum-statistics idea of classical speech enhancers (the quietest recent frame is noise), on
    whole frames. :meth:`update` takes the RMS of the next frames in order; feeding them in one call or in
    many gives the same floors, which is what lets a stream match offline processing. The first ``skip``
    frames (those holding the offline left padding, copies of one sample) are not counted, so they cannot
    pin the floor near zero; a frame with no counted history gets its own RMS as floor.

    Examples
    --------
    >>> import torch
    >>> tracker = NoiseFloor(history=3)
    >>> tracker.update(torch.tensor([[5.0, 2.0, 4.0]])).tolist(), tracker.update(torch.tensor([[6.0, 7.0]])).tolist()
    ([[5.0, 2.0, 2.0]], [[2.0, 4.0]])
    """

    def __init__(self, history: int, skip: int = 0):
        if history < 1 or skip < 0:
            raise ValueError(f"history must be >= 1 and skip >= 0, got history={history}, skip={skip}")
        self.history, self.skip = int(history), int(skip)
        # An exact sliding minimum at O(1) per frame (van Herk / Gil-Werman): frames fall in blocks of
        # ``history``, so a frame's window is the tail of the previous block plus the head of its own. Keeping a
        # whole window per frame instead costs ``history`` times the memory traffic, which dominated the
        # post-filter's per-bin floors over thousands of channels.
        self._filled = 0  # frames of the current block so far
        self._head = None  # (channels, 1, ...) their minimum
        # (channels, history + 1, ...): the current block's values in [:_filled] (the suffix minima they replace
        # are no longer needed), the suffix minima of the previous block in [_filled:history], then +inf
        self._blocks = None

    def update(self, rms: torch.Tensor) -> torch.Tensor:
        """Floors ``(channels, K, ...)`` of the next ``K`` frames, given their RMS ``(channels, K, ...)`` (the
        trailing dimensions, such as frequency bins, are tracked independently)."""
        if self._blocks is None:
            channels, rest = rms.shape[0], rms.shape[2:]
            self._head = rms.new_full((channels, 1, *rest), float("inf"))
            self._blocks = rms.new_full((channels, self.history + 1, *rest), float("inf"))
        counted = rms
        if self.skip and rms.shape[1]:
            skipped = min(self.skip, rms.shape[1])
            counted = torch.cat([torch.full_like(rms[:, :skipped], float("inf")), rms[:, skipped:]], dim=1)
            self.skip -= skipped
        floors, done = [], 0
        while done < counted.shape[1]:
            start = self._filled
            segment = counted[:, done : done + self.history - start]
            stop = start + segment.shape[1]
            heads = running_minimum(segment, self._head)
            floors.append(torch.minimum(heads, self._blocks[:, start + 1 : stop + 1]))
            self._blocks[:, start:stop] = segment
            self._head, self._filled, done = heads[:, -1:], stop, done + segment.shape[1]
            if stop == self.history:  # the block is complete: its suffix minima serve the next one
                self._blocks[:, :stop] = running_minimum(self._blocks[:, :stop], self._blocks[:, stop:], reverse=True)
                self._head, self._filled = torch.full_like(self._head, float("inf")), 0
        return torch.minimum(torch.cat(floors, dim=1), rms) if floors else rms


def running_minimum(values: torch.Tensor, start: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """Inclusive running minimum of ``values`` along dim 1 (from the end if ``reverse``), seeded with ``start``
    (``values[:, :1]``'s shape).

    ``cummin`` costs 10-25 ns per element and a step of a Python loop a few µs: a loop over dim 1 wins once a
    step holds a few hundred elements (many channels or frequency bins).
    """
    if values[:, :1].numel() < 512:
        ordered = values.flip(1) if reverse else values
        minima = torch.minimum(ordered.cummin(dim=1).values, start)
        return minima.flip(1) if reverse else minima
    minima, previous = torch.empty_like(values), start[:, 0]
    for k in reversed(range(values.shape[1])) if reverse else range(values.shape[1]):
        previous = torch.minimum(previous, values[:, k], out=minima[:, k])
    return minima


def window_floors(signal: np.ndarray, starts: np.ndarray, window: int, hop: int, history: int) -> np.ndarray:
    """Noise floors of windows cut at ``starts`` ``(rows, count)`` from ``signal`` ``(rows, samples)``, as a
    :class:`NoiseFloor` over a stream of each row tracks them (for training windows at any offset).

    A window's floor is the smallest RMS of itself and the ``history - 1`` windows before it, ``hop`` apart,
    that lie in the row; near the row's start the history is shorter, as at a stream's start.
    """
    energy = np.cumsum(np.pad(signal**2, ((0, 0), (1, 0))), axis=1)  # window energies in O(1) each
    positions = signal.shape[1] - window + 1
    rms = np.sqrt(np.maximum(energy[:, window:] - energy[:, :positions], 0.0) / window)
    earlier = starts[:, :, None] - hop * np.arange(history)  # (rows, count, history)
    candidates = rms[np.arange(signal.shape[0])[:, None, None], earlier.clip(0)]
    return np.where(earlier >= 0, candidates, np.inf).min(axis=2)


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

    def __init__(self, history: int, skip: int = 0, over_subtraction: float = 3.0,
                 smoothing: float = DEFAULT_SMOOTHING, gain_floor: float = 0.1):
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


def pad_edges(signal: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """``(channels, samples)`` padded with ``left`` copies of the first and ``right`` of the last sample."""
    return torch.cat([signal[:, :1].expand(-1, left), signal, signal[:, -1:].expand(-1, right)], dim=1)


def as_signal(x, allow_empty: bool = False) -> tuple[torch.Tensor, bool]:
    """``x`` as a 2-D (channels, samples) float tensor, and whether the caller gave a 1-D signal.

    Raises ``TypeError`` for anything but float32/float64 numpy arrays or tensors, ``ValueError`` for a wrong
    rank, NaN/Inf samples, or no samples (unless ``allow_empty``: a stream may receive an empty chunk).
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating) or x.dtype == np.float16:
            raise TypeError(f"x must be float32 or float64, got dtype {x.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x must be float32 or float64, got dtype {x.dtype}")
        tensor = x.detach()
    else:
        raise TypeError(f"x must be a numpy array or a torch tensor, got {type(x).__name__}")
    if tensor.dim() not in (1, 2):
        raise ValueError(f"x must be 1-D (samples) or 2-D (channels, samples), got shape {tuple(tensor.shape)}")
    if tensor.numel() == 0 and not allow_empty:
        raise ValueError(f"x is empty (shape {tuple(tensor.shape)})")
    # numpy's check costs ~2 µs on a small chunk, torch's ~20 µs: it matters per streaming chunk
    finite = np.isfinite(x).all() if isinstance(x, np.ndarray) else torch.isfinite(tensor).all()
    if not bool(finite):
        raise ValueError("x contains NaN or Inf samples")
    return (tensor.unsqueeze(0), True) if tensor.dim() == 1 else (tensor, False)


class Denoiser:
    """A trained DDAE with its framing configuration: what :func:`pydenoise.load` returns.

    Attributes
    ----------
    window : int
        Samples per network window.
    sample_rate : float or None
        Sampling rate the model was trained at (Hz), None if rate-agnostic.
    hop : int
        Default hop between windows.
    residual : bool
        Noise-learning model (clean = x - f(x)).
    noise_floor_s : float or None
        Seconds of history of the noise floor in the normalisation (see :func:`normalise_frames`); None: each
        frame is divided by its own RMS.
    highpass_hz : float or None
        Corner (Hz) of the :class:`CausalHighpass` each channel passes first (config ``highpass_hz``); None:
        none, only the channel's level is taken out.
    postfilter : dict or None
        Options of the :class:`SpectralPostfilter` the denoised frames pass (config ``postfilter``; its noise
        history ``history_s`` defaults to ``noise_floor_s``); None: no post-filter.
    long_period : dict or None
        ``{"model": name or path, "crossover_hz": Hz}`` of the long-period path (config ``long_period``, see
        :meth:`with_long_period`); None: none.
    module : pydenoise.nn.DDAE
        The torch module (trainable).
    config : dict
        Everything stored in the model file's metadata.
    """

    def __init__(self, module: DDAE, config: dict | None = None, name: str | None = None):
        self.module = module.eval()
        self.config = dict(config or {})
        self.name = name
        self.window = module.window
        self.residual = module.residual
        rate = self.config.get("sample_rate")
        self.sample_rate = None if rate is None else float(rate)
        self.hop = check_hop(self.config.get("hop", self.window // 4), self.window)
        floor_seconds = self.config.get("noise_floor_s")
        if floor_seconds is not None and (self.sample_rate is None or not float(floor_seconds) > 0):
            raise ValueError(f"noise_floor_s needs a sample_rate and must be > 0, got {floor_seconds!r}")
        self.noise_floor_s = None if floor_seconds is None else float(floor_seconds)
        self.postfilter = self._checked_postfilter(self.config.get("postfilter"))
        highpass = self.config.get("highpass_hz")
        if highpass is not None and (self.sample_rate is None or not 0 < float(highpass) < self.sample_rate / 2):
            raise ValueError(f"highpass_hz needs a sample_rate and must lie between 0 and its Nyquist frequency, "
                             f"got {highpass!r} at {self.sample_rate} Hz")
        self.highpass_hz = None if highpass is None else float(highpass)
        self.long_period = self.config.get("long_period")
        self._long_period_model = None if self.long_period is None else self._checked_long_period()
        self._modules: dict[torch.device, DDAE] = {}

    def _checked_postfilter(self, options) -> dict | None:
        """The config's post-filter options with ``history_s`` filled in, checked now rather than in a stream."""
        if options is None:
            return None
        options = dict(options)
        unknown = set(options) - {"history_s", "over_subtraction", "smoothing", "gain_floor"}
        if unknown:
            raise ValueError(f"unknown postfilter options {sorted(unknown)}: use history_s, over_subtraction, "
                             "smoothing, gain_floor")
        history = options.pop("history_s", self.noise_floor_s)
        if self.sample_rate is None or history is None or not float(history) > 0:
            raise ValueError(f"postfilter needs a sample_rate and history_s > 0 (or noise_floor_s), got {history!r}")
        SpectralPostfilter(1, **options)  # checks the ranges
        return {"history_s": float(history), **options}

    def with_postfilter(self, **options) -> Denoiser:
        """This model (the same module) with a :class:`SpectralPostfilter` on its denoised frames: ``options``
        on top of the model's own post-filter options, if it has any (so one setting can be tuned alone).

        ``options``: ``history_s`` (seconds of noise history; default the model's ``noise_floor_s``),
        ``over_subtraction``, ``smoothing`` (per frame at the model's hop; other hops keep its time constant),
        ``gain_floor``.

        Examples
        --------
        >>> import pydenoise
        >>> pydenoise.load("speech").with_postfilter().postfilter
        {'history_s': 1.0}
        >>> pydenoise.load("seismic").with_postfilter(gain_floor=0.2).postfilter
        {'history_s': 20.0, 'over_subtraction': 5.0, 'gain_floor': 0.2}
        """
        return self._with_config(postfilter={**(self.postfilter or {}), **options})

    def without_postfilter(self) -> Denoiser:
        """This model (the same module) without a post-filter: the network's frames as they are.

        Examples
        --------
        >>> import pydenoise
        >>> pydenoise.load("seismic").postfilter, pydenoise.load("seismic").without_postfilter().postfilter
        ({'history_s': 20.0, 'over_subtraction': 5.0}, None)
        """
        return self._with_config(postfilter=None)

    def with_highpass(self, cutoff_hz: float | None) -> Denoiser:
        """This model (the same module) with its input high-passed causally at ``cutoff_hz`` (None: not).

        The network never saw a window far off zero, so sensor drift across a trace defeats it; this takes the
        drift (and everything else below ``cutoff_hz``) out first, in streams too. The output keeps the channel's
        level but not its drift.

        Examples
        --------
        >>> import pydenoise
        >>> pydenoise.load("seismic").with_highpass(0.005).highpass_hz
        0.005
        """
        return self._with_config(highpass_hz=cutoff_hz)

    def highpass(self) -> CausalHighpass | None:
        """A fresh :class:`CausalHighpass` at this model's ``highpass_hz`` (None without one)."""
        return None if self.highpass_hz is None else CausalHighpass(self.highpass_hz, self.sample_rate)

    def with_long_period(self, model: str | os.PathLike | None = "seismic_lp", crossover_hz: float = 0.5) -> Denoiser:
        """This model (the same module) with a long-period path (``model=None``: without one).

        A 256-sample window at 100 Hz spans 2.56 s: too short to tell a long-period wave train (teleseisms,
        large regional events) from the microseism, so the network removes both. The long-period path runs
        ``model``, trained at an integer fraction of this model's rate (``seismic_lp``: 12.5 Hz, 20.5 s windows),
        on the input resampled to its rate, and puts its output's band below ``crossover_hz`` in place of this
        model's (:mod:`pydenoise.longperiod`). Streams stay equal to offline denoising but wait for the long
        windows: 24 s for the shipped ``seismic`` model, against 2.2 s without the path.

        Examples
        --------
        >>> import pydenoise
        >>> pydenoise.load("seismic").with_long_period().long_period
        {'model': 'seismic_lp', 'crossover_hz': 0.5}
        """
        if model is None:
            return self._with_config(long_period=None)
        return self._with_config(long_period={"model": os.fspath(model), "crossover_hz": float(crossover_hz)})

    def _checked_long_period(self) -> Denoiser:
        """The long-period path's model, its rate and crossover checked now rather than on the first trace."""
        options = dict(self.long_period)
        if set(options) != {"model", "crossover_hz"}:
            raise ValueError(f"long_period needs exactly 'model' and 'crossover_hz', got {sorted(options)}")
        path_model = resolve_model(options["model"])
        if path_model.config.get("domain") != self.config.get("domain"):
            raise ValueError(f"the long-period model {options['model']!r} is for {path_model.config.get('domain')} "
                             f"data, this one for {self.config.get('domain')}")
        ratio = None if not (self.sample_rate and path_model.sample_rate) else self.sample_rate / path_model.sample_rate
        if ratio is None or ratio < 2 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"the long-period model {options['model']!r} must run at an integer fraction (1/2, 1/3, "
                             f"...) of this model's {self.sample_rate} Hz, got {path_model.sample_rate} Hz")
        crossover = options["crossover_hz"]
        if not 0 < crossover < 0.4 * path_model.sample_rate:
            raise ValueError(f"crossover_hz must lie between 0 and 40 % of the long-period model's "
                             f"{path_model.sample_rate:g} Hz, got {crossover!r}")
        return path_model

    def _with_config(self, **changes) -> Denoiser:
        denoiser = Denoiser(self.module, config={**self.config, **changes}, name=self.name)
        denoiser._modules = self._modules  # the same module: share its device copies
        return denoiser

    def __repr__(self) -> str:
        return (
            f"Denoiser(name={self.name!r}, window={self.window}, hop={self.hop}, "
            f"sample_rate={self.sample_rate}, residual={self.residual}, postfilter={self.postfilter}"
            + ("" if self.long_period is None else f", long_period={self.long_period}") + ")"
        )

    def module_on(self, device: torch.device) -> DDAE:
        """The module on ``device`` (cached; the trainable ``module`` itself stays where it is)."""
        device = torch.device(device)
        if device not in self._modules:
            self._modules[device] = self.module if _same_device(self.module, device) else _copy_to(self.module, device)
        return self._modules[device]

    @torch.no_grad()
    def denoise_frames(self, frames: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise a batch of windows ``(B, window)``: normalise each, run the fused op, scale back.

        ``scale`` ``(B, 1)``: what to divide each window by (a noise-floor model's
        :func:`normalisation_scale`); default: its RMS. The scale is computed in the frames' dtype; the
        network runs in float32.
        """
        normalised, scale = normalise_frames(frames, scale=scale)
        return self.module_on(frames.device).clean(normalised.to(torch.float32)).to(frames.dtype) * scale

    def denoise(self, x, hop: int | None = None, device=None, offset=None):
        """Denoise a trace or a set of traces.

        Parameters
        ----------
        x : numpy.ndarray or torch.Tensor
            float32 or float64, shape ``(samples,)`` or ``(channels, samples)``; any length (the ends are
            padded internally by edge replication, nothing is trimmed).
        hop : int, optional
            Hop between windows; must divide the window. Default: the model's (``self.hop``).
        device : str or torch.device, optional
            Where to compute. Default: the tensor's device, or the CPU for numpy input.
        offset : float or array_like, optional
            Level removed from each channel before framing and added back after (see :func:`channel_offset`).
            Default: each channel's mean. A stream fixes its own from its first window (``stream().offset``);
            ``denoise(x, offset=s.offset)`` then gives the stream's samples exactly.

        Returns
        -------
        Same type, shape and dtype as ``x`` (a tensor comes back on its own device).

        Examples
        --------
        >>> import numpy as np, pydenoise
        >>> m = pydenoise.Denoiser(pydenoise.nn.DDAE())
        >>> m.denoise(np.zeros(1000)).shape
        (1000,)
        """
        hop = self.hop if hop is None else check_hop(hop, self.window)
        signal, was_1d = as_signal(x)
        target = torch.device(device) if device is not None else signal.device
        signal_on_target = signal.to(target)
        level = channel_offset(signal_on_target, offset)
        centred = signal_on_target - level
        highpass = self.highpass()
        if highpass is not None:
            centred = highpass(centred)
        result = self._denoise_signal(centred, hop) + level
        if self.long_period is not None:
            result = self._with_long_period_band(centred, result, level)
        result = result.to(signal.device)
        result = result[0] if was_1d else result
        return result.numpy() if isinstance(x, np.ndarray) else result

    def _denoise_signal(self, signal: torch.Tensor, hop: int) -> torch.Tensor:
        channels, samples = signal.shape
        window = self.window
        start = window - hop  # the left padding
        padded_length = (frame_count(samples, window, hop) - 1) * hop + window
        padded = pad_edges(signal, start, padded_length - start - samples)
        return self.denoise_overlap_add(padded, hop)[:, start : start + samples]

    def long_period_path(self):
        """A fresh :class:`~pydenoise.longperiod.LongPeriodPath` (None without a long-period path)."""
        from pydenoise.longperiod import LongPeriodPath

        if self.long_period is None:
            return None
        return LongPeriodPath(self._long_period_model, round(self.sample_rate / self._long_period_model.sample_rate))

    def crossover(self):
        """A fresh :class:`~pydenoise.longperiod.Crossover` at this model's ``crossover_hz``."""
        from pydenoise.longperiod import Crossover

        return Crossover(self.long_period["crossover_hz"], self.sample_rate)

    def _with_long_period_band(self, centred: torch.Tensor, denoised: torch.Tensor, level: torch.Tensor):
        """``denoised`` (level included) with its band below the crossover from the long-period path instead."""
        estimate = self.long_period_path().run(_float64(centred))
        crossover = self.crossover()
        merged = np.concatenate([crossover.process(_float64(denoised), estimate + _float64(level)), crossover.flush()],
                                axis=1)
        return torch.from_numpy(merged).to(dtype=denoised.dtype, device=denoised.device)

    def denoise_overlap_add(self, padded: torch.Tensor, hop: int, carry: torch.Tensor | None = None) -> torch.Tensor:
        """Denoise every full frame of ``padded`` and overlap-add them with the :func:`frame_weights`.

        Frames start at columns ``0, hop, 2·hop, …`` of the ``(channels, length)`` tensor; all channels' frames
        go to the network in one batch. Returns ``(channels, (K - 1)·hop + window)`` for ``K`` frames; a sample
        is final once every frame covering it has been added. ``carry`` (``(channels, window - hop)``): sums
        left by earlier frames, added to the first ``window - hop`` columns (used by the streaming layer).
        """
        return self.overlap_add_step(hop, padded.dtype, padded.device)(padded, carry)

    def overlap_add_step(self, hop: int, dtype: torch.dtype, device: torch.device):
        """:meth:`denoise_overlap_add` for one framing, with its lookups done once: ``step(padded, carry=None)``.

        A stream calls it per chunk, where the lookups would cost as much as the network at B = 1 (~13 µs for
        the parameter check alone). The module's tensors are bound now: a step does not see later changes.
        A noise-floor model's step keeps its floor tracker (and a post-filter its noise history), so successive
        calls continue one signal. The post-filter works on the frames, which the fused op never returns.
        """
        weights = frame_weights(self.window, hop, dtype, device)
        scales = self._floor_scales(hop)
        postfilter = self._postfilter(hop)
        module = self.module_on(device)
        fusable = postfilter is None and module.layers[0].weight.dtype in FUSED_WEIGHT_DTYPES
        if torch.device(device).type == "cpu" and fusable:
            net_weights, biases, packed = module.inference_tensors()  # detached: the op needs no autograd

            def fused_step(padded: torch.Tensor, carry: torch.Tensor | None = None) -> torch.Tensor:
                carry = padded.new_zeros(padded.shape[0], self.window - hop) if carry is None else carry
                frame_scales = None if scales is None else scales(padded)
                return ops.ddae_overlap_add(padded, net_weights, biases, self.residual, hop, weights, carry, packed,
                                            frame_scales)

            return fused_step

        def framed_step(padded: torch.Tensor, carry: torch.Tensor | None = None) -> torch.Tensor:
            frames = padded.unfold(1, self.window, hop)
            frame_scales = None if scales is None else scales(padded).reshape(-1, 1)
            denoised = self.denoise_frames(frames.reshape(-1, self.window), frame_scales).view(frames.shape)
            if postfilter is not None:
                denoised = postfilter(denoised)
            return overlap_add(denoised * weights, hop, carry)

        return framed_step

    def _postfilter(self, hop: int) -> SpectralPostfilter | None:
        """A fresh :class:`SpectralPostfilter` at ``hop`` (None without one), skipping the left-padding frames.

        Its time constants stay those of the model's own hop at any ``hop``: the history is in seconds, and the
        per-frame ``smoothing`` (given for the model's hop) becomes ``smoothing ** (hop / model hop)``.
        """
        if self.postfilter is None:
            return None
        options = dict(self.postfilter)
        history = floor_history(options.pop("history_s"), self.sample_rate, hop)
        options["smoothing"] = options.get("smoothing", DEFAULT_SMOOTHING) ** (hop / self.hop)
        return SpectralPostfilter(history, skip=(self.window - hop) // hop, **options)

    def noise_floor(self, hop: int) -> NoiseFloor:
        """A fresh :class:`NoiseFloor` for this model's history at ``hop``, skipping the left-padding frames."""
        return NoiseFloor(floor_history(self.noise_floor_s, self.sample_rate, hop), skip=(self.window - hop) // hop)

    def _floor_scales(self, hop: int):
        """None for a model normalised by RMS alone; for a noise-floor model, ``scales(padded)``: the
        :func:`normalisation_scale` ``(channels, K)`` of the next frames, from a floor tracker of its own."""
        if self.noise_floor_s is None:
            return None
        tracker = self.noise_floor(hop)

        def scales(padded: torch.Tensor) -> torch.Tensor:
            rms = padded.unfold(1, self.window, hop).square().mean(dim=2).sqrt()
            return normalisation_scale(rms, tracker.update(rms))

        return scales

    def stream(self, hop: int | None = None, offset=None):
        """A :class:`~pydenoise.streaming.StreamingDenoiser` for chunk-by-chunk processing with this model (a
        :class:`~pydenoise.streaming.LongPeriodStream` for a model with a long-period path).

        ``offset``: the per-channel level (default: the mean of the first window, known once it has arrived).
        """
        from pydenoise.streaming import LongPeriodStream, StreamingDenoiser

        if self.long_period is not None:
            return LongPeriodStream(self, hop=hop, offset=offset)
        return StreamingDenoiser(self, hop=hop, offset=offset)


def overlap_add(frames: torch.Tensor, hop: int, carry: torch.Tensor | None = None) -> torch.Tensor:
    """Sum ``(channels, K, window)`` frames placed ``hop`` apart: ``(channels, (K - 1) * hop + window)``.

    ``carry``, ``(channels, window - hop)``, seeds the first ``window - hop`` output samples.
    """
    channels, count, window = frames.shape
    overlaps = window // hop
    blocks = frames.reshape(channels, count, overlaps, hop)
    out = frames.new_zeros(channels, count + overlaps - 1, hop)
    if carry is not None:
        out[:, : overlaps - 1] = carry.reshape(channels, overlaps - 1, hop)
    for i in range(overlaps):  # window / hop vectorised adds, not a loop over samples
        out[:, i : i + count].add_(blocks[:, :, i])  # in place on the view: no write-back copy as with +=
    return out.reshape(channels, -1)


def _float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float64)


def _same_device(module: torch.nn.Module, device: torch.device) -> bool:
    current = next(module.parameters()).device
    return current.type == device.type and (device.index is None or current.index == device.index)


def _copy_to(module: DDAE, device: torch.device) -> DDAE:
    copy = DDAE(module.widths, residual=module.residual)
    copy.load_state_dict(module.state_dict())
    return copy.to(device).eval()
