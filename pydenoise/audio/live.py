"""Live audio: a sounddevice duplex stream whose callback feeds a
:class:`~pydenoise.core.streaming.StreamingDenoiser`, with low-latency streaming resampling
(:class:`StreamResampler`) when the device runs at another rate than the model.

sounddevice (and so PortAudio, Debian package ``libportaudio2``) is imported only by :func:`live` and
:func:`list_devices`: the rest of pydenoise works without it.

Examples
--------
>>> from pydenoise import audio
>>> audio.live()                                               # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np

from pydenoise.audio.offline import rate_for_model, speech_model_for
from pydenoise.core.denoiser import Denoiser, load
from pydenoise.core.spectral import SpectralMaskDenoiser

__all__ = ["StreamResampler", "OutputBuffer", "LiveProcessor", "list_devices", "live"]


class StreamResampler:
    """Low-latency streaming resampler: a polyphase Kaiser-windowed sinc FIR, chunk by chunk.

    soxr's streaming mode releases output in large bursts; live audio needs every block to come out at once.
    This filter keeps ``zero_crossings`` sinc lobes on each side at the lower of the two rates, so its delay
    is ``zero_crossings / min(rate, target)`` seconds (1.5 ms by default), with 70 dB stop-band attenuation
    and the pass band up to about 0.85 of the lower Nyquist frequency.

    Parameters
    ----------
    rate, target : int
        Input and output rates in Hz (integers; their ratio is reduced to ``up / down``).
    channels : int
        Channels per chunk.
    zero_crossings : int
        Half-length of the filter in samples of the lower rate.

    Attributes
    ----------
    delay : float
        Group delay in seconds.

    Examples
    --------
    >>> import numpy as np
    >>> r = StreamResampler(48000, 16000, channels=1)
    >>> sum(r.process(np.zeros((1, 480), np.float32)).shape[1] for _ in range(10))
    1600
    """

    def __init__(self, rate: int, target: int, channels: int, zero_crossings: int = 24):
        from scipy.signal import firwin

        ratio = Fraction(int(target), int(rate))
        self.up, self.down = ratio.numerator, ratio.denominator
        self.channels = channels
        lower = min(rate, target)
        high_rate = rate * self.up
        half = zero_crossings * high_rate // lower
        taps = firwin(2 * half + 1, cutoff=0.46 * lower, window=("kaiser", 6.76), fs=high_rate) * self.up
        self.delay = half / high_rate
        per_phase = math.ceil(taps.size / self.up)
        padded = np.zeros(per_phase * self.up)
        padded[: taps.size] = taps
        # phase p holds taps p, p + up, …; reversed so that a row dots with ascending input samples
        self._phases = np.ascontiguousarray(padded.reshape(per_phase, self.up).T[:, ::-1], dtype=np.float32)
        self._offsets = np.arange(1 - per_phase, 1)
        self._history = np.zeros((channels, per_phase - 1), np.float32)
        self._received = 0  # input samples so far
        self._emitted = 0  # output samples so far

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed ``(channels, samples)`` at the input rate; return the ``(channels, n)`` output now available."""
        if chunk.ndim != 2 or chunk.shape[0] != self.channels:
            raise ValueError(f"chunk must be ({self.channels}, samples), got shape {chunk.shape}")
        buffer = np.concatenate([self._history, chunk.astype(np.float32, copy=False)], axis=1)
        first = self._received - self._history.shape[1]  # input index of buffer[:, 0]
        self._received += chunk.shape[1]
        # output m needs input up to index floor(m · down / up)
        last = (self._received * self.up - 1) // self.down
        outputs = np.arange(self._emitted, last + 1)
        self._emitted = last + 1
        self._history = buffer[:, buffer.shape[1] - self._history.shape[1] :]
        if outputs.size == 0:
            return np.zeros((self.channels, 0), np.float32)
        position = outputs * self.down
        newest = position // self.up - first
        rows = buffer[:, newest[:, None] + self._offsets]  # (channels, outputs, taps): ascending inputs
        return np.einsum("cot,ot->co", rows, self._phases[position % self.up])


