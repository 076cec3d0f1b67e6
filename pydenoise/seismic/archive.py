"""Denoising SDS archives on Dask, one channel-day per task, split-invariant, resumable.

:func:`denoise_archive` (and ``pydenoise archive``) denoises ``[start, end)`` of an SDS archive into another:

1. **Plan** (on the client, file headers scanned by the workers): the channel-days, and each channel's gap-free
   segments, scanned back past the range until a gap, because every grid of the trace flow (frames, the local
   level's blocks, the long-period path) starts at its segment's first sample.
2. **Tasks**: a channel-day is read with its neighbouring days as context (:func:`context_seconds`: longer
   than every history the model keeps, so its states are those of the whole segment), each segment piece is
   started at a multiple of the grid period from its segment's start, denoised, and the day's own samples are
   written. The output over every gap-free segment then equals ``denoise_array`` of the whole segment,
   whatever the split, the worker count or the order.
3. **Safety**: each output is written to a temporary file and renamed, then a manifest entry (the inputs'
   SHA-256, the segment starts used, the model's fingerprint) beside it; a re-run skips a channel-day whose
   entry matches and redoes it if an input or the model changed. A failing channel-day (corrupt file, a rate
   change within the day, a trace id that is not the file's) is reported and the rest goes on. Tasks are
   retried on another worker when theirs dies, and the atomic writes make that safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import obspy

from pydenoise.core.denoiser import Denoiser, resolve_model
from pydenoise.core.postfilter import DEFAULT_SMOOTHING
from pydenoise.core.spectral import SpectralMaskDenoiser
from pydenoise.core.spectral_features import PRIOR_SMOOTHING
from pydenoise.core.version import __version__
from pydenoise.seismic.api import denoise_array
from pydenoise.seismic.io import write
from pydenoise.seismic.sds import (
    NS_PER_S,
    ChannelDay,
    channel_days,
    day_start_ns,
    read_strictly,
    scan_segments,
    stitch_segments,
)

__all__ = [
    "ArchivePlan",
    "ArchiveReport",
    "plan_archive",
    "denoise_archive",
    "context_seconds",
    "model_fingerprint",
    "STAGES",
]

MANIFEST_DIR = ".pydenoise-manifest"
#: Recursive states (post-filter smoothing) are taken as forgotten below this weight.
FORGOTTEN = 1e-9
#: The stages of a channel-day whose seconds :attr:`DayResult.stages` holds: the inputs' SHA-256 (manifest),
#: reading the day and its neighbours, merging and trimming them to the context, the model, writing the output.
STAGES = ("checksums", "read", "context", "denoise", "write")


def context_seconds(model: Denoiser, with_level: bool = True) -> tuple[float, float]:
    """Seconds of input before and after a sample that determine its output (``(left, right)``), with margin.

    Left: the local level's blocks, the noise floor's and post-filter's histories, the post-filter's smoothing
    until it is forgotten, and the same for the long-period path; right: the stream's latency plus a window.
    """
    if isinstance(model, SpectralMaskDenoiser):
        return _mask_context_seconds(model)
    rate, window_s = model.sample_rate, model.window / model.sample_rate
    left = 2 * window_s + (model.level_blocks + 2) * window_s * with_level + (model.noise_floor_s or 0.0)
    if model.postfilter is not None:
        smoothing = model.postfilter.get("smoothing", DEFAULT_SMOOTHING)
        left += model.postfilter["history_s"] + math.log(FORGOTTEN) / math.log(smoothing) * model.hop / rate
    right = 2 * window_s
    if model.long_period is not None:
        path = resolve_model(model.long_period["model"])
        path_left, path_right = context_seconds(path, with_level=False)  # the path runs with offset 0
        crossover = 2 / model.long_period["crossover_hz"]
        left += path_left + crossover
        right += path_right + crossover + model.stream().latency / rate
    return left + 10.0, right + 10.0


def _mask_context_seconds(model: SpectralMaskDenoiser) -> tuple[float, float]:
    """A spectral-mask model's: the level's blocks, the floor's history, and its recursions (power smoothing,
    decision-directed prior) until forgotten, before; its latency and a frame after."""
    settings, rate = model.settings, model.sample_rate
    frame_s, hop_s = settings.frame / rate, settings.hop / rate
    forgotten = math.log(FORGOTTEN) / math.log(max(settings.smoothing, PRIOR_SMOOTHING))  # frames
    left = (settings.level_blocks + 2) * frame_s + (settings.history + forgotten) * hop_s + 2 * frame_s
    right = model.latency / rate + 2 * frame_s
    return left + 10.0, right + 10.0


def grid_period(model: Denoiser) -> int:
    """Model-rate samples after which every grid of the trace flow repeats: blocks, hops, the path's hops."""
    if isinstance(model, SpectralMaskDenoiser):
        return math.lcm(model.frame, model.hop)  # level blocks of a frame, frames a hop apart
    period = math.lcm(model.window, model.hop)
    if model.long_period is not None:
        path = resolve_model(model.long_period["model"])
        factor = round(model.sample_rate / path.sample_rate)
        period = math.lcm(period, factor * path.hop, factor)
    return period


