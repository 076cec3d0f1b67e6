"""Chunk-by-chunk denoising with the offline framing of :mod:`pydenoise.denoiser`, sample for sample.

A :class:`StreamingDenoiser` keeps, per channel, the input not yet framed (fewer than ``window`` samples after
each call) and the partial overlap-add sums of the ``window - hop`` samples still waiting for frames: state of
O(window) size, whatever the chunk sizes. Every frame whose samples have all arrived is denoised at once (all
channels' frames in one call of the fused op); a sample is final, and comes out, once the last frame covering
it has been processed, so output comes in blocks of ``hop`` samples.

Latency
-------
The offline framing pads ``window - hop`` copies of the first sample on the left and starts a frame every ``hop`` padded
samples. Input sample ``i`` is final once the frame starting at padded index ``hop·⌊(i + window - hop) / hop⌋`` has been
denoised, which needs the input up to the end of that frame. Hence, after ``n`` input samples in total, exactly ``max(0,
hop·⌊n / hop⌋ - latency)`` samples have come out, with ``latency = window - hop``. Seen from one sample, the delay
between its arrival and its output is ``latency`` for the last sample of a hop block and ``latency + hop - 1 = window -
1`` (the worst case) for the first. :meth:`StreamingDenoiser.flush` pads the end with copies of the last sample exactly
as :meth:`~pydenoise.core.denoiser.Denoiser.denoise` does and returns the rest.

A model with a long-period path (:meth:`~pydenoise.core.denoiser.Denoiser.with_long_period`) streams through a
:class:`LongPeriodStream`: the same short-period stream beside the long-period path, with its own latency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from pydenoise.core.frames import (
    LONG_PERIOD_LIMIT,
    SAMPLE_LIMITS,
    as_signal,
    channel_offset,
    check_hop,
    check_sample_limit,
    frame_count,
    pad_edges,
    within_sample_limit,
)

if TYPE_CHECKING:  # (the Denoiser makes its streams: this module is imported by it)
    from pydenoise.core.denoiser import Denoiser

__all__ = ["StreamingDenoiser", "LongPeriodStream"]


class StreamingDenoiser:
    """Denoise a signal that arrives in chunks of any length; outputs concatenate to offline ``denoise``.

    Parameters
    ----------
    denoiser : pydenoise.Denoiser
        The model (see :func:`pydenoise.load`).
    hop : int, optional
        Hop between windows; must divide the window. Default: the model's.
    offset : float or array_like, optional
        A constant level removed from each channel before framing and added back after. Default: the channel's
        local level (:mod:`pydenoise.core.level`), causal but for its first block, the first ``window`` samples
        (nothing is final before a full window has arrived anyway, so this adds no delay). The outputs
        concatenate to ``denoiser.denoise(x, offset=s.offset)``; give ``offset=0`` for zero-mean signals such as
        audio.

    Attributes
    ----------
    window, hop : int
        The framing.
    latency : int
        ``window - hop``: after ``n`` input samples, ``max(0, hop·⌊n/hop⌋ - latency)`` have come out (see the
        module docstring; the worst-case delay of a single sample is ``window - 1``).
    offset : torch.Tensor or None
        ``(channels, 1)``: the given offset, once the first chunk has arrived; None with the local level.
    samples_in, samples_out : int
        Samples per channel received and returned since the start (or the last :meth:`flush` / :meth:`reset`).

    Notes
    -----
    The first chunk fixes the stream's layout: 1-D ``(samples,)`` or 2-D ``(channels, samples)``, the number of
    channels, the dtype (float32 or float64), numpy or torch, and the torch device; later chunks must match.
    Chunks may be empty. Output has the same layout, with a sample count that is a multiple of ``hop`` (the
    last output of :meth:`flush` excepted).

    The model's tensors are bound when the first chunk arrives, an empty one too (so that a live audio stream
    can pay for that before its first callback): after changing the model (training it, ``load_state_dict``,
    ``.bfloat16()``), :meth:`reset` the stream or start a new one.

    On the CPU the per-chunk bookkeeping runs on numpy views of the state (a torch op costs several times a
    numpy one on a 64-sample chunk, and at 48 kHz such a chunk lasts 1.3 ms): only the network is a torch op.

    Examples
    --------
    >>> import numpy as np, pydenoise
    >>> m = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"hop": 64})
    >>> s = m.stream()
    >>> x = np.random.default_rng(0).standard_normal(1000)
    >>> parts = [s.process(x[i : i + 100]) for i in range(0, 1000, 100)] + [s.flush()]
    >>> [len(p) for p in parts[:4]], s.latency
    ([0, 0, 64, 128], 192)
    >>> bool(np.allclose(np.concatenate(parts), m.denoise(x)))
    True
    """

    def __init__(self, denoiser: Denoiser, hop: int | None = None, offset=None):
        if not callable(getattr(denoiser, "overlap_add_step", None)):
            raise TypeError(f"denoiser must be a pydenoise.Denoiser, got {type(denoiser).__name__}")
        self.denoiser = denoiser
        self.window = denoiser.window
        self.hop = denoiser.hop if hop is None else check_hop(hop, self.window)
        self.latency = self.window - self.hop
        self._offset_request = offset
        self.reset()

    def __repr__(self) -> str:
        return (
            f"StreamingDenoiser(window={self.window}, hop={self.hop}, latency={self.latency}, "
            f"samples_in={self.samples_in}, samples_out={self.samples_out})"
        )

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new signal (any layout)."""
        self.samples_in = 0
        self.samples_out = 0
        self.offset = None  # (channels, 1) tensor of a given offset
        self._level = None  # the given offset as a host array (below)
        self._local_level = None  # else the LocalLevel, once the first window (or the end) has arrived
        self._queued_levels = None  # levels of the input samples not yet out, in order (local level only)
        self._layout = None  # (channels, was_1d, dtype, device, numpy?) fixed by the first chunk
        self._on_cpu = True
        self._empty = None
        self._held = None  # input received before the level can start
        # Offset-free input from the next frame's start on, in padded coordinates: the first `_filled` columns of
        # `_buffers[0]`. Two buffers of 2·window columns, swapped when the unframed rest moves to the front (a
        # copy between distinct arrays, and no allocation on the hot path).
        self._buffers = None
        self._filled = 0
        self._overlap = None  # overlap-add sums of the `latency` samples after the last final one
        self._network = None  # Denoiser.overlap_add_step, bound by the first chunk
        self._highpass = self.denoiser.highpass()  # None, or the drift filter, carried from chunk to chunk
        self._frames = 0  # frames denoised so far
        self._padding_left = self.latency  # left-padding samples not yet dropped from the output

    def process(self, chunk):
        """Feed the next chunk; return the samples that became final (possibly none).

        Parameters
        ----------
        chunk : numpy.ndarray or torch.Tensor
            float32 or float64, ``(samples,)`` or ``(channels, samples)``, any number of samples (0 included).

        Returns
        -------
        Same type, dtype and rank as the chunk: ``(final,)`` or ``(channels, final)``.
        """
        signal = self._accept(chunk)
        self.samples_in += signal.shape[1]
        if self._waiting():
            signal = self._release_held(signal, end=False)
        return self._emit(self._feed(signal), limit=None)

    def flush(self):
        """Finish the signal: pad its end as the offline path does, return every remaining sample, and reset.

        Returns an empty float64 array when nothing was fed.
        """
        if self._layout is None:
            self.reset()
            return np.empty(0)
        final = self._feed(self._release_held(self._held, end=True)) if self._waiting() else self._empty
        if self._buffers is not None:
            remaining_frames = frame_count(self.samples_in, self.window, self.hop) - self._frames
            pending = self._buffers[0][:, : self._filled]
            needed = (remaining_frames - 1) * self.hop + self.window - self._filled
            if remaining_frames > 0 and needed > 0:
                pending = self._host(pad_edges(self._torch(pending), 0, needed))
            final = self._concat([final, self._advance(pending)])
        tail = self._emit(final, limit=self.samples_in - self.samples_out)
        self.reset()
        return tail

    # Host arrays: numpy on the CPU (views of the same memory as the tensors), torch tensors on other devices.

    def _host(self, tensor: torch.Tensor):
        return tensor.numpy() if self._on_cpu else tensor

    def _torch(self, array) -> torch.Tensor:
        return torch.from_numpy(array) if self._on_cpu else array

    def _concat(self, arrays):
        return np.concatenate(arrays, axis=1) if self._on_cpu else torch.cat(arrays, dim=1)

    def _accept(self, chunk):
        """The chunk as a 2-D host array, checked against the stream's layout (fixed by the first chunk)."""
        if self._layout is not None and self._on_cpu:
            array = self._like_before(chunk)
            if array is not None:
                return array
        signal, was_1d = as_signal(chunk, allow_empty=True)
        layout = (signal.shape[0], was_1d, signal.dtype, signal.device, isinstance(chunk, np.ndarray))
        if self._layout is None:
            self._layout = layout
            self._on_cpu = signal.device.type == "cpu"
            self._network = self.denoiser.overlap_add_step(self.hop, signal.dtype, signal.device)
            self._empty = self._host(signal[:, :0])  # (channels, 0): "no output", never written to
            self._held = self._empty
            if self._offset_request is not None:
                self._set_offset(channel_offset(signal, self._offset_request))
        elif layout != self._layout:
            raise ValueError(
                f"chunk does not match the stream: got {_describe(layout)}, the stream carries "
                f"{_describe(self._layout)} (call reset() or flush() to start a different signal)"
            )
        return self._host(signal)

    def _like_before(self, chunk) -> np.ndarray | None:
        """A CPU chunk of the stream's layout as a 2-D numpy view, with as_signal's checks at numpy's cost;
        None for anything else (the full checks then give the error)."""
        channels, was_1d, dtype, _, numpy_in = self._layout
        if numpy_in and type(chunk) is np.ndarray:
            array = chunk
        elif not numpy_in and type(chunk) is torch.Tensor and chunk.dtype == dtype and chunk.device.type == "cpu":
            array = chunk.detach().numpy()
        else:
            return None
        if array.dtype != self._empty.dtype or array.ndim != 2 - was_1d:
            return None
        if not within_sample_limit(array, SAMPLE_LIMITS[dtype]):
            return None
        if was_1d:
            return array[None]
        return array if array.shape[0] == channels else None

    def _set_offset(self, offset: torch.Tensor) -> None:
        self.offset = offset
        self._level = self._host(offset.contiguous())

    def _waiting(self) -> bool:
        """Whether input is still held back for the level (block 0 of the local level is the first window)."""
        return self._level is None and self._local_level is None

    def _release_held(self, signal, end: bool):
        """Hold input back until the level can start (a full first window, or the end); then return it all."""
        held = signal if signal is self._held else self._concat([self._held, signal])
        if held.shape[1] < self.window and not (end and held.shape[1] > 0):
            self._held = held
            return signal[:, :0]
        self._local_level = self.denoiser.level()
        self._queued_levels = self._empty
        self._held = None
        return held

    def _levels_in(self, signal):
        """The level of each of ``signal``'s samples (the given offset, or local levels, remembered for the
        output)."""
        if self._local_level is None:
            return self._level
        if signal.shape[1] == 0:
            return self._empty
        local = self._local_level.process(signal if self._on_cpu else signal.cpu().numpy())
        level = self._host(torch.from_numpy(local).to(dtype=self._layout[2], device=self._layout[3]))
        if self._highpass is None:  # a high-passed output does not get its level back
            self._queued_levels = self._concat([self._queued_levels, level])
        return level

    def _levels_out(self, count: int):
        """The levels of the next ``count`` output samples (0 for a high-passed output)."""
        if self._highpass is not None:
            return 0.0
        if self._local_level is None:
            return self._level
        level, self._queued_levels = self._queued_levels[:, :count], self._queued_levels[:, count:]
        return level

    def _feed(self, signal):
        """Append input (the level not yet removed); return the samples that became final (level-free)."""
        level = self._levels_in(signal)
        centred = None if self._highpass is None else self._highpass(signal - level)
        if self._buffers is None:
            if signal.shape[1] == 0:
                return self._empty
            self._start(signal[:, :1] - level[:, :1] if centred is None else centred[:, :1])
        end = self._filled + signal.shape[1]
        subtract = np.subtract if self._on_cpu else torch.sub
        if end <= self._buffers[0].shape[1]:
            if centred is None:
                subtract(signal, level, out=self._buffers[0][:, self._filled : end])
            else:
                self._buffers[0][:, self._filled : end] = centred
            self._filled = end
            if end < self.window:  # no frame complete yet
                return self._empty
            pending = self._buffers[0][:, :end]
        else:  # a long chunk: framed from a temporary, the buffers keep their O(window) size
            pending = self._concat(
                [self._buffers[0][:, : self._filled], signal - level if centred is None else centred]
            )
        return self._advance(pending)

    def _start(self, first) -> None:
        """Allocate the state; the offline left padding is ``latency`` copies of the first sample."""
        channels, _, dtype, device, _ = self._layout
        self._buffers = [self._host(torch.empty(channels, 2 * self.window, dtype=dtype, device=device)) for _ in "ab"]
        self._buffers[0][:, : self.latency] = first
        self._filled = self.latency
        self._overlap = self._host(torch.zeros(channels, self.latency, dtype=dtype, device=device))

    def _advance(self, pending):
        """Denoise every complete frame of ``pending``; keep the rest; return the samples that became final."""
        count = (pending.shape[1] - self.window) // self.hop + 1 if pending.shape[1] >= self.window else 0
        if count == 0:
            return pending[:, :0]
        summed = self._host(self._network(self._torch(pending), self._torch(self._overlap)))
        self._frames += count
        done = count * self.hop
        self._overlap[:] = summed[:, done:]  # a copy: a long chunk's output is not kept alive by the state
        self._filled = pending.shape[1] - done  # < window: fits either buffer
        self._buffers.reverse()
        self._buffers[0][:, : self._filled] = pending[:, done:]
        return summed[:, :done]

    def _emit(self, final, limit: int | None):
        """Drop the left padding (the first ``latency`` final samples of a stream), cap at ``limit``, convert."""
        if final.shape[1] == 0:
            return self._output(final)
        skip = min(self._padding_left, final.shape[1])
        self._padding_left -= skip
        out = final[:, skip:] if limit is None else final[:, skip : skip + limit]
        if out.shape[1]:
            out = out + self._levels_out(out.shape[1])  # a new array: the caller never holds the stream's state
        self.samples_out += out.shape[1]
        return self._output(out)

    def _output(self, out):
        """A 2-D host array in the chunks' type and rank."""
        _, was_1d, _, _, numpy_out = self._layout
        out = out[0] if was_1d else out
        return out if numpy_out or not self._on_cpu else torch.from_numpy(out)


