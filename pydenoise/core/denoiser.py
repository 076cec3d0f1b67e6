""":class:`Denoiser`: a trained DDAE with its framing configuration, and the model loading behind
:func:`pydenoise.load`.

A Denoiser runs a whole trace offline (pad, frame, fused op, overlap-add: :mod:`pydenoise.core.frames`) or
hands out a stream (:meth:`Denoiser.stream`, :mod:`pydenoise.core.streaming`) that gives the same samples.
The options of a model's config (noise floor, high-pass, post-filter, long-period path) are described in
``docs/architecture.md``; each ``with_*`` method returns a variant sharing the same module.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from pydenoise.core import ops
from pydenoise.core.frames import (
    LONG_PERIOD_LIMIT,
    SAMPLE_LIMITS,
    as_signal,
    channel_offset,
    check_hop,
    check_sample_limit,
    frame_count,
    frame_weights,
    normalisation_scale,
    normalise_frames,
    overlap_add,
    pad_edges,
)
from pydenoise.core.level import DEFAULT_LEVEL_BLOCKS, LocalLevel
from pydenoise.core.nn import DDAE, FUSED_WEIGHT_DTYPES, load_model
from pydenoise.core.noise_floor import NoiseFloor, floor_history
from pydenoise.core.postfilter import DEFAULT_SMOOTHING, CausalHighpass, SpectralPostfilter
from pydenoise.core.spectral import SPECTRAL_KIND, SpectralMaskDenoiser

__all__ = ["available_models", "load", "resolve_model", "Denoiser"]

WEIGHTS_DIR = Path(__file__).parents[1] / "weights"


def available_models() -> list[str]:
    """Names of the models shipped in ``pydenoise/weights``."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def load(name_or_path: str | os.PathLike) -> Denoiser | SpectralMaskDenoiser:
    """Load a shipped model by name (``"seismic"``, ``"speech"``, ``"image"``) or a ``.safetensors`` path.

    A spectral-mask model file (``"denoiser": "spectral_mask"`` in its metadata, such as ``"seismic_mask"``)
    gives a :class:`~pydenoise.core.spectral.SpectralMaskDenoiser`, with the same ``denoise`` and ``stream``.

    Examples
    --------
    >>> import pydenoise
    >>> m = pydenoise.load("seismic")                     # doctest: +SKIP
    >>> clean = m.denoise(noisy_trace)                    # doctest: +SKIP
    """
    if isinstance(name_or_path, (Denoiser, SpectralMaskDenoiser)):
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
    if config.get("denoiser") == SPECTRAL_KIND:
        return SpectralMaskDenoiser(module, config, name=text)
    return Denoiser(module, config=config, name=text)


def resolve_model(model) -> Denoiser:
    """A :class:`Denoiser` (or :class:`~pydenoise.core.spectral.SpectralMaskDenoiser`) from a shipped model
    name, a ``.safetensors`` path or a loaded model.

    Loaded files are cached (keyed by path and modification time), so ``st.filter("ddae")`` over many traces,
    or every variant of a model with a long-period path, loads a file once.
    """
    if isinstance(model, (Denoiser, SpectralMaskDenoiser)):
        return model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a model name, a .safetensors path or a Denoiser, got {type(model).__name__}")
    path = Path(model)
    stamp = path.stat().st_mtime_ns if path.is_file() else None
    return _load_cached(os.fspath(model), stamp)