def model_fingerprint(model: Denoiser) -> str:
    """SHA-256 of the module's tensors, the config and pydenoise's version (and the long-period model's)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps(model.config, sort_keys=True, default=str).encode())
    digest.update(__version__.encode())
    if getattr(model, "long_period", None) is not None:
        digest.update(model_fingerprint(resolve_model(model.long_period["model"])).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class DayTask:
    """What a worker needs for one channel-day (plain data: it travels to the workers)."""

    channel_day: ChannelDay
    source: str
    destination: str
    model: object  # a name, a path or a Denoiser
    fingerprint: str
    segment_starts: tuple[int, ...]  # ns: the starts of the channel's segments around the day


@dataclass
class DayResult:
    channel_day: ChannelDay
    status: str  # "done", "skipped" or "failed"
    samples: int = 0
    message: str = ""
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds per :data:`STAGES` entry


@dataclass
class ArchivePlan:
    channel_days: list[ChannelDay]
    segments: dict[str, list[tuple[int, int, float]]]  # per seed id
    rejected: list[tuple]  # (path, reason) of unusable files
    start: dt.date
    end: dt.date

    def samples(self) -> int:
        """Samples of the planned channel-days (from the scanned headers)."""
        total = 0
        for channel_day in self.channel_days:
            day_start, day_end = channel_day.start_ns, day_start_ns(channel_day.day + dt.timedelta(days=1))
            for start, count, rate in self.segments.get(channel_day.seed_id, []):
                end = start + round(count * NS_PER_S / rate)
                total += max(0, round((min(end, day_end) - max(start, day_start)) * rate / NS_PER_S))
        return total


@dataclass
class ArchiveReport:
    results: list[DayResult] = field(default_factory=list)
    rejected: list[tuple] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """``(what, why)`` of every failed channel-day and unusable file."""
        failed = [(f"{r.channel_day.seed_id} {r.channel_day.day}", r.message) for r in self.results]
        failed = [item for item, r in zip(failed, self.results) if r.status == "failed"]
        return failed + [(str(path), reason) for path, reason in self.rejected]

    @property
    def samples(self) -> int:
        return sum(r.samples for r in self.results if r.status == "done")


def _scan(path: str):
    """Header pieces of one file; an unreadable file yields none (its own task reports it)."""
    try:
        return scan_segments(path)
    except Exception:  # noqa: BLE001 - any reader error: the file counts as absent for the segments
        return []


def plan_archive(source, start: dt.date, end: dt.date, select: str = "*", client=None) -> ArchivePlan:
    """Find the channel-days and scan each channel's segments (back past ``start`` until a gap)."""
    days, rejected = channel_days(source, start, end, select)
    ids = sorted({d.seed_id for d in days})
    quality = {d.seed_id: d.quality for d in days}
    wanted = {(d.seed_id, d.day) for d in days}
    for seed_id in ids:  # the day after the range is context for its last day
        wanted |= {(seed_id, d.day + dt.timedelta(days=1)) for d in days if d.seed_id == seed_id}
    pieces = {seed_id: [] for seed_id in ids}
    frontier = {seed_id: min(d.day for d in days if d.seed_id == seed_id) for seed_id in ids}
    scanned = set()
    todo = sorted(wanted)
    while todo:
        paths = [ChannelDay(seed_id, day, quality[seed_id]).path(source) for seed_id, day in todo]
        existing = [(key, str(p)) for key, p in zip(todo, paths) if p.is_file()]
        found = _map(client, _scan, [p for _, p in existing])
        scanned |= set(todo)
        for (key, _), result in zip(existing, found):
            pieces[key[0]].extend(result)
        todo = []
        for seed_id in ids:  # scan one more day back where the earliest segment starts at its day's midnight
            day = frontier[seed_id]
            segments = stitch_segments(pieces[seed_id])
            if segments and abs(segments[0][0] - day_start_ns(day)) < NS_PER_S / (2 * segments[0][2]):
                previous = day - dt.timedelta(days=1)
                if (seed_id, previous) not in scanned and ChannelDay(seed_id, previous, quality[seed_id]).path(
                    source
                ).is_file():
                    frontier[seed_id] = previous
                    todo.append((seed_id, previous))
    segments = {seed_id: stitch_segments(pieces[seed_id]) for seed_id in ids}
    return ArchivePlan(days, segments, rejected, start, end)