def _describe(layout) -> str:
    channels, was_1d, dtype, device, numpy_out = layout
    shape = "1-D" if was_1d else f"{channels} channels"
    kind = "numpy" if numpy_out else f"torch on {device}"
    return f"{shape}, {str(dtype).replace('torch.', '')}, {kind}"


class LongPeriodStream:
    """A stream for a model with a long-period path (:meth:`pydenoise.Denoiser.with_long_period`): the
    short-period :class:`StreamingDenoiser` and the :class:`~pydenoise.core.longperiod.LongPeriodPath` side by side,
    merged as offline; outputs concatenate to ``denoiser.denoise(x, offset=s.offset)``.

    The long-period path sets the delay, which ``latency`` bounds (2,407 samples, 24 s, for the shipped
    ``seismic`` model): after ``n`` input samples at least ``n - latency`` have come out. Chunks, offset and
    layout work as for :class:`StreamingDenoiser`; the long-period path and the merge run on the CPU.

    Examples
    --------
    >>> import numpy as np, pydenoise
    >>> m = pydenoise.load("seismic").with_long_period()
    >>> s = m.stream()
    >>> x = np.random.default_rng(0).standard_normal(6000)
    >>> parts = [s.process(x[i : i + 1000]) for i in range(0, 6000, 1000)] + [s.flush()]
    >>> s.latency, sum(len(p) for p in parts[:-1]) >= 6000 - s.latency
    (2407, True)
    """

    def __init__(self, denoiser: Denoiser, hop: int | None = None, offset=None):
        self.denoiser = denoiser
        self._short = StreamingDenoiser(denoiser.with_long_period(None), hop=hop, offset=offset)
        self.window, self.hop = self._short.window, self._short.hop
        self.reset()
        self.latency = max(self._short.latency + self.hop - 1, self._path.latency) + self._crossover.latency

    def __repr__(self) -> str:
        return (
            f"LongPeriodStream(window={self.window}, hop={self.hop}, latency={self.latency}, "
            f"samples_in={self.samples_in}, samples_out={self.samples_out})"
        )

    @property
    def offset(self) -> torch.Tensor | None:
        """``(channels, 1)``: the level taken out of each channel, once known (see :class:`StreamingDenoiser`)."""
        return self._short.offset

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new signal (any layout)."""
        self._short.reset()
        self._path = self.denoiser.long_period_path()
        self._crossover = self.denoiser.crossover()
        self._highpass = self.denoiser.highpass()
        self._layout = None  # (was_1d, numpy?, dtype, device) of the first chunk
        self._level = None  # a given offset (channels, 1), or the LocalLevel once the first window is in
        self._queued_levels = None  # levels of the input samples not yet merged (local level only)
        self._held = None  # raw input kept until the level can start
        self._short_ready = self._long_ready = None  # final samples of each path not yet merged
        self.samples_in = self.samples_out = 0

    def process(self, chunk):
        """Feed the next chunk; return the samples that became final (possibly none)."""
        short = self._short.process(chunk)  # checks the chunk against the stream's layout
        raw = self._remember_layout(chunk)
        self.samples_in += raw.shape[1]
        return self._output(self._merge(short, self._feed_long(raw, end=False)))

    def flush(self):
        """Finish the signal as :meth:`StreamingDenoiser.flush` does; return the rest, and reset."""
        if self._layout is None:
            self.reset()
            return np.empty(0)
        if self.samples_in == 0:
            tail = self._output(self._held[:, :0])
        else:
            long = self._feed_long(self._held[:, :0], end=True)
            merged = self._merge(self._short.flush(), long)
            if self._short_ready.shape[1] or self._long_ready.shape[1]:
                raise RuntimeError("the two paths of a long-period stream ended at different samples")
            tail = self._output(np.concatenate([merged, self._crossover.flush()], axis=1))
        self.reset()
        return tail

    def _remember_layout(self, chunk) -> np.ndarray:
        signal, was_1d = as_signal(chunk, allow_empty=True)
        if self._layout is None:
            self._layout = (was_1d, isinstance(chunk, np.ndarray), signal.dtype, signal.device)
            self._held = np.empty((signal.shape[0], 0))
            self._short_ready = self._long_ready = self._queued_levels = self._held
        raw = signal.cpu().numpy().astype(np.float64)
        check_sample_limit(raw, SAMPLE_LIMITS[torch.float32], LONG_PERIOD_LIMIT)
        return raw

    def _feed_long(self, raw: np.ndarray, end: bool) -> np.ndarray:
        """Pass the input, its level removed (and high-passed where the model says), down the long-period path."""
        self._held = np.concatenate([self._held, raw], axis=1)
        if self._level is None:  # the short stream's offset, or the local level it starts at the same sample
            if self._short.offset is not None:
                self._level = self._short.offset.cpu().numpy().astype(np.float64)
            elif self._held.shape[1] >= self.window or (end and self._held.shape[1]):
                self._level = self.denoiser.level()
            else:
                return self._held[:, :0]
        centred = self._held - self._levels_in(self._held)
        self._held = self._held[:, :0]
        if self._highpass is not None:
            centred = self._highpass(centred)
        estimate = self._path.process(centred)
        return np.concatenate([estimate, self._path.flush()], axis=1) if end else estimate

    def _merge(self, short, long: np.ndarray) -> np.ndarray:
        """Pass the samples both paths have finished through the crossover; keep the rest for later."""
        short = np.atleast_2d(short.cpu().numpy() if isinstance(short, torch.Tensor) else short).astype(np.float64)
        self._short_ready = np.concatenate([self._short_ready, short], axis=1)
        self._long_ready = np.concatenate([self._long_ready, long], axis=1)
        count = min(self._short_ready.shape[1], self._long_ready.shape[1])
        merged = (
            self._crossover.process(self._short_ready[:, :count], self._long_ready[:, :count] + self._levels_out(count))
            if count
            else self._short_ready[:, :0]
        )
        self._short_ready, self._long_ready = self._short_ready[:, count:], self._long_ready[:, count:]
        return merged

    def _levels_in(self, raw: np.ndarray) -> np.ndarray:
        """Levels of ``raw``'s samples, rounded to the chunks' dtype as the short path's are."""
        if isinstance(self._level, np.ndarray):
            return self._level
        dtype = torch.empty(0, dtype=self._layout[2]).numpy().dtype
        level = self._level.process(raw).astype(dtype).astype(np.float64)
        if self._highpass is None:  # a high-passed output does not get its level back
            self._queued_levels = np.concatenate([self._queued_levels, level], axis=1)
        return level

    def _levels_out(self, count: int) -> np.ndarray:
        if self._highpass is not None:
            return 0.0
        if isinstance(self._level, np.ndarray):
            return self._level
        level, self._queued_levels = self._queued_levels[:, :count], self._queued_levels[:, count:]
        return level

    def _output(self, merged: np.ndarray):
        """The merged samples in the chunks' type, dtype, rank and device."""
        self.samples_out += merged.shape[1]
        was_1d, numpy_out, dtype, device = self._layout
        out = torch.from_numpy(merged).to(dtype=dtype, device=device)
        out = out[0] if was_1d else out
        return out.numpy() if numpy_out else out
