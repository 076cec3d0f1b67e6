"""The SeedLink client against a real SeedLink server, EarthScope's ringserver: offline-equal output from the
CLI, several stations with wildcards, and restarts of the server, graceful and by a crash."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import obspy
import pytest
import ringserver
from test_seismic_seedlink import MODEL, check_outputs, records_of

import pydenoise
from pydenoise import seismic

SECONDS, RATE = 40.0, 200.0


@pytest.fixture(scope="module")
def binary() -> Path:
    try:
        return ringserver.build()
    except FileNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture()
def server(binary, tmp_path):
    ring = ringserver.RingServer(binary, tmp_path / "server")
    ring.start()
    yield ring
    ring.stop(signal.SIGKILL)


def recording(station: str, channel: str, seed: int) -> obspy.Trace:
    """A 40 s, 200 Hz integer trace (a random walk: smooth enough to compress like real data)."""
    walk = np.cumsum(np.random.default_rng(seed).integers(-50, 51, int(SECONDS * RATE))).astype(np.int32)
    header = {"network": "XX", "station": station, "channel": channel, "sampling_rate": RATE}
    return obspy.Trace(walk, header={**header, "starttime": obspy.UTCDateTime(2024, 5, 1)})


def drop_into_scan(server: ringserver.RingServer, traces: list[obspy.Trace], name: str) -> list[bytes]:
    """Write ``traces`` as 512-byte records into the scan directory (renamed in whole); returns the records."""
    staging = server.folder / name
    obspy.Stream(traces).write(str(staging), format="MSEED", encoding="STEIM2", reclen=512)
    records = records_of(staging)
    staging.rename(server.scan / name)
    return records


def released(npts: int) -> int:
    """Samples of a stream out before its end: the 192-sample latency, per 64-sample hop."""
    return 64 * (npts // 64) - 192


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_cli_output_equals_offline_for_several_stations_with_wildcards(server, tmp_path):
    model_path = tmp_path / "model.safetensors"
    pydenoise.nn.save_model(MODEL.module, model_path, config=MODEL.config)
    traces = [recording("RS1", "HHZ", 1), recording("RS1", "HHN", 2), recording("RS2", "HHZ", 3)]
    traces.append(recording("RS2", "LHZ", 4))  # not selected by RS2's HH? below
    out = tmp_path / "live"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pydenoise.cli import main; sys.exit(main())", "seedlink",
         server.address, "-s", "XX_RS1", "-s", "XX_RS2:HH?", "-o", str(out), "--model", str(model_path),
         "--timeout", "10"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        server.wait_for_clients(1)
        records = drop_into_scan(server, traces, "day.mseed")
        expected = {t.id: released(t.stats.npts) for t in traces[:3]}
        wait_for(lambda: samples_in(out) == expected)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert written == ["XX.RS1..HHN.2024.122.mseed", "XX.RS1..HHZ.2024.122.mseed", "XX.RS2..HHZ.2024.122.mseed"]
    selected = [r for r in records if b"LHZ" not in r[15:18]]
    check_outputs(list(obspy.read(str(out / "*.mseed"))), selected)  # the offline result, every sample


def samples_in(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    try:
        for trace in obspy.read(str(folder / "*.mseed")):
            counts[trace.id] = counts.get(trace.id, 0) + trace.stats.npts
    except Exception:  # no file yet, or one being appended to
        return {}
    return counts


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "crash"])
def test_a_server_restart_mid_stream_loses_and_repeats_nothing(server, caplog, stop_signal):
    """SIGTERM keeps the ring and its sequence numbers; after SIGKILL ringserver starts a new ring, numbers its
    packets afresh and reads its scan directory again, so the data already sent come again."""
    whole = recording("RS1", "HHZ", 5)
    half = int(whole.stats.npts / 2)
    outputs: list[obspy.Trace] = []
    client = seismic.SeedLinkDenoiser(server.address, outputs.append, model=MODEL, timeout=10, reconnect_delay=0.2)
    client.select_stream("XX", "RS1", "HHZ")
    worker = threading.Thread(target=client.run_forever, daemon=True)
    worker.start()

    def samples_out() -> int:
        return sum(t.stats.npts for t in list(outputs))

    with caplog.at_level(logging.INFO, logger="pydenoise.seismic.seedlink"):
        try:
            server.wait_for_clients(1)
            head = whole.copy()
            head.data = whole.data[:half]
            first = drop_into_scan(server, [head], "first.mseed")
            wait_for(lambda: samples_out() == released(half))  # all of the first half is in
            server.stop(stop_signal)
            rest = whole.copy()
            rest.data = whole.data[half:]
            rest.stats.starttime = whole.stats.starttime + half / RATE
            second = drop_into_scan(server, [rest], "second.mseed")  # arrives while the server is down
            server.start()
            wait_for(lambda: samples_out() == released(whole.stats.npts))
        finally:
            client.stop()
            worker.join(20)
    assert not worker.is_alive()
    assert not [r for r in caplog.records if "gap" in r.getMessage() or "older" in r.getMessage()]
    check_outputs(outputs, first + second)  # one gap-free trace, equal to the offline result
    if stop_signal == signal.SIGKILL:  # the new ring read the first half again, under new sequence numbers
        # the scan is logged as it runs, so wait for it rather than reading the log once
        wait_for(lambda: "Resetting ring packet buffer" in server.log.read_text())
        wait_for(lambda: "first.mseed" in server.log.read_text())
