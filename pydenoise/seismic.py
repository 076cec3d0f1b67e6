"""Seismic workflows on ObsPy: Stream/Trace denoising, the ``ddae``/``nldae`` filter plugins, SeedLink real time.

* :func:`denoise` returns a denoised copy of a Stream or Trace; ids, start times, sampling rates and sample
  counts are kept, gaps (masked samples) stay gaps, and the call is added to ``stats.processing``.
* Once pydenoise is installed, ObsPy's own API works: ``tr.filter("ddae")``, ``st.filter("nldae", model=...)``
  (entry points in the ``obspy.plugin.filter`` group call :func:`ddae` / :func:`nldae`).
* :class:`SeedLinkDenoiser` denoises a SeedLink feed as it arrives, one
  :class:`~pydenoise.streaming.StreamingDenoiser` per trace id.

A trace sampled at another rate than the model's is resampled to the model's rate and back with
:func:`scipy.signal.resample_poly`, and that is recorded (``stats.processing``, or a warning for the filter
plugin); with ``resample=False`` it is rejected instead. Nothing is resampled silently.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from contextlib import suppress
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
from obspy.clients.seedlink.client.seedlinkconnection import SeedLinkConnection
from obspy.clients.seedlink.easyseedlink import EasySeedLinkClient, EasySeedLinkClientException
from obspy.clients.seedlink.seedlinkexception import SeedLinkException
from scipy.signal import resample_poly

from pydenoise.denoiser import Denoiser, resolve_model

__all__ = [
    "denoise",
    "denoise_array",
    "ddae",
    "nldae",
    "resolve_model",
    "read",
    "write",
    "plot_comparison",
    "SeedLinkDenoiser",
    "MiniSeedDayFiles",
    "ResamplingWarning",
]

logger = logging.getLogger(__name__)

#: Output formats by file name extension (lower case).
FORMATS_BY_EXTENSION = {
    ".mseed": "MSEED",
    ".miniseed": "MSEED",
    ".ms": "MSEED",
    ".sac": "SAC",
    ".gse2": "GSE2",
    ".gse": "GSE2",
    ".ah": "AH",
    ".q": "Q",
    ".slist": "SLIST",
    ".tspair": "TSPAIR",
    ".su": "SU",
    ".pickle": "PICKLE",
}
_ONE_TRACE_FORMATS = {"SAC", "SACXY", "SU"}


class ResamplingWarning(UserWarning):
    """A trace was resampled to the model's sampling rate and back (by the ``ddae``/``nldae`` filters)."""


# ------------------------------------------------------------------------------------------ samples


def _check_rate(sampling_rate) -> float:
    rate = float(sampling_rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"sampling rate must be a positive number of Hz, got {sampling_rate!r}")
    return rate


def _as_samples(data) -> np.ndarray:
    """Trace data as a float array (masked arrays stay masked): float32/float64 kept, integers -> float64."""
    if not isinstance(data, np.ndarray):
        raise TypeError(f"data must be a numpy array (trace.data), got {type(data).__name__}")
    if data.ndim != 1:
        raise ValueError(f"data must be 1-D (one trace), got shape {data.shape}")
    if data.size == 0:
        raise ValueError("data has no samples (empty trace)")
    if data.dtype in (np.float32, np.float64):
        values = data
    elif np.issubdtype(data.dtype, np.integer):
        values = data.astype(np.float64)
    else:
        raise TypeError(f"data must hold integers or float32/float64 samples, got dtype {data.dtype}")
    valid = np.ma.getdata(values)[~np.ma.getmaskarray(values)]
    if not np.isfinite(valid).all():
        index = int(np.flatnonzero(~np.isfinite(np.ma.filled(values, 0)))[0])
        raise ValueError(f"data contains NaN or Inf samples (first at index {index}); mask them to mark a gap")
    return values


def _resampling_ratio(rate: float, denoiser: Denoiser, resample: bool) -> Fraction | None:
    """``model_rate / rate`` as a small fraction, None when no resampling is needed; raises when not allowed."""
    target = denoiser.sample_rate
    if target is None or np.isclose(rate, target, rtol=1e-9, atol=0):
        return None
    if not resample:
        raise ValueError(
            f"the trace is sampled at {rate:g} Hz but the model expects {target:g} Hz; pass resample=True to "
            "resample it to the model's rate and back (recorded in the processing history), or resample it yourself"
        )
    ratio = Fraction(target / rate).limit_denominator(1000)
    if abs(float(ratio) * rate - target) > 1e-9 * target:
        raise ValueError(
            f"cannot resample exactly between {rate!r} Hz and the model's {target:g} Hz (no small integer ratio); "
            "resample the trace yourself"
        )
    return ratio


