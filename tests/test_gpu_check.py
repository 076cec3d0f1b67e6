"""The one-shot GPU check (benchmarks/gpu_check.sh, gpu_smoke.py) refuses clearly on a machine without a GPU
rather than failing half-way; on a GPU machine it is run as a command, not from the tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
no_gpu = pytest.mark.skipif(
    torch.cuda.is_available() or shutil.which("nvidia-smi") is not None, reason="a GPU is here: run the check itself"
)


@no_gpu
def test_gpu_check_says_there_is_no_gpu_and_exits_2(tmp_path):
    run = subprocess.run(["bash", "benchmarks/gpu_check.sh", str(tmp_path / "out")], cwd=ROOT, capture_output=True)
    assert run.returncode == 2 and b"no NVIDIA GPU here" in run.stderr


@no_gpu
def test_gpu_smoke_says_what_is_missing_and_exits_2():
    run = subprocess.run([sys.executable, "benchmarks/gpu_smoke.py"], cwd=ROOT, capture_output=True)
    assert run.returncode == 2 and b"here: no CUDA GPU" in run.stderr


def test_gpu_check_is_valid_bash():
    assert subprocess.run(["bash", "-n", "benchmarks/gpu_check.sh"], cwd=ROOT).returncode == 0