def _map(client, function, items: list) -> list:
    if client is None or not items:
        return [function(item) for item in items]
    return client.gather(client.map(function, items, pure=False))


def process_day(task: DayTask) -> DayResult:
    """Denoise one channel-day (a Dask task): skipped when its manifest entry matches, failed with the reason."""
    began = time.perf_counter()
    channel_day = task.channel_day
    stages = dict.fromkeys(STAGES, 0.0)
    try:
        with _timed(stages, "checksums"):
            key = _manifest_key(task)
        out_path = channel_day.path(task.destination)
        entry = _manifest_path(task.destination, channel_day)
        if out_path.is_file() and entry.is_file() and json.loads(entry.read_text()) == key:
            return DayResult(channel_day, "skipped", seconds=time.perf_counter() - began, stages=stages)
        stream = _denoised_day(task, stages)
        samples = sum(int(np.ma.count(t.data)) for t in stream)
        with _timed(stages, "write"):
            _write_atomically(out_path, lambda tmp: write(stream, tmp, "MSEED"))
            _write_atomically(entry, lambda tmp: Path(tmp).write_text(json.dumps(key, sort_keys=True)))
        return DayResult(channel_day, "done", samples, seconds=time.perf_counter() - began, stages=stages)
    except Exception as error:  # noqa: BLE001 - one channel-day's failure is reported, the run goes on
        return DayResult(channel_day, "failed", message=f"{type(error).__name__}: {error}")


@contextmanager
def _timed(stages: dict[str, float], stage: str):
    """Add the seconds of the ``with`` block to ``stages[stage]``."""
    began = time.perf_counter()
    try:
        yield
    finally:
        stages[stage] += time.perf_counter() - began


def _manifest_path(destination, channel_day: ChannelDay) -> Path:
    out = channel_day.path(destination)
    return out.parent / MANIFEST_DIR / (out.name + ".json")


def _manifest_key(task: DayTask) -> dict:
    inputs = {}
    for days in (-1, 0, 1):
        path = task.channel_day.neighbour(days).path(task.source)
        if path.is_file():
            inputs[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"inputs": inputs, "segment_starts": list(task.segment_starts), "model": task.fingerprint}


