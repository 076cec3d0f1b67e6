"""Fuzz every public entry point at a larger size than CI and count the inputs tried (issue #27, item 2).

The strategies and checks are those of ``tests/test_fuzz.py`` (``tests/fuzz_cases.py``): each input must end in
a valid result (type, shape, dtype, finite values; a stream equal to the offline call) or a clear
``ValueError``/``TypeError`` naming the problem. Per entry point: inputs tried, how many ended in a result and
how many in a clear error, and the failures (Hypothesis' shrunk example), if any.

Usage::

    python benchmarks/fuzz_entry_points.py                   # 1000 inputs per entry point; writes
                                                             # benchmarks/records/fuzz_entry_points.json
    python benchmarks/fuzz_entry_points.py --examples 20 --no-write    # a smoke run, prints only
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import fuzz_cases  # noqa: E402
from results import write_record  # noqa: E402

# The bugs this fuzz found, each fixed with a regression test in tests/test_fuzz.py (or the test named).
BUGS_FOUND = (
    "`image.median` with ksize=1 crashed the process (segfault in the kernel): it returns the image",
    "`Denoiser.denoise` took a 0-D array as a 1-sample trace: refused",
    "finite samples beyond ~1e152 (float64) or ~1e17 (float32) came out NaN/Inf (frame energies overflow), e.g. "
    "`audio.denoise` near 1e152: refused beyond 1e150 / 1e15 with the value and the limit",
    "the default `seismic` model (long-period path in float32) said 'NaN or Inf samples' for float64 input "
    "beyond ~1e18 that had none: refused beyond 1e15 naming the long-period path",
    "noise-floor models (`seismic`, `seismic_lp`, `speech`) zeroed their output for a whole floor history after "
    "a stretch of zeros (floor 0); a 2 Hz wave came out 44 dB down: all-zero frames are not counted",
    "`seismic_mask`: NaN output after leading zeros; int/complex/float16 input silently cast (int8 wrapped); "
    "a stream fed only empty chunks raised at flush",
    "`seismic.denoise` resampled a 1 mHz trace up 100000x (1 GB, minutes): factors above 1000 refused",
    "a noise floor from a frame of a few tiny samples (1e-116 among zeros) overflowed the normalised window in "
    "float32: NaN output; the floor now counts as at least 1e-12 of the window's RMS",
    "a (0, n) chunk (no channels) reached the FFTs with an empty batch (an MKL RuntimeError): refused",
    "`image.convolve` with a weight beyond float32's range (1e149) gave NaN: refused",
    "`image.median(ksize=1)` (the Python shortcut for the kernel's crash) returned NaN images unchecked: refused; "
    "the kernel's own ksize-1 overflow (a heap-buffer-overflow) was found by `make sanitize-test` and fixed",
)

UPSTREAM = (
    "ObsPy prints an ignored UnicodeDecodeError traceback from its libmseed log callback for corrupted miniSEED "
    "records with non-UTF-8 codes (the read itself goes on); the CLI check leaves that block out",
)


def fuzz(name: str, check, examples: int, run_seed: int) -> dict:
    """Run ``check`` on ``examples`` Hypothesis inputs; the outcome counts, seconds, and the failure if any."""
    outcomes = collections.Counter()

    @seed(run_seed)
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def run(data):  # (a case Hypothesis abandons mid-draw, its buffer overrun, ends in neither: not counted)
        outcomes[check(data.draw)] += 1

    start = time.perf_counter()
    failure = None
    try:
        run()
    except Exception as error:  # noqa: BLE001 - every failure is counted and reported, none stops the run
        failure = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    return {
        "entry_point": name,
        "tried": outcomes["ok"] + outcomes["error"],
        "results": outcomes["ok"],
        "clear_errors": outcomes["error"],
        "failure": failure,
        "seconds": round(time.perf_counter() - start, 1),
    }


def markdown(rows: list[dict], examples: int, run_seed: int) -> str:
    total = sum(row["tried"] for row in rows)
    failed = [row for row in rows if row["failure"]]
    lines = [
        f"{total} fuzzed inputs over {len(rows)} public entry points ({examples} Hypothesis examples asked per "
        f"entry point, seed {run_seed}; the strategies of `tests/fuzz_cases.py`: every dtype and rank, sizes "
        "0/1/odd, NaN/Inf, samples around the dtype limits and denormals, non-contiguous views, torch tensors, "
        "hostile codes, and miniSEED/SAC/WAV/safetensors files truncated or with flipped bits). Each must end in "
        "a valid result (type, shape, dtype, finite; a stream equal to the offline call) or a clear "
        f"ValueError/TypeError. **Failures: {len(failed)}.** `tests/test_fuzz.py` runs the same checks in CI "
        "at 100 inputs per entry point.",
        "",
        "| entry point | inputs tried | valid results | clear errors | failures | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        failure = row["failure"].replace("|", "\\|") if row["failure"] else "0"
        lines.append(
            f"| `{row['entry_point']}` | {row['tried']} | {row['results']} | {row['clear_errors']} | {failure} | "
            f"{row['seconds']} |"
        )
    lines += ["", "Bugs this fuzz found (each fixed, with a regression test):", ""]
    lines += [f"- {bug}" for bug in BUGS_FOUND]
    lines += ["", "Found upstream, not fixed here:", ""] + [f"- {issue}" for issue in UPSTREAM]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="Hypothesis examples per entry point")
    parser.add_argument("--seed", type=int, default=27, help="Hypothesis seed (the run is reproducible)")
    parser.add_argument("--only", nargs="*", help="entry points to run (default: all)")
    parser.add_argument("--no-write", action="store_true", help="print only, write no record")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error(f"--examples must be >= 1, got {args.examples}")
    unknown = set(args.only or ()) - set(fuzz_cases.ENTRY_POINTS)
    if unknown:
        parser.error(f"unknown entry points {sorted(unknown)}; known: {list(fuzz_cases.ENTRY_POINTS)}")
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # obspy and soundfile warn about the corrupted files, by design
    corpus = fuzz_cases.FileCorpus()
    checks = fuzz_cases.entry_points(fuzz_cases.shipped_models(), corpus)
    rows = []
    try:
        for name in args.only or fuzz_cases.ENTRY_POINTS:
            rows.append(fuzz(name, checks[name], args.examples, args.seed))
            print(rows[-1], flush=True)
    finally:
        corpus.close()
    text = markdown(rows, args.examples, args.seed)
    print(text)
    if not args.no_write:
        write_record(
            "fuzz_entry_points",
            "Fuzzing: inputs tried per public entry point",
            text,
            data={"examples": args.examples, "seed": args.seed, "entry_points": rows},
            argv=argv,
            packages=("hypothesis", "numpy", "obspy", "soundfile"),
        )
    return 1 if any(row["failure"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