class OutputBuffer:
    """FIFO of output samples between the denoiser and the device, with a fixed delay.

    It starts with ``delay`` zeros. When the device asks for more than is buffered, the missing samples are
    played as zeros, counted, and the same number of late samples are dropped when they arrive, so the delay
    stays what it was.
    """

    def __init__(self, channels: int, capacity: int, delay: int):
        if delay > capacity:
            raise ValueError(f"delay ({delay}) must not exceed capacity ({capacity})")
        self._data = np.zeros((channels, capacity), np.float32)
        self._start = 0
        self._size = delay
        self._debt = 0  # samples played as zeros, to drop from what arrives next
        self.missing = 0  # total samples played as zeros
        self.dropped = 0  # samples dropped because the buffer was full

    def __len__(self) -> int:
        return self._size

    def push(self, samples: np.ndarray) -> None:
        """Append ``(channels, n)`` samples (after paying off any debt; overflow is dropped and counted)."""
        skip = min(self._debt, samples.shape[1])
        self._debt -= skip
        samples = samples[:, skip:]
        capacity = self._data.shape[1]
        room = capacity - self._size
        if samples.shape[1] > room:
            self.dropped += samples.shape[1] - room
            samples = samples[:, :room]
        end = (self._start + self._size) % capacity
        first = min(samples.shape[1], capacity - end)
        self._data[:, end : end + first] = samples[:, :first]
        self._data[:, : samples.shape[1] - first] = samples[:, first:]
        self._size += samples.shape[1]

    def pop_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (``(frames, channels)``, as sounddevice hands it) and return how many were missing."""
        frames = out.shape[0]
        available = min(frames, self._size)
        capacity = self._data.shape[1]
        first = min(available, capacity - self._start)
        out[:first] = self._data[:, self._start : self._start + first].T
        out[first:available] = self._data[:, : available - first].T
        out[available:] = 0.0
        self._start = (self._start + available) % capacity
        self._size -= available
        missing = frames - available
        self._debt += missing
        self.missing += missing
        return missing


class LiveProcessor:
    """The work of the live duplex callback: device blocks in, denoised blocks out at a fixed delay.

    Input ``(frames, channels)`` at the device rate is resampled to the model rate (if they differ), fed to a
    :class:`~pydenoise.core.streaming.StreamingDenoiser` (offset 0: no DC level is removed, so it frames from the
    first sample on), resampled back and queued in an :class:`OutputBuffer` primed with just enough zeros that
    a block is always ready; all buffers are allocated and the network bound up front.

    Parameters
    ----------
    model : Denoiser
        The model.
    device_rate : int
        Rate of the audio device (Hz).
    channels : int
        Channels in and out.
    blocksize : int
        Frames per callback (0: variable, as the host delivers them; ``max_block`` bounds it).
    hop : int, optional
        Hop of the streaming denoiser (default: the model's).
    max_block : int
        Largest block the host may deliver when ``blocksize`` is 0.

    Attributes
    ----------
    latency : float
        Algorithmic latency in seconds: the output delay from the buffer's priming plus the resamplers'.
    callbacks, frames, input_overflows, output_underflows : int
        Counters (the last two from the host's status flags: xruns).
    late_frames : int
        Output frames the processing had not produced in time (played as silence).
    cpu_seconds, max_callback_cpu : float
        CPU time spent in the callback, in all and in the slowest call (its thread's time, which preemption by
        other processes does not inflate); ``summary()["cpu_load"]`` divides the first by the audio's duration.
    times, cpu_times : numpy.ndarray
        ``perf_counter`` time of each callback and the CPU time it took (the first ``record_times`` callbacks).
    """

    def __init__(
        self,
        model: Denoiser,
        device_rate: int,
        channels: int = 1,
        blocksize: int = 0,
        hop: int | None = None,
        max_block: int = 4096,
        record_times: int = 100_000,
    ):
        # Sound cards carry no DC level to remove, and a known offset lets the stream frame from the first sample
        # on: waiting for a first window to measure it released 16 frames of work into one 1.3 ms callback.
        # (A spectral-mask model measures its level from the first frame, which delays no output sample: its
        # latency is a whole number of hops.)
        self.stream = model.stream(hop) if isinstance(model, SpectralMaskDenoiser) else model.stream(hop, offset=0.0)
        self.stream.process(np.zeros((channels, 0), np.float32))  # binds the network now, not in a callback
        self.channels = channels
        model_rate = rate_for_model(model, device_rate)
        if model_rate != int(model_rate):
            raise ValueError(f"live resampling needs an integer model rate, got {model_rate}")
        self.model_rate = int(model_rate)
        self.device_rate = int(device_rate)
        resampling = self.model_rate != self.device_rate
        self.to_model = StreamResampler(self.device_rate, self.model_rate, channels) if resampling else None
        self.to_device = StreamResampler(self.model_rate, self.device_rate, channels) if resampling else None
        ratio = self.device_rate / self.model_rate
        hop = self.stream.hop
        block = blocksize if blocksize > 0 else max_block
        # The denoiser returns whole hops: after n model samples in, hop·⌊n/hop⌋ − latency are out. Priming
        # with latency + hop − gcd(block, hop) samples covers the worst phase for fixed blocks that are whole
        # model samples (hop − 1 otherwise); each resampler rounds its output count by up to one sample.
        model_block = blocksize / ratio
        fixed = blocksize > 0 and model_block == int(model_block)
        worst_phase = hop - math.gcd(int(model_block), hop) if fixed else hop - 1
        primed_model = self.stream.latency + worst_phase
        primed = math.ceil(primed_model * ratio) + (2 if resampling else 0)
        self.output = OutputBuffer(channels, primed + 4 * (block + math.ceil(hop * ratio)) + 64, primed)
        resampler_delay = self.to_model.delay + self.to_device.delay if resampling else 0.0
        self.latency = primed / self.device_rate + resampler_delay
        self._queue = np.zeros((channels, math.ceil(block / ratio) + 2 + hop), np.float32)
        self._queued = 0
        self.callbacks = self.frames = self.input_overflows = self.output_underflows = self.late_frames = 0
        self.cpu_seconds = self.max_callback_cpu = 0.0
        self.times = np.zeros(record_times)
        self.cpu_times = np.zeros(record_times)

    def __call__(self, indata: np.ndarray, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """The sounddevice callback (``indata``, ``outdata``: ``(frames, channels)`` float32)."""
        started = time.thread_time()
        index = self.callbacks
        if index < self.times.size:
            self.times[index] = time.perf_counter()
        self.callbacks += 1
        self.frames += frames
        if status:
            self.input_overflows += bool(status.input_overflow)
            self.output_underflows += bool(status.output_underflow)
        block = indata.T
        if self.to_model is not None:
            block = self.to_model.process(block)
        cleaned = self.stream.process(self._whole_hops(block))
        if self.to_device is not None:
            cleaned = self.to_device.process(cleaned)
        self.output.push(cleaned)
        self.late_frames += self.output.pop_into(outdata)
        spent = time.thread_time() - started
        if index < self.cpu_times.size:
            self.cpu_times[index] = spent
        self.cpu_seconds += spent
        self.max_callback_cpu = max(self.max_callback_cpu, spent)

    def _whole_hops(self, block: np.ndarray) -> np.ndarray:
        """Queue model-rate samples and release whole hops only: the denoiser outputs nothing for less, and
        fewer calls cost less (with a 64-frame host period at 48 kHz, one call in three carries a hop)."""
        queued = self._queued
        if queued + block.shape[1] > self._queue.shape[1]:  # a host block beyond max_block: grow (rare)
            self._queue = np.concatenate(
                [self._queue, np.zeros_like(self._queue, shape=(self.channels, block.shape[1]))], 1
            )
        self._queue[:, queued : queued + block.shape[1]] = block
        queued += block.shape[1]
        ready = queued - queued % self.stream.hop
        out = self._queue[:, :ready].copy()
        self._queue[:, : queued - ready] = self._queue[:, ready:queued]
        self._queued = queued - ready
        return out

    def intervals(self) -> np.ndarray:
        """Seconds between consecutive recorded callbacks."""
        return np.diff(self.times[: min(self.callbacks, self.times.size)])

    def summary(self) -> dict:
        """Counters and pacing: callbacks, frames, overflows, underflows, late frames, the callback's CPU load
        (share of real time), its CPU time per call (median, 99th percentile of the recorded calls, and the
        slowest of all), mean/max interval between callbacks, and the denoiser's sample counts."""
        gaps = self.intervals()
        cpu_ms = self.cpu_times[: min(self.callbacks, self.cpu_times.size)] * 1e3
        return {
            "callbacks": self.callbacks,
            "frames": self.frames,
            "input_overflows": self.input_overflows,
            "output_underflows": self.output_underflows,
            "late_frames": self.late_frames,
            "model_samples_in": self.stream.samples_in,
            "model_samples_out": self.stream.samples_out,
            "cpu_load": self.cpu_seconds * self.device_rate / self.frames if self.frames else None,
            "callback_cpu_ms_p50": float(np.percentile(cpu_ms, 50)) if cpu_ms.size else None,
            "callback_cpu_ms_p99": float(np.percentile(cpu_ms, 99)) if cpu_ms.size else None,
            "max_callback_cpu_ms": self.max_callback_cpu * 1e3,
            "mean_interval_ms": float(gaps.mean() * 1e3) if gaps.size else None,
            "max_interval_ms": float(gaps.max() * 1e3) if gaps.size else None,
        }


def _sounddevice():
    try:
        import sounddevice
    except OSError as error:  # the module imports, but PortAudio is missing
        raise RuntimeError(f"live audio needs PortAudio (Debian: apt-get install libportaudio2): {error}") from None
    return sounddevice


def list_devices() -> str:
    """The audio devices PortAudio sees (sounddevice's table: ``>`` default input, ``<`` default output)."""
    return str(_sounddevice().query_devices())


def live(
    input_device=None,
    output_device=None,
    model=None,
    blocksize: int = 0,
    hop: int | None = None,
    samplerate: float | None = None,
    channels: int = 1,
    duration: float | None = None,
    announce=print,
) -> dict:
    """Denoise the microphone live: a duplex stream from ``input_device`` to ``output_device``.

    Runs until Ctrl-C (or ``duration`` seconds), printing the algorithmic and device latency first and the
    counters (input overflows, output underflows, late frames) at the end.

    Parameters
    ----------
    input_device, output_device : int or str, optional
        sounddevice device ids or name substrings (default: the system's defaults).
    model : str, path or Denoiser, optional
        Model (default: the shipped speech model for the device rate, :func:`~pydenoise.audio.speech_model_for`).
    blocksize : int
        Frames per callback; 0 (default) lets the host choose, which gives the lowest latency.
    hop : int, optional
        Hop of the streaming denoiser (default: the model's).
    samplerate : float, optional
        Device rate (default: the input device's default rate); resampled to and from the model's rate.
    channels : int
        Channels (each denoised on its own).
    duration : float, optional
        Seconds to run; default: until Ctrl-C.
    announce : callable
        Receives the one-line messages.

    Returns
    -------
    dict
        :meth:`LiveProcessor.summary` plus ``latency_ms`` (algorithmic), ``device_latency_ms`` (input, output)
        and ``samplerate``.

    Examples
    --------
    >>> from pydenoise import audio
    >>> audio.live(duration=10)                                # doctest: +SKIP
    """
    import torch

    sd = _sounddevice()
    if samplerate is None:
        samplerate = sd.query_devices(input_device, "input")["default_samplerate"]
    model = load(model if model is not None else speech_model_for(samplerate))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small frame per callback: threads would only add wake-up latency
    _warm_up(model, int(samplerate), channels, blocksize, hop)
    processor = LiveProcessor(model, int(samplerate), channels, blocksize, hop)
    stream = sd.Stream(
        samplerate=samplerate,
        blocksize=blocksize,
        device=(input_device, output_device),
        channels=channels,
        dtype="float32",
        callback=processor,
    )
    try:
        with stream:
            device_in, device_out = stream.latency
            announce(
                f"denoising live at {samplerate:g} Hz (model {processor.model_rate} Hz, hop "
                f"{processor.stream.hop}): algorithmic latency {processor.latency * 1e3:.1f} ms, device "
                f"latency {device_in * 1e3:.1f} ms in + {device_out * 1e3:.1f} ms out; Ctrl-C stops"
            )
            _wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        torch.set_num_threads(threads)
    result = processor.summary()
    result.update(
        latency_ms=processor.latency * 1e3,
        device_latency_ms=[x * 1e3 for x in stream.latency],
        samplerate=float(samplerate),
    )
    announce(
        f"stopped after {result['frames'] / samplerate:.1f} s: {result['input_overflows']} input overflows, "
        f"{result['output_underflows']} output underflows, {result['late_frames']} late frames"
    )
    return result


def _warm_up(model: Denoiser, samplerate: int, channels: int, blocksize: int, hop: int | None) -> None:
    """Run 0.1 s of silence through a throw-away processor, so that the first real callbacks do not pay for
    torch's and numpy's first-call set-up (which made the first periods overrun)."""
    processor = LiveProcessor(model, samplerate, channels, blocksize, hop, record_times=1)
    block = blocksize or 256
    silence = np.zeros((block, channels), np.float32)
    for _ in range(max(1, samplerate // 10 // block)):
        processor(silence, np.empty_like(silence), block, None, None)


def _wait(duration: float | None) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    while deadline is None or time.monotonic() < deadline:
        time.sleep(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