def _write_atomically(path: Path, writer) -> None:
    """``writer(temporary)`` then a rename onto ``path``; temporaries of a killed earlier try are removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        writer(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _read_context(task: DayTask) -> tuple[obspy.Stream, float]:
    """The day's traces and its neighbours' (same id and rate), and the day's rate; errors name the file."""
    channel_day = task.channel_day
    own = read_strictly(channel_day.path(task.source))
    ids = sorted({t.id for t in own})
    if ids != [channel_day.seed_id]:
        raise ValueError(f"{channel_day.path(task.source).name} holds traces {ids}, not {channel_day.seed_id}")
    rates = sorted({float(t.stats.sampling_rate) for t in own})
    if len(rates) > 1:
        raise ValueError(f"sampling rate changes within the day ({', '.join(f'{r:g}' for r in rates)} Hz)")
    stream = own.copy()
    for days in (-1, 1):
        path = channel_day.neighbour(days).path(task.source)
        if path.is_file():
            try:
                neighbour = read_strictly(path)
            except Exception:  # noqa: BLE001 - an unreadable neighbour is a gap here; its own task reports it
                continue
            stream += neighbour.select(id=channel_day.seed_id, sampling_rate=rates[0])
    return stream, rates[0]


def _denoised_day(task: DayTask, stages: dict[str, float]) -> obspy.Stream:
    """The day's denoised traces; the seconds of its stages are added to ``stages``."""
    with _timed(stages, "read"):
        stream, rate = _read_context(task)
    with _timed(stages, "context"):
        model = resolve_model(task.model)
        left, right = context_seconds(model)
        day_start = obspy.UTCDateTime(ns=task.channel_day.start_ns)
        day_end = day_start + 86400
        stream.merge(method=1)
        stream.trim(day_start - left, day_end + right)
        trace = stream[0]
        data = np.ma.masked_array(trace.data.astype(np.float64), mask=np.ma.getmaskarray(trace.data))
        out = np.ma.masked_all(data.shape, dtype=np.float64)
    first_ns, period = trace.stats.starttime.ns, _input_period(model, rate)
    day_first = round((task.channel_day.start_ns - first_ns) * rate / NS_PER_S)
    day_last = round((day_start_ns(task.channel_day.day + dt.timedelta(days=1)) - first_ns) * rate / NS_PER_S)
    for piece in np.ma.clump_unmasked(data):
        if piece.stop <= day_first or piece.start >= day_last:
            continue
        begin = piece.start + _skip_to_grid(first_ns + round(piece.start * NS_PER_S / rate), task, rate, period)
        if begin > max(piece.start, day_first):  # only context may be skipped, never a sample of the day
            raise RuntimeError(f"a segment piece at {obspy.UTCDateTime(ns=first_ns)} is too short to align")
        with _timed(stages, "denoise"):
            denoised, _ = denoise_array(np.ma.getdata(data)[begin : piece.stop], rate, model=model)
        out[begin : piece.stop] = denoised
    keep = slice(max(day_first, 0), min(day_last, data.size))
    result = obspy.Trace(out[keep], header=trace.stats.copy())
    result.stats.starttime = obspy.UTCDateTime(ns=first_ns + round(keep.start * NS_PER_S / rate))
    return result.split()


def _input_period(model: Denoiser, rate: float) -> int:
    """Input samples between starts that put a piece on the same grids as its segment (resampled too)."""
    from fractions import Fraction

    ratio = Fraction(model.sample_rate / rate).limit_denominator(1000)
    return grid_period(model) * ratio.denominator


def _skip_to_grid(piece_start_ns: int, task: DayTask, rate: float, period: int) -> int:
    """Samples to drop at a piece's start so that it lies a multiple of ``period`` after its segment's start."""
    tolerance = NS_PER_S / (2 * rate)
    starts = [s for s in task.segment_starts if s <= piece_start_ns + tolerance]
    if not starts:
        return 0
    offset = round((piece_start_ns - starts[-1]) * rate / NS_PER_S)
    return (-offset) % period


