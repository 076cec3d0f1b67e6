"""Shared by the benchmark scripts: timing, the machine's facts, and the JSON record each run writes.

Every benchmark and evaluation ends with :func:`write_record`, which stores one machine-readable record
(``benchmarks/records/NAME.json``: date, machine with CPU model and ISA flags, versions, command, the
markdown body, raw data, and optional summary rows for the README). ``make results``
(``python benchmarks/make_results.py``) rebuilds ``benchmarks/RESULTS.md`` and the README's results table
from those records; neither is edited by hand. A record is replaced by the next run of the same name, so
RESULTS.md always shows the newest one.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

RECORDS = Path(__file__).with_name("records")
#: Environment variable naming another folder for the records (tests, trial runs).
RECORDS_ENV = "PYDENOISE_RECORDS"

# The CPU features that decide which kernel path runs; printed with every benchmark.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
)


def time_call(fn, min_time: float = 0.2, repeats: int = 5, sync=None) -> float:
    """Median seconds per call of ``fn()`` over ``repeats`` blocks of at least ``min_time / repeats`` each.

    ``sync`` (e.g. ``torch.cuda.synchronize``) is called before reading the clock, for asynchronous devices.
    """
    sync = sync or (lambda: None)
    # Thread pools of the previous method (ONNX Runtime's, OpenMP's) spin for a while after their last call;
    # let them fall asleep so they do not steal the cores from this one.
    time.sleep(0.3)
    fn()
    sync()
    calls = 1
    while True:  # find a block size that takes long enough to time reliably
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        if time.perf_counter() - start >= min_time / repeats:
            break
        calls *= 2
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        blocks.append((time.perf_counter() - start) / calls)
    return statistics.median(blocks)


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return model, flags


def _gpu() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name() if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 (a broken CUDA set-up means no GPU for the record)
        return None


def machine() -> dict:
    """CPU model, the ISA flags that matter for the kernels, cores, GPU, and the kernel path pydenoise runs."""
    model, flags = _cpuinfo()
    facts = {
        "cpu": model,
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "cores": os.cpu_count(),
        "gpu": _gpu(),
        "load_average": round(os.getloadavg()[0], 2),
    }
    try:
        import pydenoise

        facts["kernels"] = pydenoise.info()["cpu_kernels"]
    except Exception:  # noqa: BLE001 (a record of a peer-only run has no pydenoise)
        pass
    return facts


def versions(*packages: str) -> dict:
    """Installed versions of Python, pydenoise, torch, numpy and ``packages`` (absent ones are left out)."""
    found = {"python": platform.python_version()}
    for name in ("pydenoise", "torch", "numpy", *packages):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def machine_header(extra: dict | None = None) -> str:
    """One markdown line: CPU and its ISA flags, cores, date, and ``extra`` facts."""
    facts = machine()
    line = {
        "machine": f"{facts['cpu']}, {facts['cores']} cores",
        "ISA": " ".join(facts["isa"]) or "unknown",
        "GPU": facts["gpu"] or "none",
        "date": datetime.date.today().isoformat(),
    }
    line.update(extra or {})
    return " · ".join(f"{key}: {value}" for key, value in line.items())


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line(argv: list[str] | None = None) -> str:
    """The command that reproduces this run, as a user would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(Path.cwd())
    except ValueError:
        pass
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", str(script), *args])


def records_dir() -> Path:
    """Where records go: ``$PYDENOISE_RECORDS`` when set, else ``benchmarks/records``."""
    return Path(os.environ.get(RECORDS_ENV) or RECORDS)


def write_record(
    name: str,
    title: str,
    markdown: str,
    *,
    data=None,
    summary: list[dict] | None = None,
    argv: list[str] | None = None,
    packages: tuple[str, ...] = (),
) -> Path:
    """Write ``benchmarks/records/NAME.json`` (or into ``$PYDENOISE_RECORDS``) for this run; return its path.

    ``markdown`` is the section body RESULTS.md shows under ``title``; ``data`` holds the raw figures;
    ``summary`` rows (``domain``, ``measure``, ``ours``, ``peer``, ``note``) feed the README's results table.
    """
    record = {
        "name": name,
        "title": title,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(*packages),
        "command": command_line(argv),
        "markdown": markdown.strip(),
        "data": data,
        "summary": summary or [],
    }
    folder = records_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=1, ensure_ascii=False, default=_jsonable) + "\n")
    temporary.replace(path)
    print(f"record written to {path}; `make results` regenerates RESULTS.md")
    return path


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"a benchmark record cannot hold {type(value).__name__}: {value!r}")
