"""``pydenoise archive``: denoise a date range of an SDS archive into another, on Dask."""

from __future__ import annotations

import datetime as dt
import sys

EXAMPLE = """examples:
  pydenoise archive /data/sds /data/sds_clean --start 2024-01-01 --end 2024-02-01 --select 'XX.*.*.HH?'
  pydenoise archive SRC DST --start 2024-01-01 --end 2024-01-08 --dry-run
  dask scheduler &  dask worker tcp://HOST:8786 --nworkers 2 --nthreads 1 &
  pydenoise archive SRC DST --start 2024-01-01 --end 2025-01-01 --scheduler tcp://HOST:8786
on SLURM, start the workers with dask-jobqueue and pass the scheduler's address (docs/seismic.md)."""


def add_archive(subparsers) -> None:
    parser = subparsers.add_parser(
        "archive",
        help="denoise an SDS archive's date range into another SDS archive (Dask: local cluster or a scheduler)",
        description="Denoise every channel-day of SDS archive SRC in [--start, --end) into SDS archive DST, one "
        "channel-day per Dask task, each read with context from its neighbouring days, so the output over every "
        "gap-free segment equals denoising that whole segment at once. Outputs are written atomically with a "
        "manifest; a re-run skips channel-days whose inputs and model are unchanged. Exit status 1 when any "
        "channel-day failed (all are listed).",
        epilog=EXAMPLE,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SRC", help="SDS archive to read")
    parser.add_argument("destination", metavar="DST", help="SDS archive to write (created if missing)")
    parser.add_argument("--start", required=True, type=_date, help="first day, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=_date, help="day after the last, YYYY-MM-DD (exclusive)")
    parser.add_argument("--model", default="seismic", help="model name or .safetensors path (default seismic)")
    parser.add_argument("--select", default="*", help="glob on NET.STA.LOC.CHA (default: every channel)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (default: a local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster workers (default: one per core)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (channel-days, samples, time) only")
    parser.set_defaults(func=_run_archive)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise __import__("argparse").ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _run_archive(args) -> int:
    from pydenoise.seismic import archive

    if args.workers is not None and args.workers < 1:
        print(f"pydenoise archive: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.end <= args.start:
        print(f"pydenoise archive: --end {args.end} must come after --start {args.start}", file=sys.stderr)
        return 2
    client = archive.start_client(args.scheduler, args.workers)
    try:
        print(f"dask dashboard: {client.dashboard_link}", flush=True)
        if args.dry_run:
            return _print_plan(args, client)
        report = archive.denoise_archive(
            args.source, args.destination, args.start, args.end, args.model, args.select, client,
            progress=_progress_bar(args),
        )  # fmt: skip
    except ValueError as error:
        print(f"pydenoise archive: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    rate = report.samples / report.seconds if report.seconds else 0.0
    print(
        f"{report.count('done')} channel-days denoised, {report.count('skipped')} already done, "
        f"{len(report.failures)} failed; {report.samples:,} samples in {report.seconds:.1f} s ({rate:,.0f} samples/s)"
    )
    for what, why in report.failures:
        print(f"FAILED {what}: {why}", file=sys.stderr)
    return 1 if report.failures else 0


def _progress_bar(args):
    from tqdm import tqdm

    bar = None

    def update(result) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(desc="channel-days", unit="day", file=sys.stderr, mininterval=0.5)
        bar.update(1)
        bar.set_postfix_str(result.status, refresh=False)

    return update


def _print_plan(args, client) -> int:
    from pydenoise.seismic import archive

    plan = archive.plan_archive(args.source, args.start, args.end, args.select, client)
    rate = archive.measured_rate(args.model) * len(client.scheduler_info()["workers"])
    samples = plan.samples()
    print(f"{len(plan.channel_days)} channel-days of {len(plan.segments)} channels, {samples:,} samples")
    for seed_id, segments in sorted(plan.segments.items()):
        print(f"  {seed_id}: {len(segments)} gap-free segment(s)")
    print(
        f"estimated time: {samples / rate:.0f} s at {rate:,.0f} samples/s "
        f"({args.model}: one process denoising a day here, times the workers, as if they scaled perfectly)"
    )
    for path, reason in plan.rejected:
        print(f"UNUSABLE {path}: {reason}", file=sys.stderr)
    return 1 if plan.rejected else 0