def build_tasks(plan: ArchivePlan, source, destination, model) -> list[DayTask]:
    denoiser = resolve_model(model)
    if denoiser.sample_rate is None:
        raise ValueError(f"model {model!r} has no sample rate: an archive needs one")
    left, _ = context_seconds(denoiser)
    if left > 86400:
        raise ValueError(f"model {model!r} needs {left:.0f} s of context, more than the one day read before a day")
    fingerprint = model_fingerprint(denoiser)
    tasks = []
    for channel_day in plan.channel_days:
        around = (channel_day.start_ns - 2 * 86400 * NS_PER_S, channel_day.start_ns + 2 * 86400 * NS_PER_S)
        starts = [s for s, n, r in plan.segments.get(channel_day.seed_id, []) if s <= around[1]]
        starts = tuple(s for s in starts if s >= around[0]) or tuple(starts[-1:])
        tasks.append(DayTask(channel_day, os.fspath(source), os.fspath(destination), model, fingerprint, starts))
    return tasks


def denoise_archive(
    source, destination, start: dt.date, end: dt.date, model="seismic", select: str = "*", client=None,
    progress=None,
) -> ArchiveReport:  # fmt: skip
    """Denoise the channel-days of SDS archive ``source`` in ``[start, end)`` into SDS archive ``destination``.

    ``client``: a ``dask.distributed.Client`` (None: everything in this process, one channel-day after another).
    ``progress``: called with each :class:`DayResult` as it completes. Returns an :class:`ArchiveReport`.
    """
    began = time.perf_counter()
    if Path(destination).resolve() == Path(source).resolve():
        raise ValueError(f"the destination {destination} is the source archive: it would overwrite its input")
    plan = plan_archive(source, start, end, select, client)
    report = ArchiveReport(rejected=plan.rejected)
    tasks = build_tasks(plan, source, destination, model)
    if client is None:
        for task in tasks:
            report.results.append(process_day(task))
            progress and progress(report.results[-1])
    else:
        from distributed import as_completed

        futures = client.map(process_day, tasks, pure=False, retries=3)
        task_of = {future.key: task for future, task in zip(futures, tasks)}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after the retries: reported
                result = DayResult(
                    task_of[future.key].channel_day, "failed", message=f"{type(error).__name__}: {error}"
                )
            report.results.append(result)
            progress and progress(result)
    report.results.sort(key=lambda r: r.channel_day)
    report.seconds = time.perf_counter() - began
    return report


def start_client(scheduler: str | None = None, workers: int | None = None):
    """A ``dask.distributed.Client``: connected to ``scheduler`` (an address such as ``tcp://host:8786``), or to a
    new local cluster of ``workers`` processes (default: one per core) with one thread each, which the client
    owns: ``close()`` stops its workers too."""
    from distributed import Client, WorkerPlugin

    class OneThreadPerTask(WorkerPlugin):
        """torch on one thread in each worker (a worker per core: threads would contend); a plugin, so that a
        worker restarted after a crash gets it too."""

        name = "pydenoise-one-thread"

        def setup(self, worker) -> None:
            import torch

            torch.set_num_threads(1)

    if scheduler is not None:
        client = Client(scheduler)
    else:
        count = workers or os.cpu_count() or 1
        # The cluster made by Client (not LocalCluster(...) passed in, which would outlive client.close()).
        client = Client(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0")
    client.register_plugin(OneThreadPerTask())
    return client


def measured_rate(model, seconds: float = 86400.0) -> float:
    """Samples/s of one process denoising ``seconds`` of noise with ``model`` (for a plan's time estimate).

    A day by default, after a warm-up call, as a worker denoises one channel-day after another: the model is
    about 98 % of a 100 Hz channel-day's time, and per sample an hour runs faster than a day, so a shorter piece
    would promise too much (benchmarks/bench_archive.py measures both).
    """
    import torch

    denoiser = resolve_model(model)
    rng = np.random.default_rng(0)
    samples = rng.standard_normal(int(seconds * denoiser.sample_rate))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker
    try:
        denoise_array(rng.standard_normal(int(60 * denoiser.sample_rate)), denoiser.sample_rate, model=denoiser)
        began = time.perf_counter()
        denoise_array(samples, denoiser.sample_rate, model=denoiser)
        return samples.size / (time.perf_counter() - began)
    finally:
        torch.set_num_threads(threads)
