"""Every CUDA kernel path once, on small shapes, checked against the CPU: what ``gpu_check.sh`` runs under
``compute-sanitizer`` (memcheck, racecheck), where each launch is slow and a small shape shows as much.

    python benchmarks/gpu_smoke.py          # needs a CUDA GPU and pydenoise built with its CUDA kernels

Without them it says so and exits with status 2; a wrong result exits with status 1.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import pydenoise
from pydenoise import image
from pydenoise.core import ops
from pydenoise.core.nn import DDAE

BATCHES = (1, 33, 65)  # one window, a partial block, more than two blocks
BORDERS = ("reflect101", "reflect", "replicate", "wrap", "constant")


def ddae_paths() -> list[str]:
    """The fused forward with fp32 weights, tf32 tensor cores and bf16 weights, plain and residual, against
    the CPU kernel."""
    failures = []
    torch.manual_seed(0)
    net = DDAE().eval()
    weights = [w.detach() for w in net.weights()]
    biases = [b.detach() for b in net.biases()]
    variants = {  # name: (weights, allow_tf32, relative tolerance from the operands' rounding)
        "fp32": (weights, False, 1e-4),
        "tf32": (weights, True, 2e-2),
        "bf16": ([w.bfloat16() for w in weights], False, 5e-2),
    }
    for residual in (False, True):
        for batch in BATCHES:
            frames = torch.randn(batch, net.window)
            expected = ops.ddae_forward(frames, weights, biases, residual=residual)
            for label, (layer_weights, tf32, tol) in variants.items():
                got = ops.ddae_forward(
                    frames.cuda(),
                    [w.cuda() for w in layer_weights],
                    [b.cuda() for b in biases],
                    residual=residual,
                    allow_tf32=tf32,
                ).cpu()
                error = float((got - expected).abs().max() / expected.abs().max())
                if not error <= tol:
                    failures.append(f"ddae {label} residual={residual} B={batch}: relative error {error:.3g} > {tol}")
    return failures


def filter_paths() -> list[str]:
    """Every filter at 3x17 and 64x64, u8 and f32, 1 and 3 planes, every border, against the CPU filters."""
    failures = []
    rng = np.random.default_rng(0)
    for shape in ((1, 1, 3, 17), (1, 3, 64, 64)):
        for dtype in (np.float32, np.uint8):
            cpu = torch.from_numpy(
                rng.integers(0, 256, shape).astype(np.uint8) if dtype == np.uint8 else rng.random(shape, np.float32)
            )
            for border in BORDERS:
                calls = {
                    "box": lambda x, b=border: image.box(x, (3, 5), b, cval=0.5),
                    "gaussian": lambda x, b=border: image.gaussian(x, 1.5, border=b, cval=0.5),
                    "convolve": lambda x, b=border: image.convolve(x, np.ones((3, 3)) / 9, b, cval=0.5),
                    "median 3": lambda x, b=border: image.median(x, 3, b),
                    "median 9": lambda x, b=border: image.median(x, 9, b),
                    "bilateral": lambda x, b=border, u8=dtype == np.uint8: image.bilateral(
                        x, 5, 30.0 if u8 else 0.2, 2.0, b, cval=0.5
                    ),
                }
                for name, call in calls.items():
                    expected, got = call(cpu).double(), call(cpu.cuda()).cpu().double()
                    error = float((got - expected).abs().max())
                    if error > (1.0 if dtype == np.uint8 else 1e-4):
                        failures.append(f"{name} {dtype.__name__} {tuple(shape)} {border}: max error {error:.3g}")
    return failures


def main() -> int:
    if not torch.cuda.is_available() or not pydenoise.info()["cuda_kernels"]:
        found = "no CUDA GPU" if not torch.cuda.is_available() else "pydenoise built without its CUDA kernels"
        print(f"gpu_smoke: needs a CUDA GPU and pydenoise's CUDA kernels; here: {found}", file=sys.stderr)
        return 2
    failures = ddae_paths() + filter_paths()
    torch.cuda.synchronize()
    print("\n".join(failures) or f"gpu_smoke: every path agrees with the CPU on {torch.cuda.get_device_name()}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