def _denoise_segment(samples: np.ndarray, denoiser: Denoiser, hop: int | None, ratio: Fraction | None):
    if ratio is None:
        return denoiser.denoise(np.ascontiguousarray(samples), hop=hop)
    up, down = ratio.numerator, ratio.denominator
    at_model_rate = resample_poly(samples, up, down).astype(samples.dtype)
    back = resample_poly(denoiser.denoise(at_model_rate, hop=hop), down, up)
    return back[: samples.size].astype(samples.dtype)  # resample_poly rounds the length up; never short


def denoise_array(data, sampling_rate, model="seismic", hop: int | None = None, resample: bool = True):
    """Denoise one trace's samples; the common core of :func:`denoise` and the ObsPy filter plugins.

    Parameters
    ----------
    data : numpy.ndarray
        1-D samples: integers (counts), float32 or float64; a masked array marks gaps.
    sampling_rate : float
        Hz, positive.
    model : str, path or Denoiser
        Shipped model name, ``.safetensors`` file, or a loaded model.
    hop : int, optional
        Hop between windows (divides the window); default: the model's.
    resample : bool
        Resample to the model's rate and back when the rates differ (else raise ``ValueError``).

    Returns
    -------
    denoised : numpy.ndarray
        Same length; float32 for float32 data, float64 otherwise; masked where ``data`` is masked (each
        contiguous unmasked segment is denoised on its own, so gaps stay gaps).
    note : str or None
        What was resampled, when it was.

    Examples
    --------
    >>> import numpy as np, pydenoise
    >>> from pydenoise.seismic import denoise_array
    >>> m = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0})
    >>> y, note = denoise_array(np.arange(1000, dtype=np.int32), 200.0, model=m)
    >>> y.shape, y.dtype, note
    ((1000,), dtype('float64'), 'resampled 200 Hz -> 100 Hz -> 200 Hz (scipy.signal.resample_poly 1/2)')
    """
    denoiser = resolve_model(model)
    rate = _check_rate(sampling_rate)
    values = _as_samples(data)
    ratio = _resampling_ratio(rate, denoiser, resample)
    out = values.copy()
    plain = np.ma.getdata(out)
    for segment in np.ma.clump_unmasked(np.ma.asarray(values)):
        plain[segment] = _denoise_segment(np.ma.getdata(values)[segment], denoiser, hop, ratio)
    note = None
    if ratio is not None:
        note = (
            f"resampled {rate:g} Hz -> {denoiser.sample_rate:g} Hz -> {rate:g} Hz "
            f"(scipy.signal.resample_poly {ratio.numerator}/{ratio.denominator})"
        )
    return out, note


# --------------------------------------------------------------------------------- Stream and Trace


def denoise(stream_or_trace, model="seismic", hop: int | None = None, resample: bool = True):
    """Denoise an ObsPy Stream or Trace; returns a new one (the input is not modified).

    Parameters
    ----------
    stream_or_trace : obspy.Stream or obspy.Trace
    model : str, path or Denoiser
        Shipped model name (default ``"seismic"``), ``.safetensors`` file, or a loaded model.
    hop : int, optional
        Hop between windows; default: the model's.
    resample : bool
        When a trace's sampling rate differs from the model's: resample it to the model's rate and back
        (recorded in ``stats.processing``) if True, raise ``ValueError`` if False.

    Returns
    -------
    obspy.Stream or obspy.Trace
        Same ids, start times, sampling rates and sample counts; float data; gaps stay gaps.

    Examples
    --------
    >>> import obspy, pydenoise
    >>> m = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0})
    >>> st = pydenoise.seismic.denoise(obspy.read(), model=m)
    >>> [tr.stats.npts for tr in st], st[0].stats.processing[-1].startswith("pydenoise")
    ([3000, 3000, 3000], True)
    """
    if isinstance(stream_or_trace, obspy.Trace):
        return _denoise_trace(stream_or_trace, model, hop, resample)
    if not isinstance(stream_or_trace, obspy.Stream):
        raise TypeError(f"stream_or_trace must be an obspy Stream or Trace, got {type(stream_or_trace).__name__}")
    if len(stream_or_trace) == 0:
        raise ValueError("the stream has no traces")
    return obspy.Stream([_denoise_trace(trace, model, hop, resample) for trace in stream_or_trace])


