"""Live audio under load (issue #27, item 4): ``pydenoise live`` on a JACK dummy server, with and without a CPU hog.

For each period (frames per callback at 48 kHz) the benchmark starts a JACK dummy server, runs
``pydenoise live --input JACK --output JACK --duration S --json`` pinned to core 0, alone and then with a busy
loop pinned to the last core, and reports the xruns (input overflows + output underflows), the late frames,
the callback's CPU load and its CPU time per call (median, p99, max: thread time, which preemption does not
inflate) and the longest interval between callbacks.

Usage::

    python benchmarks/bench_live_jack.py                         # 64, 128, 256 frames, 10 s each; writes a record
    python benchmarks/bench_live_jack.py --periods 64 --seconds 3 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import jackd  # noqa: E402
from results import machine_header, markdown_table, write_record  # noqa: E402

RATE = 48000
HOG = "while True: pass"


def _pinned(core: int):
    def start():
        jackd.ctrl_c_as_in_a_terminal()
        os.sched_setaffinity(0, {core})

    return start


def run_live(env: dict, seconds: float) -> dict:
    """One ``pydenoise live`` run on the server ``env`` points at; its JSON summary."""
    command = [sys.executable, "-m", "pydenoise.cli", "live", "--input", "JACK", "--output", "JACK"]
    child = subprocess.run(
        [*command, "--duration", str(seconds), "--json"],
        env=env,
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        preexec_fn=_pinned(0),
    )
    if child.returncode != 0:
        raise RuntimeError(f"pydenoise live failed ({child.returncode}): {child.stderr[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def measure(period: int, hog: bool, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as folder, jackd.dummy_server(RATE, period, Path(folder) / "jackd.log") as env:
        busy = subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=_pinned(os.cpu_count() - 1)) if hog else None
        try:
            summary = run_live(env, seconds)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    return {"period": period, "hog": hog, "seconds": seconds, **summary}


def markdown(rows: list[dict]) -> str:
    table = [
        [
            f"{row['period']} ({row['period'] / RATE * 1e3:.2f} ms)",
            "busy loop on the last core" if row["hog"] else "none",
            row["callbacks"],
            row["input_overflows"] + row["output_underflows"],
            row["late_frames"],
            f"{100 * row['cpu_load']:.0f} %",
            f"{row['callback_cpu_ms_p50']:.3f} / {row['callback_cpu_ms_p99']:.3f} / {row['max_callback_cpu_ms']:.3f}",
            f"{row['max_interval_ms']:.2f}",
        ]
        for row in rows
    ]
    header = ["period (frames)", "CPU hog", "callbacks", "xruns", "late frames", "CPU load"]
    header += ["callback CPU ms p50 / p99 / max", "longest interval ms"]
    return (
        machine_header()
        + "\n\n`pydenoise live` (model `speech_mask48k`, native at 48 kHz) on a JACK dummy server, pinned to core 0; "
        "CPU times are the callback thread's. Target: 0 xruns at 64 frames with the hog.\n\n"
        + markdown_table(header, table)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--periods", type=int, nargs="+", default=[64, 128, 256], help="frames per callback")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per run (default: 10)")
    parser.add_argument("--no-write", action="store_true", help="print only; no record")
    args = parser.parse_args(argv)
    reason = jackd.skip_reason()
    if reason:
        print(f"bench_live_jack: {reason}", file=sys.stderr)
        return 1
    rows = [measure(period, hog, args.seconds) for period in args.periods for hog in (False, True)]
    text = markdown(rows)
    print(text)
    if not args.no_write:
        title = "Live audio on a JACK dummy server, with a CPU hog (benchmarks/bench_live_jack.py)"
        write_record("bench_live_jack", title, text, data=rows, argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
