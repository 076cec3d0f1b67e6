"""Soak (issue #27, item 3): a long many-channel feed through a real SeedLink server (ringserver) into the client.

A feeder process writes ``--hours`` of synthetic ground motion for ``--channels`` channels (stations S000, S001,
… with HHZ, HHN and HHE at 100 Hz) into ringserver's scan directory, one ``--chunk-minutes`` file at a time, as
fast as the client takes them: the next chunk once every channel has received some of the last one, so that
the ring never overwrites a packet the client has not read and each channel's packets come in time order.
The client is :class:`pydenoise.seismic.SeedLinkDenoiser` in this process, selecting each station's ``HH?``
streams. Reported:

- the replay speed: feed seconds per wall-clock second (the issue asks for at least 100x real time);
- the client's resident memory through the run, and its growth after the warm-up (the first fifth);
- samples lost or repeated: every output trace must start at the next sample's time, and each channel's
  output must have exactly the samples of its feed;
- the time each packet spends in the client (``feed``: the denoiser and its bookkeeping), p50 and p99.

Usage::

    python benchmarks/soak_seedlink.py                 # 24 h of 102 channels; writes records/soak_seedlink.json
    python benchmarks/soak_seedlink.py --hours 0.25 --channels 4 --no-write      # a smoke run, prints only
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import multiprocessing
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import obspy
import psutil  # with Dask's distributed
import scipy.signal

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import ringserver  # noqa: E402
from results import markdown_table, write_record  # noqa: E402

RATE = 100.0
COMPONENTS = ("HHZ", "HHN", "HHE")
START = obspy.UTCDateTime(2025, 1, 1)
# Packet times in a fixed-size histogram (1 µs to 100 s, log-spaced): a list of every packet's time would
# itself grow the memory this soak watches.
TIME_BINS = np.logspace(-6, 2, 801)


def channel_ids(channels: int) -> list[tuple[str, str]]:
    """(station, channel) of each channel: three components per station, the last station possibly fewer."""
    return [(f"S{index // 3:03d}", COMPONENTS[index % 3]) for index in range(channels)]


def feed_chunks(scan: str, channels: int, hours: float, chunk_minutes: float, received, written, stop) -> None:
    """The feeder process: write chunk after chunk of every channel into ``scan``.

    Chunk k is written once every channel has received samples of chunk k - 1 (``received``: the seconds of
    feed the client's least-served channel has received). By then ringserver's scanner is in the last
    channel of chunk k - 1's file, so it reads the files in order: with two files in its folder at once it
    may read them in any order, and a channel's packets would then come out of time order, which the client
    drops as late. The files read in full are removed, so that a day of 100 channels never fills the disk.
    ``written`` says how many seconds of feed are in the folder; no chunk is begun once ``stop`` is set.
    """
    chunk_seconds = chunk_minutes * 60.0
    chunks = math.ceil(hours * 3600.0 / chunk_seconds)
    total = round(hours * 3600.0 * RATE)
    rng = np.random.default_rng(0)
    states = np.zeros((channels, 1))  # each channel's AR(1) filter state, carried from chunk to chunk
    folder = Path(scan)
    for chunk in range(chunks):
        while chunk and received.value <= (chunk - 1) * chunk_seconds and not stop.value:
            time.sleep(0.02)
        if stop.value:
            return
        (folder / f"chunk{chunk - 2:05d}.mseed").unlink(missing_ok=True)
        first = round(chunk * chunk_seconds * RATE)
        npts = min(round((chunk + 1) * chunk_seconds * RATE), total) - first
        # Microseism-like AR(1) motion (a 0.5 s correlation time) with white noise on top, in counts.
        motion, states = scipy.signal.lfilter([1.0], [1.0, -0.98], rng.normal(0.0, 300.0, (channels, npts)), zi=states)
        counts = np.round(motion + rng.normal(0.0, 50.0, (channels, npts))).astype(np.int32)
        traces = [
            obspy.Trace(data, header={"network": "XX", "station": station, "channel": channel, "sampling_rate": RATE,
                                      "starttime": START + first / RATE})
            for data, (station, channel) in zip(counts, channel_ids(channels))
        ]  # fmt: skip
        staging = folder.parent / f"chunk{chunk:05d}.mseed"
        obspy.Stream(traces).write(str(staging), format="MSEED", encoding="STEIM2", reclen=512)
        staging.rename(folder / staging.name)  # whole files only: the scanner never sees half a chunk
        written.value = (first + npts) / RATE


def resident_mb() -> float:
    """This process's resident set size in MB."""
    return psutil.Process().memory_info().rss / 2**20


@dataclass
class ChannelTally:
    """One channel's samples received and out, and whether each output continued the last at the next sample."""

    received: int = 0
    out: int = 0
    expected: obspy.UTCDateTime | None = None
    gaps: int = 0
    overlaps: int = 0
    not_finite: int = 0


@dataclass
class Tally:
    channels: dict = field(default_factory=dict)
    packet_histogram: np.ndarray = field(default_factory=lambda: np.zeros(TIME_BINS.size + 1, np.int64))

    def output(self, trace: obspy.Trace) -> None:
        tally = self.channels.setdefault(trace.id, ChannelTally())
        if tally.expected is not None:
            offset = trace.stats.starttime - tally.expected
            tally.gaps += offset > 0.5 / RATE
            tally.overlaps += offset < -0.5 / RATE
        tally.expected = trace.stats.endtime + 1.0 / RATE
        tally.out += trace.stats.npts
        tally.not_finite += int(np.count_nonzero(~np.isfinite(trace.data)))

    def seconds_received(self, channels: int) -> float:
        """Feed seconds the least-served channel has received (0 until every channel has some)."""
        if len(self.channels) < channels:
            return 0.0
        return min(tally.received for tally in list(self.channels.values())) / RATE


def timed_client(address: str, tally: Tally, model: str):
    """The SeedLink client, timing each packet in ``feed`` and counting the samples it received per channel."""
    from pydenoise import seismic

    class TimedClient(seismic.SeedLinkDenoiser):
        def feed(self, packet):
            start = time.perf_counter()
            super().feed(packet)
            tally.packet_histogram[np.searchsorted(TIME_BINS, time.perf_counter() - start)] += 1
            tally.channels.setdefault(packet.id, ChannelTally()).received += packet.stats.npts

    return TimedClient(address, tally.output, model=model, timeout=30, reconnect_delay=1.0)


def histogram_percentile(histogram: np.ndarray, q: float) -> float:
    """The upper edge of the bin holding the ``q``-th percentile: an upper bound, within 2.3 % (100 bins a decade)."""
    index = int(np.searchsorted(np.cumsum(histogram), q / 100.0 * histogram.sum()))
    return float(TIME_BINS[min(index, TIME_BINS.size - 1)])


class WarningCount(logging.Handler):
    """Counts the client's warnings and errors (a gap, a refused packet, a lost connection)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        self.count += 1


def soak(
    channels: int,
    hours: float,
    chunk_minutes: float,
    model: str = "seismic",
    wall_limit: float = math.inf,
    stall: float = 120.0,
    report=lambda line: None,
) -> dict:
    """Run the soak; return its figures (see the module docstring). After ``wall_limit`` seconds no new chunk
    is written and the soak ends once the client has what was written (the figures say how much that was)."""
    warnings = WarningCount()
    logging.getLogger("pydenoise").addHandler(warnings)
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        server = ringserver.RingServer(ringserver.build(), Path(folder) / "server", ring_size="512M")
        server.start()
        tally = Tally()
        client = timed_client(server.address, tally, model)
        for station in sorted({station for station, _ in channel_ids(channels)}):
            client.select_stream("XX", station, "HH?")
        worker = threading.Thread(target=client.run_forever, daemon=True)
        worker.start()
        server.wait_for_clients(1)
        context = multiprocessing.get_context("spawn")
        received, written = context.Value("d", 0.0, lock=False), context.Value("d", 0.0, lock=False)
        stop = context.Value("b", 0, lock=False)
        feeder = context.Process(
            target=feed_chunks, args=(str(server.scan), channels, hours, chunk_minutes, received, written, stop)
        )
        started = time.monotonic()
        feeder.start()
        memory = []  # (wall seconds, feed seconds received by every channel, resident MB)
        last_change, last_received = time.monotonic(), -1.0
        try:
            for poll in itertools.count():
                time.sleep(0.1)
                received.value = tally.seconds_received(channels)
                now = time.monotonic()
                if poll % 20 == 0:
                    memory.append((now - started, received.value, resident_mb()))
                if poll % 600 == 0:
                    speed = received.value / (now - started)
                    hours_in = received.value / 3600
                    report(
                        f"{now - started:6.0f} s: {hours_in:6.2f} h in, {speed:5.1f}x real time, {memory[-1][2]:.0f} MB"
                    )
                if received.value != last_received:
                    last_change, last_received = now, received.value
                if now - started > wall_limit and not stop.value:
                    stop.value = 1
                    feeder.join()  # it ends before its next chunk: `written` is final
                finished = (stop.value or not feeder.is_alive()) and received.value >= written.value > 0
                if finished or now - last_change > stall or not worker.is_alive():
                    break
        finally:
            client.stop()
            worker.join(60)
            wall = time.monotonic() - started
            feeder.terminate()
            feeder.join()
            server.stop()
    logging.getLogger("pydenoise").removeHandler(warnings)
    fed = round(written.value * RATE)
    return figures(tally, memory, channels, fed, round(hours * 3600 * RATE), wall, warnings.count, finished)


def figures(
    tally: Tally, memory: list, channels: int, total: int, planned: int, wall: float, warnings: int, complete: bool
) -> dict:
    """The soak's figures: ``total`` samples per channel were fed (``planned`` were asked for)."""
    tallies = tally.channels.values()
    rss = np.array([row[2] for row in memory])
    warm = rss[len(rss) // 5] if rss.size else float("nan")
    return {
        "channels": channels,
        "feed_hours": total / RATE / 3600.0,
        "feed_hours_asked": planned / RATE / 3600.0,
        "complete": complete,
        "wall_seconds": wall,
        "times_real_time": total / RATE / wall,
        "samples_fed": total * channels,
        "samples_lost": sum(max(total - t.out, 0) for t in tallies) + total * (channels - len(tally.channels)),
        "samples_repeated": sum(max(t.out - total, 0) for t in tallies),
        "gaps": sum(t.gaps for t in tallies),
        "overlaps": sum(t.overlaps for t in tallies),
        "not_finite": sum(t.not_finite for t in tallies),
        "warnings_logged": warnings,
        "packets": int(tally.packet_histogram.sum()),
        "packet_ms_p50": histogram_percentile(tally.packet_histogram, 50) * 1e3,
        "packet_ms_p99": histogram_percentile(tally.packet_histogram, 99) * 1e3,
        "rss_mb_after_warm_up": float(warm),
        "rss_mb_end": float(rss[-1]) if rss.size else float("nan"),
        "rss_growth": float(rss[-1] / warm - 1.0) if rss.size else float("nan"),
        "rss_mb_max": float(rss.max()) if rss.size else float("nan"),
        "memory_trace": [row for index, row in enumerate(memory) if index % max(len(memory) // 200, 1) == 0],
    }


def markdown(result: dict, model: str) -> str:
    r = result
    rows = [
        [
            "feed",
            f"{r['feed_hours']:g} h (of {r['feed_hours_asked']:g} asked) x {r['channels']} channels at 100 Hz "
            f"({r['samples_fed']:,} samples)",
        ],
        ["replay speed", f"{r['times_real_time']:.1f}x real time ({r['wall_seconds']:.0f} s; target 100x)"],
        ["samples lost / repeated", f"{r['samples_lost']} / {r['samples_repeated']}"],
        ["gaps / overlaps in the output", f"{r['gaps']} / {r['overlaps']}"],
        ["warnings logged", r["warnings_logged"]],
        [
            "packets; time in the client p50 / p99",
            f"{r['packets']:,}; {r['packet_ms_p50']:.2f} / {r['packet_ms_p99']:.2f} ms",
        ],
        [
            "resident memory after warm-up -> end (max)",
            f"{r['rss_mb_after_warm_up']:.0f} -> {r['rss_mb_end']:.0f} MB ({r['rss_mb_max']:.0f}); "
            f"growth {100 * r['rss_growth']:+.1f} % (target < 5 %)",
        ],
    ]
    return (
        f"ringserver 4.5.3 on loopback fed through its scan directory; `SeedLinkDenoiser` with model `{model}`, "
        "one thread, in the benchmark's process (the feeder runs in another). The feeder writes the next chunk once "
        "every channel has received some of the last one, so the replay speed is the client's.\n\n"
        + markdown_table(["", ""], rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=102, help="channels, three per station (default: 102)")
    parser.add_argument("--hours", type=float, default=24.0, help="hours of feed (default: 24)")
    parser.add_argument("--chunk-minutes", type=float, default=10.0, help="minutes per file written (default: 10)")
    parser.add_argument("--model", default="seismic", help="model (default: seismic, as `pydenoise seedlink`)")
    parser.add_argument(
        "--wall-limit", type=float, default=math.inf, help="seconds after which no more feed is written (default: none)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; no record")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    result = soak(args.channels, args.hours, args.chunk_minutes, args.model, args.wall_limit, report=print)
    text = markdown(result, args.model)
    print(text)
    if not args.no_write:
        write_record(
            "soak_seedlink",
            "SeedLink soak through ringserver (benchmarks/soak_seedlink.py)",
            text,
            data=result,
            argv=argv,
        )
    return 0 if result["complete"] and result["samples_lost"] == result["samples_repeated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
