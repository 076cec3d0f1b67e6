"""SeedLinkDenoiser: real miniSEED records replayed as SeedLink packets, and a SeedLink v3 server on loopback."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from pathlib import Path

import numpy as np
import obspy
import pytest
import torch
from obspy.clients.seedlink.slpacket import SLPacket

import pydenoise
from pydenoise import cli, seismic
from pydenoise.core.spectral import SpectralMaskDenoiser
from pydenoise.seismic.spectral_training import DEFAULTS

MSEED_DATA = Path(obspy.__file__).parent / "io" / "mseed" / "tests" / "data"
RECORD = 512


def records_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    return [data[i : i + RECORD] for i in range(0, len(data), RECORD)]


#: Real 512-byte records: ten of BW.BGLD..EHE (412 samples each, contiguous) and one each of BW.UH3..EHE/EHZ.
BGLD = records_of(MSEED_DATA / "BW.BGLD.__.EHE.D.2008.001.first_10_records")
UH3 = records_of(MSEED_DATA / "two_channels.mseed")
FEED = BGLD[:5] + UH3 + BGLD[5:]

torch.manual_seed(2)
MODEL = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 200.0, "hop": 64})


def packet(record: bytes, sequence: int = 1) -> obspy.Trace:
    return SLPacket(b"SL%06X" % sequence + record, 0).get_trace()


def offline(records: list[bytes], model: pydenoise.Denoiser = MODEL) -> dict[str, obspy.Trace]:
    """The whole signal of each trace id, read at once, and its offline denoising (the same local level as a
    stream's)."""
    stream = obspy.read(io.BytesIO(b"".join(records))).merge()
    result = {}
    for trace in stream:
        data = trace.data.astype(np.float64)
        result[trace.id] = (trace, model.denoise(data))
    return result


def check_outputs(outputs: list[obspy.Trace], records: list[bytes], model: pydenoise.Denoiser = MODEL) -> None:
    """Per id: outputs tile the input's time span with no gap or overlap and equal the offline result."""
    for trace_id, (whole, expected) in offline(records, model).items():
        parts = [t for t in outputs if t.id == trace_id]
        assert parts[0].stats.starttime == whole.stats.starttime
        for before, after in zip(parts, parts[1:]):
            assert abs(after.stats.starttime - (before.stats.endtime + before.stats.delta)) < 1e-6
        got = np.concatenate([t.data for t in parts])
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


# ------------------------------------------------------------------------------------ packet replay


def test_replayed_packets_give_the_offline_result_with_true_start_times():
    outputs = []
    client = seismic.SeedLinkDenoiser("localhost:1", outputs.append, model=MODEL)
    for sequence, record in enumerate(FEED, 1):
        client.feed(packet(record, sequence))
    held_back = {t.id for t in outputs}
    assert held_back == {"BW.BGLD..EHE", "BW.UH3..EHE", "BW.UH3..EHZ"}
    bgld = sum(t.stats.npts for t in outputs if t.id == "BW.BGLD..EHE")
    assert bgld == 64 * (4120 // 64) - (256 - 64)  # what the documented latency lets through before the end
    client.flush()
    check_outputs(outputs, FEED)


def test_a_model_with_a_long_period_path_streams_the_feed_as_offline(tmp_path):
    torch.manual_seed(3)
    low_rate = tmp_path / "long.safetensors"  # a random 25 Hz model under the 200 Hz one: the shipped pair's shape
    pydenoise.nn.save_model(pydenoise.nn.DDAE(residual=True), low_rate, {"sample_rate": 25.0, "hop": 32})
    model = MODEL.with_long_period(low_rate, crossover_hz=1.0)
    outputs = []
    client = seismic.SeedLinkDenoiser("localhost:1", outputs.append, model=model)
    for sequence, record in enumerate(FEED, 1):
        client.feed(packet(record, sequence))
    client.flush()
    check_outputs(outputs, FEED, model)


def test_a_spectral_mask_model_streams_the_feed_as_offline():
    torch.manual_seed(4)
    config = DEFAULTS | {"sample_rate": 200.0, "history_frames": 10}
    model = SpectralMaskDenoiser(pydenoise.nn.DDAE((256, 64, 256)), config)
    outputs = []
    client = seismic.SeedLinkDenoiser("localhost:1", outputs.append, model=model)
    for sequence, record in enumerate(FEED, 1):
        client.feed(packet(record, sequence))
    assert sum(t.stats.npts for t in outputs if t.id == "BW.BGLD..EHE") >= 4120 - model.latency - model.hop
    client.flush()
    check_outputs(outputs, FEED, model)


def test_a_gap_ends_the_segment_and_repeated_samples_are_dropped_each_logged(caplog):
    outputs = []
    client = seismic.SeedLinkDenoiser("localhost:1", outputs.append, model=MODEL)
    late = packet(BGLD[2])
    half = packet(BGLD[7])
    half.stats.starttime -= 100 / half.stats.sampling_rate  # 100 samples over what came before
    half.data = np.concatenate([np.zeros(100, half.data.dtype), half.data])
    fed = [*map(packet, BGLD[:4]), *map(packet, BGLD[5:7]), packet(BGLD[6]), half, late, *map(packet, BGLD[8:])]
    with caplog.at_level(logging.INFO, logger="pydenoise.seismic.seedlink"):
        for trace in fed:  # record 5 missing (a gap), record 7 twice, 8 overlapping, 3 late (older than the gap)
            client.feed(trace)
    client.flush()
    messages = [record.getMessage() for record in caplog.records]
    assert "a gap of 2.060 s" in messages[0] and "a new one starts" in messages[0]
    assert "was already received" in messages[1] and "100 samples of a packet" in messages[2]
    assert "older than the segment started at" in messages[3] and len(messages) == 4
    sizes = np.cumsum([t.stats.npts for t in outputs])
    end_of_first = int(np.searchsorted(sizes, 412 * 4)) + 1
    assert sizes[-1] == 412 * 9 and sizes[end_of_first - 1] == 412 * 4  # each time once
    check_outputs(outputs[:end_of_first], BGLD[:4])  # each segment as if read offline
    check_outputs(outputs[end_of_first:], BGLD[5:])


def test_packets_at_another_rate_than_the_model_are_refused_clearly():
    client = seismic.SeedLinkDenoiser("localhost:1", lambda trace: None, model=MODEL)
    trace = packet(BGLD[0])
    trace.stats.sampling_rate = 100.0
    with pytest.raises(ValueError, match="sampled at 100 Hz but the model expects 200 Hz"):
        client.feed(trace)
    with pytest.raises(TypeError, match="callable"):
        seismic.SeedLinkDenoiser("localhost:1", None, model=MODEL)


# ------------------------------------------------------------------------- a SeedLink v3 server


def info_packet(xml: str) -> bytes:
    """A terminated INFO packet: the XML as an ASCII miniSEED log record."""
    trace = obspy.Trace(np.frombuffer(xml.encode(), dtype="S1"), header={"station": "INFO", "channel": "LOG"})
    buffer = io.BytesIO()
    trace.write(buffer, format="MSEED", encoding="ASCII", reclen=RECORD)
    return b"SLINFO  " + buffer.getvalue()[:RECORD]


CAPABILITIES = info_packet(
    '<?xml version="1.0"?><seedlink software="pydenoise test server"><capability name="dialup"/>'
    '<capability name="multistation"/><capability name="info:id"/><capability name="info:capabilities"/>'
    "</seedlink>"
)


class SeedLinkServer(threading.Thread):
    """Just enough SeedLink v3 on loopback for ObsPy's client: HELLO, INFO CAPABILITIES, STATION, SELECT,
    DATA [seq], END, then the packets (sequence numbers 1, 2, ...). The first connection is dropped after
    ``drop_after`` packets; a reconnecting client asks to resume after the last packet it got."""

    def __init__(self, records: list[bytes], drop_after: int):
        super().__init__(daemon=True)
        self.records, self.drop_after = records, drop_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.resumes: list[dict[str, int]] = []  # per connection: station -> first sequence number asked for
        self.all_sent = threading.Event()
        self.closing = threading.Event()

    def run(self):
        while not self.closing.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                self.serve(connection)
        self.listener.close()

    def serve(self, connection: socket.socket) -> None:
        connection.settimeout(0.1)
        wanted, station, buffer = {}, None, b""
        self.resumes.append(wanted)
        while not self.closing.is_set():
            if b"\r" not in buffer:
                try:
                    chunk = connection.recv(1024)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buffer += chunk
                continue
            line, _, buffer = buffer.partition(b"\r")
            buffer = buffer.removeprefix(b"\n")
            words = line.decode().split()
            command = words[0].upper() if words else ""
            if command == "HELLO":
                connection.sendall(b"SeedLink v3.1 (pydenoise test) :: SLPROTO:3.1\r\nloopback test server\r\n")
            elif command == "INFO":
                connection.sendall(CAPABILITIES)
            elif command == "STATION":
                station = words[1]
                connection.sendall(b"OK\r\n")
            elif command == "SELECT":
                connection.sendall(b"OK\r\n")
            elif command == "DATA":
                wanted[station] = int(words[1], 16) if len(words) > 1 else 1
                connection.sendall(b"OK\r\n")
            elif command == "END":
                self.stream(connection, wanted)
                return

    def stream(self, connection: socket.socket, wanted: dict[str, int]) -> None:
        first_connection = len(self.resumes) == 1
        sent = 0
        for sequence, record in enumerate(self.records, 1):
            if sequence < wanted.get(record[8:13].decode().strip(), 1):
                continue
            if first_connection and sent == self.drop_after:
                return  # the connection drops
            connection.sendall(b"SL%06X" % sequence + record)
            sent += 1
        self.all_sent.set()
        while not self.closing.is_set():  # keep the connection open, as a live server does
            try:
                if not connection.recv(1024):
                    return
            except TimeoutError:
                continue


def test_live_feed_from_a_seedlink_server_survives_a_dropped_connection():
    server = SeedLinkServer(FEED, drop_after=4)
    server.start()
    outputs = []
    client = seismic.SeedLinkDenoiser(
        f"127.0.0.1:{server.port}", outputs.append, model=MODEL, timeout=5, reconnect_delay=0.1
    )
    client.select_stream("BW", "BGLD", "EHE")
    client.select_stream("BW", "UH3", "EH?")
    worker = threading.Thread(target=client.run_forever, daemon=True)
    worker.start()
    try:
        expected = {trace_id: 64 * (whole.stats.npts // 64) - 192 for trace_id, (whole, _) in offline(FEED).items()}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            received = {i: sum(t.stats.npts for t in list(outputs) if t.id == i) for i in expected}
            if received == expected:
                break
            time.sleep(0.05)
        assert received == expected
    finally:
        client.stop()
        worker.join(10)
        server.closing.set()
        server.join(5)
    assert not worker.is_alive()
    assert len(server.resumes) == 2 and server.resumes[1] == {"BGLD": 5, "UH3": 1}  # resumed after packet 4
    check_outputs(outputs, FEED)  # the tails came out when the client stopped


def test_cli_seedlink_writes_denoised_miniseed(tmp_path, monkeypatch, capsys):
    model_path = tmp_path / "model.safetensors"
    pydenoise.nn.save_model(MODEL.module, model_path, config=MODEL.config)
    server = SeedLinkServer(FEED, drop_after=2)
    server.start()
    fed = []
    feed = seismic.SeedLinkDenoiser.feed

    def feed_then_stop_at_the_end(self, trace):  # Ctrl-C, once every packet has been processed
        feed(self, trace)
        fed.append(trace.id)
        if len(fed) == len(FEED):
            self.stop()

    monkeypatch.setattr(seismic.SeedLinkDenoiser, "feed", feed_then_stop_at_the_end)
    try:
        status = cli.main(
            [
                "seedlink",
                f"127.0.0.1:{server.port}",
                "-s",
                "BW_BGLD:EHE",
                "-s",
                "BW_UH3:EHE EHZ",
                "-o",
                str(tmp_path / "live"),
                "--model",
                str(model_path),
                "--timeout",
                "5",
                "--reconnect-delay",
                "0.1",
            ]
        )
    finally:
        server.closing.set()
        server.join(5)
    assert status == 0 and len(server.resumes) == 2
    lag = MODEL.stream().latency / MODEL.sample_rate
    assert f"output lags the feed by about {lag:.1f} s" in capsys.readouterr().err
    written = sorted(p.name for p in (tmp_path / "live").iterdir())
    assert written == [
        "BW.BGLD..EHE.2007.365.mseed",  # the first 85 ms of the feed fall on the last day of 2007
        "BW.BGLD..EHE.2008.001.mseed",
        "BW.UH3..EHE.2010.171.mseed",
        "BW.UH3..EHZ.2010.171.mseed",
    ]
    check_outputs(list(obspy.read(str(tmp_path / "live" / "*.mseed"))), FEED)