def _denoise_trace(trace, model, hop, resample):
    from pydenoise import __version__

    denoiser = resolve_model(model)
    try:
        data, note = denoise_array(trace.data, trace.stats.sampling_rate, denoiser, hop, resample)
    except (ValueError, TypeError) as error:
        raise type(error)(f"trace {trace.id}: {error}") from None
    out = obspy.Trace(data=data, header=trace.stats.copy())
    label = denoiser.name or (os.fspath(model) if not isinstance(model, Denoiser) else "a Denoiser")
    steps = [f"pydenoise {__version__}: denoise(model='{label}', window={denoiser.window}, "
             f"hop={hop or denoiser.hop})"]
    if note:
        steps.insert(0, f"pydenoise {__version__}: {note}")
    out.stats.processing = list(trace.stats.get("processing", [])) + steps
    return out


def ddae(data, df, model="seismic", hop: int | None = None, resample: bool = True):
    """ObsPy filter plugin: ``tr.filter("ddae", model=..., hop=..., resample=...)``.

    ObsPy calls ``ddae(tr.data, df=tr.stats.sampling_rate, **options)`` and records the call in the trace's
    processing history. Returns the denoised samples, same length (float64 for integer data). Resampling to
    the model's rate and back (when the rates differ) issues a :class:`ResamplingWarning`.

    Examples
    --------
    >>> import obspy
    >>> tr = obspy.read()[0]
    >>> tr.filter("ddae", model="path/to/model.safetensors")  # doctest: +SKIP
    """
    denoised, note = denoise_array(data, df, model, hop, resample)
    if note:
        warnings.warn(f"pydenoise ddae filter: {note}", ResamplingWarning, stacklevel=2)
    return denoised


def nldae(data, df, model="seismic-nldae", hop: int | None = None, resample: bool = True):
    """ObsPy filter plugin for noise-learning models: ``tr.filter("nldae", model=...)``.

    As :func:`ddae`, but the model must be a noise-learning DAE (``residual=True``: clean = x − f(x)).
    """
    denoiser = resolve_model(model)
    if not denoiser.residual:
        raise ValueError(
            f"the nldae filter needs a noise-learning model (residual=True); {denoiser!r} is a plain DDAE: "
            "use tr.filter('ddae', model=...)"
        )
    return ddae(data, df, denoiser, hop, resample)


# -------------------------------------------------------------------------------------------- files


