"""Shared by the benchmark scripts: timing, the machine header, and writing a section of RESULTS.md."""

from __future__ import annotations

import datetime
import platform
import re
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


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


def machine_header(extra: dict | None = None) -> str:
    """One markdown line: CPU, cores, date, Python and library versions."""
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {"machine": f"{cpu}, {os.cpu_count()} cores", "date": datetime.date.today().isoformat(),
             "python": platform.python_version()}
    facts.update(extra or {})
    return " · ".join(f"{key}: {value}" for key, value in facts.items())


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(title: str, body: str) -> None:
    """Replace (or append) the ``## title`` section of RESULTS.md with ``body``."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nEach section is written by the script it names.\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip() + "\n")
