"""benchmarks/RESULTS.md and the README's results table are generated from the benchmark records."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_results_are_regenerated_from_the_records():
    check = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_results.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr + "\nrun `make results` after a benchmark writes a record"


def test_the_check_sees_a_hand_edit(tmp_path):
    edited = tmp_path / "RESULTS.md"
    edited.write_text((ROOT / "benchmarks" / "RESULTS.md").read_text() + "\nhand-written line\n")
    check = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "make_results.py"), "--check", "--results", str(edited)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1 and "stale" in check.stderr
