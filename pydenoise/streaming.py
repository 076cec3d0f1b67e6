"""Chunk-by-chunk denoising with the offline framing of :mod:`pydenoise.denoiser`, sample for sample.

A :class:`StreamingDenoiser` keeps, per channel, the input not yet framed (fewer than ``window`` samples after
each call) and the partial overlap-add sums of the ``window - hop`` samples still waiting for frames: state of
O(window) size, whatever the chunk sizes. Every frame whose samples have all arrived is denoised at once (all
channels' frames in one call of the fused op); a sample is final, and comes out, once the last frame covering
it has been processed, so output comes in blocks of ``hop`` samples.

Latency
-------
The offline framing pads ``window - hop`` copies of the first sample on the left and starts a frame every ``hop`` padded samples.
Input sample ``i`` is final once the frame starting at padded index ``hop·⌊(i + window - hop) / hop⌋`` has
been denoised, which needs the input up to the end of that frame. Hence, after ``n`` input samples in total,
exactly ``max(0, hop·⌊n / hop⌋ - latency)`` samples have come out, with ``latency = window - hop``. Seen from
one sample, the delay between its arrival and its output is ``latency`` for the last sample of a hop block
and ``latency + hop - 1 = window - 1`` (the worst case) for the first. :meth:`StreamingDenoiser.flush` pads
the end with copies of the last sample exactly as :meth:`~pydenoise.denoiser.Denoiser.denoise` does and returns the rest.
"""

from __future__ import annotations

import numpy as np
import torch

from pydenoise.denoiser import Denoiser, as_signal, check_hop, frame_count, pad_edges

__all__ = ["StreamingDenoiser"]


class StreamingDenoiser:
    """Denoise a signal that arrives in chunks of any length; outputs concatenate to ``denoiser.denoise(x)``.

    Parameters
    ----------
    denoiser : pydenoise.Denoiser
        The model (see :func:`pydenoise.load`).
    hop : int, optional
        Hop between windows; must divide the window. Default: the model's.

    Attributes
    ----------
    window, hop : int
        The framing.
    latency : int
        ``window - hop``: after ``n`` input samples, ``max(0, hop·⌊n/hop⌋ - latency)`` have come out (see the
        module docstring; the worst-case delay of a single sample is ``window - 1``).
    samples_in, samples_out : int
        Samples per channel received and returned since the start (or the last :meth:`flush` / :meth:`reset`).

    Notes
    -----
    The first chunk fixes the stream's layout: 1-D ``(samples,)`` or 2-D ``(channels, samples)``, the number of
    channels, the dtype (float32 or float64), numpy or torch, and the torch device; later chunks must match.
    Chunks may be empty. Output has the same layout, with a sample count that is a multiple of ``hop`` (the
    last output of :meth:`flush` excepted).

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

    def __init__(self, denoiser: Denoiser, hop: int | None = None):
        if not isinstance(denoiser, Denoiser):
            raise TypeError(f"denoiser must be a pydenoise.Denoiser, got {type(denoiser).__name__}")
        self.denoiser = denoiser
        self.window = denoiser.window
        self.hop = denoiser.hop if hop is None else check_hop(hop, self.window)
        self.latency = self.window - self.hop
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
        self._layout = None  # (channels, was_1d, dtype, device, numpy?) fixed by the first chunk
        self._pending = None  # input from the next frame's start on, in padded coordinates
        self._overlap = None  # overlap-add sums of the `latency` samples after the last final one
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
        if self._pending is None:  # nothing but empty chunks so far
            return self._emit(signal, limit=None)
        self.samples_in += signal.shape[1]
        self._pending = torch.cat([self._pending, signal], dim=1)
        return self._emit(self._advance(), limit=None)

    def flush(self):
        """Finish the signal: pad its end as the offline path does, return every remaining sample, and reset.

        Returns an empty float64 array when nothing was fed.
        """
        if self._pending is None:  # no sample was fed
            channels, _, dtype, device, _ = self._layout or (1, True, torch.float64, "cpu", True)
            tail = np.empty(0) if self._layout is None else self._emit(torch.empty(channels, 0, dtype=dtype, device=device), 0)
            self.reset()
            return tail
        remaining_frames = frame_count(self.samples_in, self.window, self.hop) - self._frames
        needed = (remaining_frames - 1) * self.hop + self.window - self._pending.shape[1]
        if remaining_frames > 0 and needed > 0:
            self._pending = pad_edges(self._pending, 0, needed)
        tail = self._emit(self._advance(), limit=self.samples_in - self.samples_out)
        self.reset()
        return tail

    def _accept(self, chunk) -> torch.Tensor:
        signal, was_1d = as_signal(chunk, allow_empty=True)
        layout = (signal.shape[0], was_1d, signal.dtype, signal.device, isinstance(chunk, np.ndarray))
        if self._layout is None:
            self._layout = layout
        elif layout != self._layout:
            raise ValueError(
                f"chunk does not match the stream: got {_describe(layout)}, the stream carries "
                f"{_describe(self._layout)} (call reset() or flush() to start a different signal)"
            )
        if self._pending is None and signal.shape[1] > 0:  # the left padding needs the first sample
            self._pending = signal[:, :1].expand(-1, self.latency).clone()
            self._overlap = signal.new_zeros(signal.shape[0], self.latency)
        return signal

    def _advance(self) -> torch.Tensor:
        """Denoise every complete frame of the pending input; return the samples that became final."""
        pending = self._pending
        count = (pending.shape[1] - self.window) // self.hop + 1 if pending.shape[1] >= self.window else 0
        if count == 0:
            return pending[:, :0]
        summed = self.denoiser.denoise_overlap_add(pending, self.hop, carry=self._overlap)
        self._frames += count
        done = count * self.hop
        self._overlap = summed[:, done:]
        self._pending = pending[:, done:].clone()  # a copy, so the consumed input can be freed
        return summed[:, :done]

    def _emit(self, final: torch.Tensor, limit: int | None):
        """Drop the left padding (the first ``latency`` final samples of a stream), cap at ``limit``, convert."""
        skip = min(self._padding_left, final.shape[1])
        self._padding_left -= skip
        out = final[:, skip:] if limit is None else final[:, skip : skip + limit]
        self.samples_out += out.shape[1]
        channels, was_1d, _, _, numpy_out = self._layout
        out = out[0] if was_1d else out
        return out.numpy() if numpy_out else out


def _describe(layout) -> str:
    channels, was_1d, dtype, device, numpy_out = layout
    shape = "1-D" if was_1d else f"{channels} channels"
    kind = "numpy" if numpy_out else f"torch on {device}"
    return f"{shape}, {str(dtype).replace('torch.', '')}, {kind}"
