"""SeedLink real time: :class:`SeedLinkDenoiser` denoises a feed as it arrives, one
:class:`~pydenoise.core.streaming.StreamingDenoiser` per trace id, and writes or hands on the denoised traces.
"""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import suppress

import numpy as np
import obspy
from obspy.clients.seedlink.client.seedlinkconnection import SeedLinkConnection
from obspy.clients.seedlink.easyseedlink import EasySeedLinkClient, EasySeedLinkClientException
from obspy.clients.seedlink.seedlinkexception import SeedLinkException

from pydenoise.core.denoiser import Denoiser, resolve_model
from pydenoise.seismic.api import as_samples, check_rate

__all__ = ["SeedLinkDenoiser"]

logger = logging.getLogger(__name__)


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

    def unseen(self, packet: obspy.Trace) -> obspy.Trace | None:
        """``packet`` less the samples at times this id already has (a re-sent or late packet), logged; None when
        nothing is left. A packet at another rate is left whole (it starts a new segment)."""
        rate = packet.stats.sampling_rate
        already = round((self.expected - packet.stats.starttime) * rate)
        if rate != self.rate or already <= 0:
            return packet
        span = f"{packet.stats.starttime} - {packet.stats.endtime}"
        if already < packet.stats.npts:
            logger.info("%s: %d samples of a packet (%s) were already received; dropped", packet.id, already, span)
            header = packet.stats.copy()
            header.starttime += already / rate
            header.npts -= already
            return obspy.Trace(data=packet.data[already:], header=header)
        if packet.stats.endtime < self.start:
            logger.warning(
                "%s: a packet (%s) is older than the segment started at %s (a clock jump back, or a late "
                "packet); dropped",
                packet.id,
                span,
                self.start,
            )
        else:
            logger.info(
                "%s: a packet (%s) was already received (re-sent after a reconnection); dropped", packet.id, span
            )
        return None

    def break_reason(self, packet: obspy.Trace) -> str:
        """Why ``packet`` does not continue the segment, for the log."""
        if packet.stats.sampling_rate != self.rate:
            return f"the sampling rate changed from {self.rate:g} to {packet.stats.sampling_rate:g} Hz"
        return f"a gap of {packet.stats.starttime - self.expected:.3f} s before {packet.stats.starttime}"

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

    def negotiate_station(self, curstream):
        self._negotiating = curstream
        return super().negotiate_station(curstream)

    def send_data(self, sendbytes, code, resplen):
        """Resume with ``DATA seq time``: a server that lost its ring (ringserver after a crash restarts its
        sequence numbers) resumes from the last packet's time instead; what comes again is dropped by
        :meth:`SeedLinkDenoiser.feed`. (ObsPy's own ``lastpkttime`` option fails in 1.5: bytes + str.)"""
        words = sendbytes.split()
        station = getattr(self, "_negotiating", None)
        if len(words) == 2 and words[0] in (b"DATA", b"FETCH") and station is not None and station.btime:
            sendbytes = sendbytes.rstrip(b"\r\n") + b" " + station.btime.format_seedlink().encode() + b"\r"
        return super().send_data(sendbytes, code, resplen)

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
    of samples. Samples at times an id already has (a packet re-sent after a reconnection, an overlapping,
    duplicate or late packet, a clock jump back) are dropped with a logged message: each time is written once.
    A gap (or a clock jump forward) or a change of sampling rate ends the id's segment, with a warning: its
    tail is flushed (nothing is lost) and a new segment starts. After a reconnection the client resumes after
    the last packet's sequence number, or from its time where the server no longer has that number.
    Output Traces carry the true time of their first sample (the segment's start plus the samples already
    out) and go to ``on_denoised(trace)``.

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

    def __init__(
        self,
        server: str,
        on_denoised,
        model="seismic",
        hop: int | None = None,
        timeout: float = 60.0,
        reconnect_delay: float = 5.0,
    ):
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
        rate = check_rate(packet.stats.sampling_rate)
        if self.denoiser.sample_rate is not None and not np.isclose(rate, self.denoiser.sample_rate, rtol=1e-9):
            raise ValueError(
                f"{packet.id} is sampled at {rate:g} Hz but the model expects {self.denoiser.sample_rate:g} Hz "
                "(live streams are not resampled)"
            )
        state = self._streams.get(packet.id)
        if state is not None:
            packet = state.unseen(packet)
            if packet is None:
                return
            if not state.continues(packet):
                logger.warning("%s: %s; the segment ends and a new one starts", packet.id, state.break_reason(packet))
                self._finish(packet.id)
                state = None
        if state is None:
            state = self._streams[packet.id] = _TraceStream(self.denoiser, self.hop, packet)
        first = state.stream.samples_out
        try:
            samples = state.stream.process(as_samples(packet.data))
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