def read(path) -> obspy.Stream:
    """Read a waveform file in any format ObsPy knows; a clear ``ValueError`` otherwise (missing, unknown format,
    unreadable, no traces)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError("no such file")
    try:
        stream = obspy.read(os.fspath(path))
    except TypeError:  # ObsPy's "Unknown format for file ..."
        raise ValueError("not a waveform format ObsPy can read") from None
    except Exception as error:  # ObsPy's readers raise many types (InternalMSEEDError, struct.error, ...)
        reason = " ".join(str(error).split())
        raise ValueError(f"unreadable ({type(error).__name__}: {reason})") from None
    if len(stream) == 0:
        raise ValueError("the file holds no traces")
    return stream


def output_format(path, fallback: str | None = None) -> str:
    """ObsPy format name for an output file, from its extension; ``fallback`` (the input's) otherwise."""
    extension = Path(path).suffix.lower()
    if extension in FORMATS_BY_EXTENSION:
        return FORMATS_BY_EXTENSION[extension]
    if fallback:
        return fallback
    known = ", ".join(sorted(FORMATS_BY_EXTENSION))
    raise ValueError(f"cannot tell the output format from the name {Path(path).name!r}; use one of {known}")


def write(stream: obspy.Stream, path, format: str) -> None:
    """Write ``stream`` to ``path`` in ObsPy ``format`` (float data as FLOAT64 in miniSEED).

    One-trace formats (SAC, SU) get a clear error for a stream of several traces instead of ObsPy's numbered
    extra files.
    """
    if format in _ONE_TRACE_FORMATS and len(stream) > 1:
        raise ValueError(
            f"{format} holds one trace per file but there are {len(stream)} traces "
            "(write miniSEED instead, or split the stream)"
        )
    options = {"encoding": "FLOAT64"} if format == "MSEED" else {}
    if format == "MSEED":
        stream = stream.copy()
        for trace in stream:
            trace.data = trace.data.astype(np.float64)
    stream.write(os.fspath(path), format=format, **options)


def plot_comparison(before: obspy.Stream, after: obspy.Stream, path, max_traces: int = 8) -> None:
    """A PNG with each trace before (grey) and after denoising (blue), one panel per trace."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pairs = list(zip(before, after))[:max_traces]
    figure, axes = plt.subplots(len(pairs), 1, figsize=(10, 1.8 * len(pairs) + 0.6), squeeze=False, sharex=False)
    for axis, (raw, clean) in zip(axes[:, 0], pairs):
        seconds = raw.times()
        axis.plot(seconds, raw.data, color="0.6", linewidth=0.6, label="input")
        axis.plot(seconds, clean.data, color="tab:blue", linewidth=0.7, label="denoised")
        axis.set_title(f"{raw.id}  {raw.stats.starttime}", fontsize=8, loc="left")
        axis.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since start", fontsize=8)
    figure.tight_layout()
    figure.savefig(os.fspath(path), dpi=100, format="png")
    plt.close(figure)


# ------------------------------------------------------------------------------------------ SeedLink


class _TraceStream:
    """One trace id's live state: its streaming denoiser and where its contiguous segment started."""

    def __init__(self, denoiser: Denoiser, hop: int | None, packet: obspy.Trace):
        self.stream = denoiser.stream(hop=hop)
        self.header = packet.stats.copy()
        self.start = packet.stats.starttime
        self.rate = packet.stats.sampling_rate
        self.expected = packet.stats.starttime

    def continues(self, packet: obspy.Trace) -> bool:
        """Whether ``packet`` starts where the last one ended (within half a sample) at the same rate."""
        rate = packet.stats.sampling_rate
        return rate == self.rate and abs(packet.stats.starttime - self.expected) <= 0.5 / rate

    def trace(self, samples: np.ndarray, first: int) -> obspy.Trace:
        """An output Trace for ``samples``, the segment's samples ``first, first + 1, …``: their true times."""
        header = self.header.copy()
        header.npts = samples.size
        header.starttime = self.start + first / self.rate
        return obspy.Trace(data=samples, header=header)


class _Stopped(Exception):
    """Raised inside ``run()`` to leave ObsPy's collect loop when :meth:`SeedLinkDenoiser.stop` was called."""


class _EofAwareConnection(SeedLinkConnection):
    """ObsPy's SeedLink connection, but an orderly close by the server counts as a dropped connection.

    ObsPy reads a blocking socket and treats an empty read as "no data yet", so a server that closes the
    connection is only noticed after the network timeout; raising on EOF lets ``collect`` reconnect at once.
    Once ``stopping`` is set, no new connection is opened and no more data is read.
    """

    def __init__(self, timeout: float, stopping: threading.Event):
        super().__init__(timeout=timeout)
        self.stopping = stopping

    def connect(self):
        if self.stopping.is_set():
            raise _Stopped
        super().connect()

    def receive_data(self, maxbytes, code):
        if self.stopping.is_set():
            raise _Stopped  # not an IOError: leaves ObsPy's collect loop instead of reconnecting
        received = super().receive_data(maxbytes, code)
        if received == b"" and maxbytes > 0:
            raise ConnectionResetError(f"SeedLink server {self.sladdr} closed the connection")
        return received


class SeedLinkDenoiser(EasySeedLinkClient):
    """Denoise a SeedLink feed as it arrives: an adapter on ObsPy's :class:`EasySeedLinkClient`.

    Each trace id gets its own stream (:meth:`pydenoise.Denoiser.stream`: 2.2 s behind the feed for the
    shipped ``seismic`` model without its long-period path, 24 s with it). Packets may hold any number
    of samples. A gap, an overlap or a change of sampling rate ends the id's segment: its tail is flushed
    (nothing is lost) and a new segment starts. Output Traces carry the true time of their first sample (the
    segment's start plus the samples already out) and go to ``on_denoised(trace)``.

    Parameters
    ----------
    server : str
        ``HOST:PORT`` of the SeedLink server.
    on_denoised : callable
        Called with each denoised :class:`obspy.Trace`.
    model : str, path or Denoiser
        The model; its sampling rate must match the feed's (streams are not resampled).
    hop : int, optional
        Hop between windows; default: the model's.
    timeout : float
        Seconds: connecting, and longest wait for data before the connection is considered dead and reopened.
        (ObsPy 1.5.1 needs this set before connecting, or every connection attempt fails.)
    reconnect_delay : float
        Seconds between reconnection attempts.

    Examples
    --------
    >>> client = SeedLinkDenoiser("localhost:18000", print, model="seismic")   # doctest: +SKIP
    >>> client.select_stream("BW", "RJOB", "EH?")                              # doctest: +SKIP
    >>> client.run_forever()                                                   # doctest: +SKIP
    """

    def __init__(self, server: str, on_denoised, model="seismic", hop: int | None = None, timeout: float = 60.0,
                 reconnect_delay: float = 5.0):
        if not callable(on_denoised):
            raise TypeError("on_denoised must be callable (it receives each denoised Trace)")
        super().__init__(server, autoconnect=False)
        self._stop = threading.Event()
        self.conn = _EofAwareConnection(float(timeout), self._stop)
        self.conn.set_sl_address(f"{self.server_hostname}:{self.server_port}")
        self.conn.netto = float(timeout)
        self.conn.netdly = float(reconnect_delay)
        self.on_denoised = on_denoised
        self.denoiser = resolve_model(model)
        self.hop = hop
        self.reconnect_delay = float(reconnect_delay)
        self._streams: dict[str, _TraceStream] = {}

    def feed(self, packet: obspy.Trace) -> None:
        """Denoise one packet (a Trace of any length); emit whatever became final through ``on_denoised``."""
        rate = _check_rate(packet.stats.sampling_rate)
        if self.denoiser.sample_rate is not None and not np.isclose(rate, self.denoiser.sample_rate, rtol=1e-9):
            raise ValueError(
                f"{packet.id} is sampled at {rate:g} Hz but the model expects {self.denoiser.sample_rate:g} Hz "
                "(live streams are not resampled)"
            )
        state = self._streams.get(packet.id)
        if state is not None and not state.continues(packet):
            self._finish(packet.id)
            state = None
        if state is None:
            state = self._streams[packet.id] = _TraceStream(self.denoiser, self.hop, packet)
        first = state.stream.samples_out
        try:
            samples = state.stream.process(_as_samples(packet.data))
        except ValueError:
            self._finish(packet.id)  # the packet is refused; what came before it is complete
            raise
        state.expected = packet.stats.endtime + 1.0 / rate
        if samples.size:
            self.on_denoised(state.trace(samples, first))

    def flush(self) -> None:
        """End every trace id's segment, emitting the samples still held back by the latency."""
        for trace_id in list(self._streams):
            self._finish(trace_id)

    def _finish(self, trace_id: str) -> None:
        state = self._streams.pop(trace_id)
        first = state.stream.samples_out
        tail = state.stream.flush()
        if tail.size:
            self.on_denoised(state.trace(tail, first))

    def on_data(self, trace) -> None:
        """EasySeedLinkClient callback: feed the packet; a bad packet is logged and skipped, not fatal."""
        if self._stop.is_set():
            raise _Stopped
        try:
            self.feed(trace)
        except (ValueError, TypeError) as error:
            logger.error("skipping a packet of %s: %s", trace.id, error)

    def run_forever(self) -> None:
        """Stream until :meth:`stop`, reconnecting after dropped connections; flushes every segment at the end.

        ObsPy's ``collect`` reconnects by itself when a read fails; a failed reconnection or a stall longer
        than ``timeout`` ends ``run()``, and this loop opens the connection again after ``reconnect_delay``.
        """
        if not self.conn.streams:
            raise ValueError("no streams selected: call select_stream(net, station, selector) first")
        try:
            while not self._stop.is_set():
                try:
                    self.run()
                except _Stopped:
                    break
                except (SeedLinkException, EasySeedLinkClientException, OSError) as error:
                    logger.warning("SeedLink connection lost (%s); reconnecting in %gs", error, self.reconnect_delay)
                    self.conn.disconnect()
                    self._stop.wait(self.reconnect_delay)
        finally:
            self.flush()
            self.close()

    def stop(self) -> None:
        """Make :meth:`run_forever` (running in another thread) return soon: no new packet is processed."""
        self._stop.set()
        self.conn.terminate()
        connection = self.conn.socket
        if connection is not None:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)  # wakes a blocked read


class MiniSeedDayFiles:
    """An ``on_denoised`` callback that appends each Trace to ``DIR/NET.STA.LOC.CHA.YYYY.DDD.mseed``.

    Each Trace is encoded in memory first and appended with one write, so a file only ever grows by whole
    512-byte records.
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.traces_written = 0

    def __call__(self, trace: obspy.Trace) -> None:
        import io

        start = trace.stats.starttime
        path = self.directory / f"{trace.id}.{start.year:04d}.{start.julday:03d}.mseed"
        buffer = io.BytesIO()
        obspy.Stream([trace]).write(buffer, format="MSEED", encoding="FLOAT64", reclen=512)
        with open(path, "ab") as handle:
            handle.write(buffer.getvalue())
        self.traces_written += 1
