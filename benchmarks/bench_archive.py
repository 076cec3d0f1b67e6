"""Archive scaling: samples/s of ``pydenoise archive`` (:func:`pydenoise.seismic.archive.denoise_archive`) on an
SDS archive of real-size 100 Hz day files (8.64 M samples, STEIM2 counts, real ambient noise), and miniSEED I/O.

For each model: (a) the plain loop in this process (``client=None``), (b) a LocalCluster of 1 worker, (c) of
2 workers, (d) 2 workers as an explicit ``dask scheduler`` and ``dask worker`` (subprocesses), one thread per
worker; the efficiency vs ideal (2 workers ÷ twice 1 worker); where a channel-day's seconds go (the stages of
:data:`~pydenoise.seismic.archive.STAGES`); the dry run's estimate against the measured rate; and a projection
for 1e12 samples on N nodes. Every worker is warmed up (model loaded, one short call) before its timing, so the
rates are those of a long run. The I/O part times ObsPy (what the archive uses) against pymseed, the libmseed
binding (``pip install pymseed``; left out, and said so, when it is missing), on one day file.

    make bench-archive                            # installs pymseed, runs this, then make results
    python benchmarks/bench_archive.py            # the record benchmarks/records/bench_archive.json
    python benchmarks/bench_archive.py --quick    # 10-minute day files, one model, one channel: no record
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import obspy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_results import archive_markdown  # noqa: E402
from results import machine_header, time_call, write_record  # noqa: E402

NAME = "bench_archive"
TITLE = "Archive scaling on Dask (benchmarks/bench_archive.py)"
RATE = 100.0
DAY_S = 86400
FIRST_DAY = dt.date(2024, 1, 1)  # context only: the runs cover the days after it
COMPONENTS = ("HHZ", "HHN", "HHE", "HH1")
#: The projection's nodes: (count, cores per node); a worker per core, as pydenoise archive starts them.
PROJECTION_NODES = ((1, 2), (10, 2), (100, 2), (10, 32), (100, 32))
PROJECTION_SAMPLES = 1e12


def day_counts(seed: int, samples: int) -> np.ndarray:
    """Integer counts of real ambient noise (ObsPy's ``ref_unknown`` hour, each hour a random circular shift)."""
    from pydenoise.seismic.noise import obspy_noise

    hour = obspy_noise("ref_unknown", RATE)
    rng = np.random.default_rng(seed)
    pieces = [np.roll(hour, rng.integers(hour.size)) for _ in range(-(-samples // hour.size))]
    data = np.concatenate(pieces)[:samples]
    return np.round(2000.0 + 800.0 * data / data.std()).astype(np.int32)


def build_archive(root: Path, channels: int, days: int, day_seconds: float) -> Path:
    """An SDS archive of ``channels`` stations' channels over the run's ``days`` plus a day on either side (the
    context), each file ``day_seconds`` long from midnight; reused when its spec matches."""
    from pydenoise.seismic.sds import day_path

    spec = {"channels": channels, "days": days, "day_seconds": day_seconds, "rate": RATE, "version": 1}
    if (root / "spec.json").is_file() and json.loads((root / "spec.json").read_text()) == spec:
        return root / "sds"
    shutil.rmtree(root, ignore_errors=True)
    for channel in range(channels):
        for offset in range(days + 2):
            day = FIRST_DAY + dt.timedelta(days=offset)
            header = {"network": "XX", "station": f"S{channel // len(COMPONENTS):02d}", "location": "00"}
            header |= {"channel": COMPONENTS[channel % len(COMPONENTS)], "sampling_rate": RATE}
            header["starttime"] = obspy.UTCDateTime(day.year, day.month, day.day)
            trace = obspy.Trace(day_counts(100 * channel + offset, int(day_seconds * RATE)), header=header)
            path = day_path(root / "sds", trace.id, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            trace.write(str(path), format="MSEED", encoding="STEIM2", reclen=4096)
    (root / "spec.json").write_text(json.dumps(spec))
    return root / "sds"


# --- miniSEED I/O: ObsPy (the archive's reader and writer) against pymseed ---------------------------------


def io_comparison(folder: Path, seconds: float, min_time: float) -> dict:
    """Seconds per file of each operation on one ``seconds``-long file, with ObsPy and with pymseed (each timed for
    ``min_time`` seconds at least, in 3 blocks)."""
    from pydenoise.seismic.io import write
    from pydenoise.seismic.sds import read_strictly, scan_segments

    counts = day_counts(7, int(seconds * RATE))
    header = {"network": "XX", "station": "IO", "location": "00", "channel": "HHZ", "sampling_rate": RATE}
    header["starttime"] = obspy.UTCDateTime(2024, 1, 1)
    files = {}
    for encoding, dtype in (("STEIM2", np.int32), ("INT32", np.int32), ("FLOAT32", np.float32)):
        files[encoding] = folder / f"day.{encoding}.mseed"
        obspy.Trace(counts.astype(dtype), header=header).write(str(files[encoding]), "MSEED", encoding=encoding)
    files["FLOAT64"] = folder / "day.FLOAT64.mseed"
    stream = obspy.Stream([obspy.Trace(counts.astype(np.float64), header=header)])
    write(stream, files["FLOAT64"], "MSEED")  # the archive's output: pydenoise.seismic.io.write
    rows = []
    for encoding, path in files.items():
        rows.append(["read " + encoding, lambda p=path: read_strictly(p), _pymseed_read(path, unpack=True)])
        if encoding == "STEIM2":
            rows.append(["header scan", lambda p=path: scan_segments(p), _pymseed_read(path, unpack=False)])
    for encoding, dtype in (("FLOAT64", np.float64), ("FLOAT32", np.float32), ("INT32", np.int32)):
        trace = obspy.Trace(counts.astype(dtype), header=header)
        target = folder / "written.mseed"
        if encoding == "FLOAT64":
            ours = lambda: write(stream, target, "MSEED")  # noqa: E731 - the archive's own call
        else:
            ours = lambda t=trace, e=encoding: t.write(str(target), "MSEED", encoding=e)  # noqa: E731
        rows.append(["write " + encoding, ours, _pymseed_write(trace, encoding, folder / "pymseed.mseed")])
    measured = []
    for operation, obspy_call, pymseed_call in rows:
        obspy_s = time_call(obspy_call, min_time=min_time, repeats=3)
        pymseed_s = time_call(pymseed_call, min_time=min_time, repeats=3) if pymseed_call else None
        measured.append({"operation": operation, "obspy_s": obspy_s, "pymseed_s": pymseed_s})
        print(f"  {operation:14s} obspy {obspy_s * 1e3:7.1f} ms  pymseed {_ms(pymseed_s)}", flush=True)
    return {
        "samples": int(counts.size),
        "operations": measured,
        "pymseed": _pymseed_version(),
        "same_data": _same_data(files),
    }


def _ms(seconds) -> str:
    return "absent" if seconds is None else f"{seconds * 1e3:7.1f} ms"


def _pymseed_version() -> str | None:
    try:
        import pymseed

        return pymseed.__version__
    except ImportError:
        return None


def _pymseed_read(path: Path, unpack: bool):
    if _pymseed_version() is None:
        return None
    from pymseed import MS3TraceList

    def read():
        traces = MS3TraceList.from_file(str(path), unpack_data=unpack)
        return [segment.np_datasamples.copy() for trace in traces for segment in trace] if unpack else traces

    return read


def _pymseed_write(trace: obspy.Trace, encoding: str, path: Path):
    if _pymseed_version() is None:
        return None
    from pymseed import DataEncoding, MS3TraceList

    sample_type = {"float64": "d", "float32": "f", "int32": "i"}[trace.data.dtype.name]

    def write():
        traces = MS3TraceList()
        traces.add_data("FDSN:XX_IO_00_H_H_Z", trace.data, sample_type, RATE, starttime=trace.stats.starttime.ns)
        traces.to_file(
            str(path), overwrite=True, max_record_length=4096, encoding=DataEncoding[encoding], format_version=2
        )

    return write


def _same_data(files: dict) -> bool | None:
    """Whether pymseed decodes every file to ObsPy's samples (None without pymseed)."""
    if _pymseed_version() is None:
        return None
    return all(
        np.array_equal(obspy.read(str(path))[0].data, _pymseed_read(path, unpack=True)()[0]) for path in files.values()
    )


# --- scaling ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One model's runs: on the channels ``select`` picks, over ``days`` days, each configuration ``repeats`` times."""

    model: str
    source: Path
    destination: Path
    days: int
    select: str
    repeats: int


def run_best(configuration: str, job: Job, client) -> dict:
    """The fastest of ``job.repeats`` runs (other processes on a shared machine only ever slow a run down), with
    every run's rate."""
    runs = [run_once(configuration, job, client) for _ in range(job.repeats)]
    best = max(runs, key=lambda run: run["rate"])
    return best | {"rates": [run["rate"] for run in runs]}


def run_once(configuration: str, job: Job, client) -> dict:
    from pydenoise.seismic.archive import STAGES, denoise_archive, measured_rate

    shutil.rmtree(job.destination, ignore_errors=True)
    if client is None:  # warm up: the model loaded and run (library code: the workers can unpickle it)
        measured_rate(job.model, seconds=60.0)
        workers = 1
    else:
        client.run(measured_rate, job.model, 60.0)
        workers = len(client.scheduler_info()["workers"])
    start, end = FIRST_DAY + dt.timedelta(days=1), FIRST_DAY + dt.timedelta(days=1 + job.days)
    load = os.getloadavg()[0]
    report = denoise_archive(job.source, job.destination, start, end, job.model, job.select, client)
    if report.failures or not report.count("done"):
        raise RuntimeError(f"{configuration}: the run failed: {report.failures}")
    done = [r for r in report.results if r.status == "done"]
    stages = {stage: sum(r.stages[stage] for r in done) for stage in STAGES}
    stages["other"] = sum(r.seconds for r in done) - sum(stages.values())
    row = {
        "configuration": configuration,
        "workers": workers,
        "channel_days": len(done),
        "samples": report.samples,
        "seconds": report.seconds,
        "rate": report.samples / report.seconds,
        "task_seconds": sum(r.seconds for r in done),
        "stages": stages,
        "load_before": load,
    }
    print(
        f"  {configuration:34s} {workers} worker(s) {row['rate'] / 1e6:6.3f} M samples/s "
        f"({report.samples:,} samples, {report.seconds:.1f} s; load before {load:.2f})",
        flush=True,
    )
    return row


def explicit_cluster(workers: int, folder: Path):
    """``dask scheduler`` and ``dask worker --nworkers N --nthreads 1`` subprocesses; (client, processes)."""
    from pydenoise.seismic.archive import start_client

    dask = [str(Path(sys.executable).with_name("dask"))]
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    logs = open(folder / "dask.log", "w")  # noqa: SIM115 - closed with the processes
    processes = [
        subprocess.Popen(
            [*dask, "scheduler", "--port", "0", "--dashboard-address", ":0", "--scheduler-file", str(scheduler_file)],
            env=env,
            stdout=logs,
            stderr=logs,
        ),
    ]
    deadline = time.monotonic() + 60
    while not scheduler_file.is_file():
        if time.monotonic() > deadline or processes[0].poll() is not None:
            raise RuntimeError(f"dask scheduler did not start: see {folder / 'dask.log'}")
        time.sleep(0.2)
    processes.append(
        subprocess.Popen(
            [
                *dask,
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                str(workers),
                "--nthreads",
                "1",
                "--dashboard-address",
                ":0",
            ],
            env=env,
            stdout=logs,
            stderr=logs,
        )
    )
    client = start_client(json.loads(scheduler_file.read_text())["address"])
    client.wait_for_workers(workers, timeout=120)
    return client, processes, logs


def stop(processes, logs) -> None:
    for process in reversed(processes):
        process.terminate()
        process.wait(timeout=60)
    logs.close()


def scaling(model: str, channels: int, repeats: int, source: Path, build: Path, days: int) -> dict:
    """The four configurations for ``model`` on the first ``channels`` channels of the archive."""
    from pydenoise.seismic.archive import measured_rate, start_client

    select = f"XX.*.00.HH[{''.join(c[-1] for c in COMPONENTS[:channels])}]"
    job = Job(model, source, build / f"out_{model}", days, select, repeats)
    rows = [run_best("(a) plain loop, client=None", job, None)]
    for workers in (1, 2):
        client = start_client(workers=workers)
        try:
            rows.append(run_best(f"({'bc'[workers - 1]}) LocalCluster", job, client))
        finally:
            client.close()
    client, processes, logs = explicit_cluster(2, build)
    try:
        rows.append(run_best("(d) dask scheduler + dask worker", job, client))
    finally:
        client.close()
        stop(processes, logs)
    estimate = measured_rate(model)  # what --dry-run multiplies by the workers: a day's samples
    hour = measured_rate(model, seconds=3600.0)
    shutil.rmtree(job.destination, ignore_errors=True)
    return {
        "model": model,
        "select": select,
        "repeats": repeats,
        "runs": rows,
        "dry_run_rate_per_worker": estimate,
        "model_rate_hour": hour,
    }


def input_bytes_per_sample(source: Path, samples_per_file: int) -> float:
    files = [path for path in source.rglob("*") if path.is_file()]
    return sum(path.stat().st_size for path in files) / (len(files) * samples_per_file)


def measure(args) -> dict:
    build = Path(args.build)
    build.mkdir(parents=True, exist_ok=True)
    day_seconds = 600.0 if args.quick else DAY_S
    channels = max(count for _, count, _ in args.models)
    print(machine_header(), flush=True)
    print(f"building the archive ({channels} channels x {args.days + 2} days of {day_seconds:g} s) in {build}")
    source = build_archive(build / "archive", channels, args.days, day_seconds)
    print("miniSEED I/O, one file (ObsPy: the archive's calls; pymseed: the libmseed binding)", flush=True)
    with tempfile.TemporaryDirectory(dir=build) as folder:
        io = io_comparison(Path(folder), day_seconds, min_time=0.05 if args.quick else 0.3)
    models = []
    for model, count, repeats in args.models:
        print(f"model {model}: {count} channel(s) x {args.days} day(s), best of {repeats}", flush=True)
        models.append(scaling(model, count, repeats, source, build, args.days))
    return {
        "day_seconds": day_seconds,
        "rate": RATE,
        "days": args.days,
        "io": io,
        "models": models,
        "input_bytes_per_sample": input_bytes_per_sample(source, int(day_seconds * RATE)),
        "output_bytes_per_sample": 8,
        "projection_samples": PROJECTION_SAMPLES,
        "projection_nodes": PROJECTION_NODES,
        "quick": args.quick,
    }


def model_spec(text: str) -> tuple[str, int, int]:
    """``NAME[:CHANNELS[:REPEATS]]`` → (name, channels, repeats)."""
    name, *numbers = text.split(":")
    if len(numbers) > 2 or not all(number.isdigit() for number in numbers):
        raise argparse.ArgumentTypeError(f"not NAME[:CHANNELS[:REPEATS]]: {text!r}")
    channels, repeats = (*map(int, numbers), 1, 1)[:2]
    if not 1 <= channels <= len(COMPONENTS):
        raise argparse.ArgumentTypeError(f"channels per model must be 1 to {len(COMPONENTS)}, got {channels}")
    if repeats < 1:
        raise argparse.ArgumentTypeError(f"repeats must be >= 1, got {repeats}")
    return name, channels, repeats


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        dest="models",
        action="append",
        type=model_spec,
        metavar="NAME[:CHANNELS[:REPEATS]]",
        help="a model, the channels it runs on and the runs of each configuration, the fastest kept "
        "(default: seismic:2:2 and seismic_mask:2:2)",
    )
    parser.add_argument("--days", type=int, default=2, help="days of the run (default 2; one more on either side)")
    parser.add_argument("--build", default="build/bench_archive", help="folder of the archive and the outputs")
    parser.add_argument("--quick", action="store_true", help="10-minute day files, seismic on one channel; no record")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error(f"--days must be >= 1, got {args.days}")
    args.models = args.models or ([("seismic", 1, 1)] if args.quick else [("seismic", 2, 2), ("seismic_mask", 2, 2)])
    data = measure(args)
    markdown = archive_markdown(data)
    print(markdown)
    if args.quick:
        print("quick run: no record written")
    else:
        write_record(NAME, TITLE, markdown, data=data, argv=argv, packages=("obspy", "dask", "distributed", "pymseed"))
    return data


if __name__ == "__main__":
    main()
