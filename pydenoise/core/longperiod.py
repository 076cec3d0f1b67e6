"""The long-period path: a second model, run at a fraction of the rate, for the band below a crossover.

A 256-sample window at 100 Hz spans 2.56 s, too short to tell a long-period wave train (a teleseism, a large
regional event) from the microseism, so the short-period network removes both. The long-period model
(shipped: ``seismic_lp``, 12.5 Hz, 20.5 s windows) sees enough of a wave to tell. The path:

* decimates the centred trace by ``factor`` with a linear-phase FIR low-pass (SciPy's ``resample_poly``
  design: Kaiser window, β = 5, ``20·factor + 1`` taps, so ``half = 10·factor`` samples either side), the
  trace padded at both ends with copies of its end samples;
* denoises that with the long-period model (a stream with offset 0: the trace is already centred);
* interpolates back by zero-stuffing and the same FIR (times ``factor``), the long-period output padded at
  both ends with copies of its end samples, so the estimate lines up sample for sample with the input;
* a :class:`Crossover` then puts the estimate's band below the crossover frequency in place of the
  short-period output's: it adds a linear-phase FIR low-pass of their difference (one period of the crossover
  frequency either side), so the bands add up without a seam whatever the two outputs hold.

Every stage consumes its input in order and keeps a small state, so :class:`LongPeriodPath` and
:class:`Crossover` take chunks of any size and give the same samples as the whole trace at once: offline
denoising runs them in one call, a stream (:class:`pydenoise.core.streaming.LongPeriodStream`) chunk by chunk.
Each FIR is centred on its output sample (no phase shift), which makes it wait for the input up to
half its length ahead; the long-period model's own window adds the rest of the ``latency``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["LongPeriodPath", "Crossover", "CentredFIR"]

#: Taps of the resampling FIR on either side of its centre, per unit of the rate factor (as ``resample_poly``).
HALF_TAPS_PER_FACTOR = 10


@lru_cache(maxsize=8)
def resampling_taps(factor: int) -> np.ndarray:
    """The symmetric low-pass FIR (unit DC gain) used to decimate by ``factor`` and, times ``factor``, to
    interpolate back."""
    from scipy.signal import firwin

    return firwin(2 * HALF_TAPS_PER_FACTOR * factor + 1, 1.0 / factor, window=("kaiser", 5.0))


def _filter_every(signal: np.ndarray, taps: np.ndarray, step: int, count: int) -> np.ndarray:
    """``(channels, count)``: ``taps`` (symmetric) applied to ``signal`` at columns ``0, step, 2·step, …``,
    each output centred ``len(taps) // 2`` columns after its window's start.

    Computed by torch's ``conv1d`` in float32 (a float64 product of every window with the taps costs ten times
    as much, and thousands of channels must keep up in real time); the path's inputs are centred, so float32
    keeps 7 digits of what matters.
    """
    if count == 0:
        return signal[:, :0]
    span = (count - 1) * step + taps.size
    windows = torch.from_numpy(np.ascontiguousarray(signal[:, :span], dtype=np.float32))[:, None, :]
    kernel = torch.from_numpy(taps.astype(np.float32))[None, None, :]
    return torch.nn.functional.conv1d(windows, kernel, stride=step)[:, 0].double().numpy()


class CentredFIR:
    """A symmetric FIR filter centred on its output samples, fed in chunks; optionally keeping every
    ``step``-th output (decimation).

    Output ``j`` is the filter centred on input ``j·step``, the input padded at both ends with copies of its end
    samples: it is final once input ``j·step + half`` has arrived, or at :meth:`flush`.
    """

    def __init__(self, taps: np.ndarray, step: int = 1):
        self.taps, self.step, self.half = taps, step, taps.size // 2
        self.reset()

    def reset(self) -> None:
        """Forget the signal."""
        self.samples_in = 0
        self._produced = 0
        self._input = None  # input from column produced·step - half on (edge-padded before 0)
        self._channels = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed the next ``(channels, samples)`` chunk; return the outputs that became final."""
        self._channels = chunk.shape[0]
        if chunk.shape[1] == 0:
            return chunk[:, :0]
        if self._input is None:
            self._input = np.repeat(chunk[:, :1], self.half, axis=1)
        self._input = np.concatenate([self._input, chunk], axis=1)
        self.samples_in += chunk.shape[1]
        return self._filter((self.samples_in - 1 - self.half) // self.step + 1)

    def flush(self) -> np.ndarray:
        """Pad the end; return the remaining outputs (``ceil(samples / step)`` in all), and reset."""
        if self._input is None:
            return np.empty((self._channels, 0))
        self._input = np.concatenate([self._input, np.repeat(self._input[:, -1:], self.half, axis=1)], axis=1)
        rest = self._filter(-(-self.samples_in // self.step))
        self.reset()
        return rest

    def _filter(self, ready: int) -> np.ndarray:
        count = max(0, ready - self._produced)
        out = _filter_every(self._input, self.taps, self.step, count)
        self._produced += count
        self._input = self._input[:, count * self.step :]
        return out


class LongPeriodPath:
    """The long-period model's estimate of a centred trace, at the trace's rate, fed chunk by chunk.

    Parameters
    ----------
    model : pydenoise.Denoiser
        The long-period model, trained at ``1/factor`` of the trace's rate.
    factor : int
        The rate ratio (8 for ``seismic_lp`` under the 100 Hz ``seismic`` model).

    Attributes
    ----------
    latency : int
        After ``n`` input samples, at least ``n - latency`` estimates have come out (full-rate samples).

    Examples
    --------
    >>> import numpy as np, pydenoise
    >>> path = LongPeriodPath(pydenoise.load("seismic_lp"), 8)
    >>> x = np.random.default_rng(0).standard_normal((1, 3000))
    >>> parts = [path.process(x[:, i : i + 700]) for i in range(0, 3000, 700)] + [path.flush()]
    >>> whole = LongPeriodPath(pydenoise.load("seismic_lp"), 8).run(x)
    >>> sum(p.shape[1] for p in parts), float(abs(np.concatenate(parts, axis=1) - whole).max()) < 1e-6
    (3000, True)
    """

    def __init__(self, model, factor: int):
        self.factor = int(factor)
        self.half = HALF_TAPS_PER_FACTOR * self.factor
        self._taps = resampling_taps(self.factor)
        self._model = model
        # the resampling FIRs' half-lengths, and the long model's worst-case delay (window - 1 of its samples)
        self.latency = 2 * self.half + self.factor * model.window - 1
        self.reset()

    def reset(self) -> None:
        """Forget the trace: the next chunk starts a new one."""
        self._decimator = CentredFIR(self._taps, step=self.factor)
        self._stream = self._model.stream(offset=0.0)
        self.samples_in = 0
        self._channels = 0
        self._low = None  # long-period output from low index _low_start on (edge-padded before 0)
        self._low_start = 0
        self._next_out = 0  # next full-rate estimate to return

    def run(self, signal: np.ndarray) -> np.ndarray:
        """The whole ``(channels, samples)`` trace at once: the estimate, same shape."""
        self.reset()
        return np.concatenate([self.process(signal), self.flush()], axis=1)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed the next ``(channels, samples)`` float64 chunk of the centred trace; return the estimates that
        became final (in order, continuing the previous ones)."""
        self._channels = chunk.shape[0]
        self.samples_in += chunk.shape[1]
        return self._advance(self._decimator.process(chunk), end=False)

    def flush(self) -> np.ndarray:
        """Finish the trace (its ends padded with copies of its end samples); return the remaining estimates."""
        if self.samples_in == 0:
            return np.empty((self._channels, 0))
        rest = self._advance(self._decimator.flush(), end=True)
        self.reset()
        return rest

    def _advance(self, low: np.ndarray, end: bool) -> np.ndarray:
        """Denoise the decimated samples; return the full-rate estimates that became final."""
        denoised = self._stream.process(low)
        if end:
            denoised = np.concatenate([denoised, self._stream.flush()], axis=1)
        if denoised.shape[1]:
            if self._low is None:  # edge padding on the left: enough for the first estimate's taps
                self._low_start = -(self.half // self.factor + 1)
                self._low = np.repeat(denoised[:, :1], -self._low_start, axis=1)
            self._low = np.concatenate([self._low, denoised], axis=1)
        return self._interpolate(end)

    def _interpolate(self, end: bool) -> np.ndarray:
        """The full-rate estimates whose taps all fall on known long-period samples (at the end: all of them,
        the long-period output padded on the right)."""
        if self._low is None:
            return np.empty((self._channels, 0))
        if end:
            self._low = np.concatenate(
                [self._low, np.repeat(self._low[:, -1:], self.half // self.factor + 1, axis=1)], axis=1
            )
            stop = self.samples_in
        else:
            stop = min(self.samples_in, (self._low_start + self._low.shape[1]) * self.factor - self.half)
        count = max(0, stop - self._next_out)
        stuffed = np.zeros((self._low.shape[0], self._low.shape[1] * self.factor))
        stuffed[:, :: self.factor] = self._low
        first = self._next_out - self.half - self._low_start * self.factor
        estimate = _filter_every(stuffed[:, first:], self._taps * self.factor, 1, count)
        self._next_out += count
        unused = (self._next_out - self.half) // self.factor - self._low_start  # samples no later tap reaches
        if unused > 0:
            self._low, self._low_start = self._low[:, unused:], self._low_start + unused
        return estimate


class Crossover:
    """``short + L(long - short)`` in aligned chunks: ``short`` with its band below ``cutoff_hz`` replaced by
    ``long``'s, ``L`` a linear-phase FIR low-pass (Hamming window) reaching one period of ``cutoff_hz`` either
    side. Where both agree it returns them unchanged. Output lags input by ``latency`` samples.
    """

    def __init__(self, cutoff_hz: float, sample_rate: float):
        from scipy.signal import firwin

        self.latency = math.ceil(sample_rate / cutoff_hz)
        self._low_pass = CentredFIR(firwin(2 * self.latency + 1, cutoff_hz, fs=sample_rate))
        self._short = None  # short-period samples waiting for the low-pass of their difference

    def process(self, short: np.ndarray, long: np.ndarray) -> np.ndarray:
        """Feed aligned ``(channels, samples)`` chunks of both outputs; return the merged samples now final."""
        self._short = short if self._short is None else np.concatenate([self._short, short], axis=1)
        low = self._low_pass.process(long - short)
        merged = self._short[:, : low.shape[1]] + low
        self._short = self._short[:, low.shape[1] :]
        return merged

    def flush(self) -> np.ndarray:
        """The remaining merged samples; then reset."""
        if self._short is None:
            return self._low_pass.flush()  # (channels, 0)
        merged = self._short + self._low_pass.flush()
        self._short = None
        return merged