@lru_cache(maxsize=8)
def _load_cached(name: str, stamp: int | None) -> Denoiser:
    return load(name)


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
    level_blocks : int
        Windows the channel's local level averages (config ``level_blocks``, default 128; see
        :mod:`pydenoise.core.level`).
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
        self.level_blocks = self.config.get("level_blocks", DEFAULT_LEVEL_BLOCKS)
        if isinstance(self.level_blocks, bool) or not isinstance(self.level_blocks, int) or self.level_blocks < 1:
            raise ValueError(f"level_blocks must be an integer >= 1, got {self.level_blocks!r}")
        floor_seconds = self.config.get("noise_floor_s")
        if floor_seconds is not None and (self.sample_rate is None or not float(floor_seconds) > 0):
            raise ValueError(f"noise_floor_s needs a sample_rate and must be > 0, got {floor_seconds!r}")
        self.noise_floor_s = None if floor_seconds is None else float(floor_seconds)
        self.postfilter = self._checked_postfilter(self.config.get("postfilter"))
        highpass = self.config.get("highpass_hz")
        if highpass is not None and (self.sample_rate is None or not 0 < float(highpass) < self.sample_rate / 2):
            raise ValueError(
                f"highpass_hz needs a sample_rate and must lie between 0 and its Nyquist frequency, "
                f"got {highpass!r} at {self.sample_rate} Hz"
            )
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
            raise ValueError(
                f"unknown postfilter options {sorted(unknown)}: use history_s, over_subtraction, smoothing, gain_floor"
            )
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
        drift (and everything else below ``cutoff_hz``) out first, in streams too. The output is high-passed: the
        channel's level is not added back (with a local level, level and drift are one thing; see
        :mod:`pydenoise.core.level`).

        Examples
        --------
        >>> import pydenoise
        >>> pydenoise.load("seismic").with_highpass(0.005).highpass_hz
        0.005
        """
        return self._with_config(highpass_hz=cutoff_hz)

    def level(self) -> LocalLevel:
        """A fresh :class:`~pydenoise.core.level.LocalLevel` for this model: blocks of one window."""
        return LocalLevel(self.window, self.level_blocks)

    def highpass(self) -> CausalHighpass | None:
        """A fresh :class:`CausalHighpass` at this model's ``highpass_hz`` (None without one)."""
        return None if self.highpass_hz is None else CausalHighpass(self.highpass_hz, self.sample_rate)

    def with_long_period(self, model: str | os.PathLike | None = "seismic_lp", crossover_hz: float = 0.5) -> Denoiser:
        """This model (the same module) with a long-period path (``model=None``: without one).

        A 256-sample window at 100 Hz spans 2.56 s: too short to tell a long-period wave train (teleseisms,
        large regional events) from the microseism, so the network removes both. The long-period path runs
        ``model``, trained at an integer fraction of this model's rate (``seismic_lp``: 12.5 Hz, 20.5 s windows),
        on the input resampled to its rate, and puts its output's band below ``crossover_hz`` in place of this
        model's (:mod:`pydenoise.core.longperiod`). Streams stay equal to offline denoising but wait for the long
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
            raise ValueError(
                f"the long-period model {options['model']!r} is for {path_model.config.get('domain')} "
                f"data, this one for {self.config.get('domain')}"
            )
        ratio = None if not (self.sample_rate and path_model.sample_rate) else self.sample_rate / path_model.sample_rate
        if ratio is None or ratio < 2 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"the long-period model {options['model']!r} must run at an integer fraction (1/2, 1/3, "
                f"...) of this model's {self.sample_rate} Hz, got {path_model.sample_rate} Hz"
            )
        crossover = options["crossover_hz"]
        if not 0 < crossover < 0.4 * path_model.sample_rate:
            raise ValueError(
                f"crossover_hz must lie between 0 and 40 % of the long-period model's "
                f"{path_model.sample_rate:g} Hz, got {crossover!r}"
            )
        return path_model

    def _with_config(self, **changes) -> Denoiser:
        denoiser = Denoiser(self.module, config={**self.config, **changes}, name=self.name)
        denoiser._modules = self._modules  # the same module: share its device copies
        return denoiser

    def __repr__(self) -> str:
        return (
            f"Denoiser(name={self.name!r}, window={self.window}, hop={self.hop}, "
            f"sample_rate={self.sample_rate}, residual={self.residual}, postfilter={self.postfilter}"
            + ("" if self.long_period is None else f", long_period={self.long_period}")
            + ")"
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
            A constant level removed from each channel before framing and added back after (see
            :func:`channel_offset`). Default: the channel's local level (:mod:`pydenoise.core.level`: a causal
            running mean over ``level_blocks`` windows), which a stream computes the same way.

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
        if self.long_period is not None:
            check_sample_limit(signal, SAMPLE_LIMITS[torch.float32], LONG_PERIOD_LIMIT)
        target = torch.device(device) if device is not None else signal.device
        signal_on_target = signal.to(target)
        level = self._channel_level(signal_on_target, offset)
        centred = signal_on_target - level
        highpass = self.highpass()
        if highpass is not None:
            centred = highpass(centred)
            level = torch.zeros_like(level[:, :1])  # a high-passed output does not get its level back
        result = self._denoise_signal(centred, hop) + level
        if self.long_period is not None:
            result = self._with_long_period_band(centred, result, level)
        result = result.to(signal.device)
        result = result[0] if was_1d else result
        return result.numpy() if isinstance(x, np.ndarray) else result

    def _channel_level(self, signal: torch.Tensor, offset) -> torch.Tensor:
        """``(channels, 1)`` for a given offset, else the local level ``(channels, samples)``."""
        if offset is not None:
            return channel_offset(signal, offset)
        local = self.level().process(signal.detach().cpu().numpy())
        return torch.from_numpy(local).to(dtype=signal.dtype, device=signal.device)

    def _denoise_signal(self, signal: torch.Tensor, hop: int) -> torch.Tensor:
        channels, samples = signal.shape
        window = self.window
        start = window - hop  # the left padding
        padded_length = (frame_count(samples, window, hop) - 1) * hop + window
        padded = pad_edges(signal, start, padded_length - start - samples)
        return self.denoise_overlap_add(padded, hop)[:, start : start + samples]

    def long_period_path(self):
        """A fresh :class:`~pydenoise.core.longperiod.LongPeriodPath` (None without a long-period path)."""
        from pydenoise.core.longperiod import LongPeriodPath

        if self.long_period is None:
            return None
        return LongPeriodPath(self._long_period_model, round(self.sample_rate / self._long_period_model.sample_rate))

    def crossover(self):
        """A fresh :class:`~pydenoise.core.longperiod.Crossover` at this model's ``crossover_hz``."""
        from pydenoise.core.longperiod import Crossover

        return Crossover(self.long_period["crossover_hz"], self.sample_rate)

    def _with_long_period_band(self, centred: torch.Tensor, denoised: torch.Tensor, level: torch.Tensor):
        """``denoised`` (level included) with its band below the crossover from the long-period path instead."""
        estimate = self.long_period_path().run(_float64(centred))
        crossover = self.crossover()
        merged = np.concatenate(
            [crossover.process(_float64(denoised), estimate + _float64(level)), crossover.flush()], axis=1
        )
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
                return ops.ddae_overlap_add(
                    padded, net_weights, biases, self.residual, hop, weights, carry, packed, frame_scales
                )

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
        """A :class:`~pydenoise.core.streaming.StreamingDenoiser` for chunk-by-chunk processing with this model (a
        :class:`~pydenoise.core.streaming.LongPeriodStream` for a model with a long-period path).

        ``offset``: a constant per-channel level (default: the local level, as offline).
        """
        from pydenoise.core.streaming import LongPeriodStream, StreamingDenoiser

        if self.long_period is not None:
            return LongPeriodStream(self, hop=hop, offset=offset)
        return StreamingDenoiser(self, hop=hop, offset=offset)


def _float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float64)


def _same_device(module: torch.nn.Module, device: torch.device) -> bool:
    current = next(module.parameters()).device
    return current.type == device.type and (device.index is None or current.index == device.index)


def _copy_to(module: DDAE, device: torch.device) -> DDAE:
    copy = DDAE(module.widths, residual=module.residual)
    copy.load_state_dict(module.state_dict())
    return copy.to(device).eval()
