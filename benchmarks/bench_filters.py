"""Throughput of pydenoise's image filters against OpenCV, scipy.ndimage and kornia, in one run.

For every filter, image size and dtype: megapixels per second of each library (best of ``--repeat`` runs)
and the ratios ``ours / peer`` of throughput (above 1: we are faster). On a GPU, also the effective memory
bandwidth of our kernels (bytes read + written per second) as a fraction of a device-to-device copy's.

Usage::

    python benchmarks/bench_filters.py             # CPU (and CUDA when present), 512² and 4096²; writes
                                                   # benchmarks/records/bench_filters.json (`make results`)
    python benchmarks/bench_filters.py --sizes 64 --repeat 1 --no-write   # a smoke run, prints only
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import ndimage

from pydenoise import image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_record  # noqa: E402

try:
    import kornia
except ImportError:  # kornia is an optional peer
    kornia = None

SIGMA = 2.0  # Gaussian: 17 taps for float (OpenCV's rule, scipy truncate=4), 13 for uint8 (OpenCV's rule)
BILATERAL = {"d": 9, "sigma_space": 3.0}  # sigma_color: 0.1 of the range
# kornia's median and bilateral unfold k² copies of the image (5.4 GB for a 9×9 window at 4096²): CPU runs
# above this many pixels leave them out.
KORNIA_CPU_UNFOLD_LIMIT = 2048 * 2048
MIN_SECONDS = 0.2  # per library and case: the best of many runs for small images
NAME, TITLE = "bench_filters", "Image filters (benchmarks/bench_filters.py)"


def best_time(fn: Callable[[], object], repeat: int, sync: Callable[[], None] = lambda: None) -> float:
    """Best of at least ``repeat`` runs, and of as many as fit in MIN_SECONDS (fast calls on a loaded machine
    need many tries to catch one that no other process interrupted)."""
    fn()
    sync()
    best, runs, spent = float("inf"), 0, 0.0
    while runs < repeat or spent < MIN_SECONDS:
        start = time.perf_counter()
        fn()
        sync()
        elapsed = time.perf_counter() - start
        best, runs, spent = min(best, elapsed), runs + 1, spent + elapsed
    return best


def cpu_cases(img: np.ndarray) -> dict[str, dict[str, Callable[[], object]]]:
    """filter -> library -> call, all on the same numpy image."""
    sigma_color = 0.1 if img.dtype == np.float32 else 25.5
    sharpen = image.SHARPEN_KERNEL.astype(np.float32)
    t = torch.from_numpy(img.astype(np.float32))[None, None] if kornia else None
    cases = {
        "box 5×5": {
            "ours": lambda: image.box(img, 5),
            "opencv": lambda: cv2.blur(img, (5, 5)),
            "scipy": lambda: ndimage.uniform_filter(img, 5, mode="mirror"),
            "kornia": lambda: kornia.filters.box_blur(t, (5, 5), border_type="reflect"),
        },
        "gaussian σ=2": {
            "ours": lambda: image.gaussian(img, SIGMA),
            "opencv": lambda: cv2.GaussianBlur(img, (0, 0), SIGMA),
            "scipy": lambda: ndimage.gaussian_filter(img, SIGMA, mode="mirror", truncate=4.0),
            "kornia": lambda: kornia.filters.gaussian_blur2d(t, (17, 17), (SIGMA, SIGMA), border_type="reflect"),
        },
        "median 3×3": {
            "ours": lambda: image.median(img, 3),
            "opencv": lambda: cv2.medianBlur(img, 3),
            "scipy": lambda: ndimage.median_filter(img, 3, mode="mirror"),
            "kornia": lambda: kornia.filters.median_blur(t, (3, 3)),
        },
        "median 5×5": {
            "ours": lambda: image.median(img, 5),
            "opencv": lambda: cv2.medianBlur(img, 5),
            "scipy": lambda: ndimage.median_filter(img, 5, mode="mirror"),
            "kornia": lambda: kornia.filters.median_blur(t, (5, 5)),
        },
        "bilateral d=9": {
            "ours": lambda: image.bilateral(img, BILATERAL["d"], sigma_color, BILATERAL["sigma_space"]),
            "opencv": lambda: cv2.bilateralFilter(img, BILATERAL["d"], sigma_color, BILATERAL["sigma_space"]),
            "kornia": lambda: kornia.filters.bilateral_blur(
                t, (BILATERAL["d"], BILATERAL["d"]), sigma_color, (BILATERAL["sigma_space"],) * 2, border_type="reflect"
            ),
        },
        "sharpen 3×3": {
            "ours": lambda: image.sharpen(img),
            "opencv": lambda: cv2.filter2D(img, -1, sharpen),
            "scipy": lambda: ndimage.correlate(img, sharpen, mode="mirror"),
            "kornia": lambda: kornia.filters.filter2d(t, torch.from_numpy(sharpen)[None], border_type="reflect"),
        },
    }
    for name, calls in cases.items():
        if kornia is None or img.dtype != np.float32:  # kornia filters float tensors only
            calls.pop("kornia", None)
        if img.size > KORNIA_CPU_UNFOLD_LIMIT and name.startswith(("median", "bilateral")):
            calls.pop("kornia", None)
    return cases


def gpu_cases(t: torch.Tensor) -> dict[str, dict[str, Callable[[], object]]]:
    sigma_color = 0.1 if t.dtype == torch.float32 else 25.5
    sharpen = torch.from_numpy(image.SHARPEN_KERNEL.astype(np.float32))[None].to(t.device)
    tf = t.float()
    cases = {
        "box 5×5": {
            "ours": lambda: image.box(t, 5),
            "kornia": lambda: kornia.filters.box_blur(tf, (5, 5), border_type="reflect"),
        },
        "gaussian σ=2": {
            "ours": lambda: image.gaussian(t, SIGMA),
            "kornia": lambda: kornia.filters.gaussian_blur2d(tf, (17, 17), (SIGMA, SIGMA), border_type="reflect"),
        },
        "median 3×3": {"ours": lambda: image.median(t, 3), "kornia": lambda: kornia.filters.median_blur(tf, (3, 3))},
        "median 5×5": {"ours": lambda: image.median(t, 5), "kornia": lambda: kornia.filters.median_blur(tf, (5, 5))},
        "bilateral d=9": {
            "ours": lambda: image.bilateral(t, BILATERAL["d"], sigma_color, BILATERAL["sigma_space"]),
            "kornia": lambda: kornia.filters.bilateral_blur(
                tf,
                (BILATERAL["d"], BILATERAL["d"]),
                sigma_color,
                (BILATERAL["sigma_space"],) * 2,
                border_type="reflect",
            ),
        },
        "sharpen 3×3": {
            "ours": lambda: image.sharpen(t),
            "kornia": lambda: kornia.filters.filter2d(tf, sharpen, border_type="reflect"),
        },
    }
    for calls in cases.values():
        if kornia is None or t.dtype != torch.float32:
            calls.pop("kornia", None)
    return cases


def copy_bandwidth(t: torch.Tensor, repeat: int) -> float:
    """Bytes per second of a device-to-device copy of t (read + write)."""
    dst = torch.empty_like(t)
    seconds = best_time(lambda: dst.copy_(t), repeat, torch.cuda.synchronize)
    return 2 * t.numel() * t.element_size() / seconds


def run(sizes: list[int], repeat: int, devices: list[str]) -> tuple[list[str], list[dict]]:
    """The markdown tables (one per device) and the raw figures: one dict per device, filter, size and dtype
    with each library's Mpx/s (and on CUDA our fraction of the copy bandwidth)."""
    rng = np.random.default_rng(0)
    lines, data = [], []
    for device in devices:
        peers = ["opencv", "scipy", "kornia"] if device == "cpu" else ["kornia"]
        header = "| filter | size | dtype | ours Mpx/s | " + " | ".join(f"{p} Mpx/s" for p in peers)
        header += " | " + " | ".join(f"ours/{p}" for p in peers)
        if device == "cuda":
            header += " | % of copy bandwidth"
        lines += [f"\n**{device.upper()}**\n", header + " |", "|" + "---|" * (header.count("|") - 0)]
        for size in sizes:
            for dtype in (np.float32, np.uint8):
                base = rng.random((size, size), dtype=np.float32)
                img = base if dtype == np.float32 else (base * 255).astype(np.uint8)
                if device == "cpu":
                    cases, sync, bandwidth = cpu_cases(img), (lambda: None), None
                else:
                    t = torch.from_numpy(img)[None, None].cuda()
                    cases, sync, bandwidth = gpu_cases(t), torch.cuda.synchronize, copy_bandwidth(t, repeat)
                for name, calls in cases.items():
                    mpx = {}
                    for library, call in calls.items():
                        reps = 1 if (library == "scipy" and size > 1024) else repeat
                        mpx[library] = size * size / best_time(call, reps, sync) / 1e6
                    row = [name, f"{size}²", np.dtype(dtype).name, f"{mpx['ours']:.0f}"]
                    row += [f"{mpx[p]:.0f}" if p in mpx else "–" for p in peers]
                    row += [f"{mpx['ours'] / mpx[p]:.2f}" if p in mpx else "–" for p in peers]
                    figures = {"device": device, "filter": name, "size": size, "dtype": np.dtype(dtype).name}
                    figures["mpx_per_s"] = mpx
                    if bandwidth is not None:
                        bytes_per_px = 2 * np.dtype(dtype).itemsize
                        figures["copy_bandwidth_fraction"] = mpx["ours"] * 1e6 * bytes_per_px / bandwidth
                        row.append(f"{100 * figures['copy_bandwidth_fraction']:.0f}%")
                    data.append(figures)
                    lines.append("| " + " | ".join(row) + " |")
                    print(lines[-1], flush=True)
    return lines, data


def environment() -> list[str]:
    """What the tables measure (the machine, versions and command are in the record's provenance)."""
    return [
        f"Threads: torch {torch.get_num_threads()}, OpenCV {cv2.getNumThreads()}; kornia "
        f"{getattr(kornia, '__version__', 'not installed: its columns are empty')}. Compare ratios, not Mpx/s, "
        "when the machine is shared (load average in the provenance above).",
        "",
        "Mpx/s = megapixels per second, best of the repeats or of 0.2 s of runs if more (scipy above 1024²: one "
        "run); ratios above 1 mean pydenoise is faster (scipy.ndimage is single-threaded). Our timings go through "
        "the public `pydenoise.image` API (numpy in, numpy out; on CUDA, tensors in and out, including the NaN "
        "check). kornia takes float tensors only; its CPU median and bilateral are left out above 2048² (they "
        "unfold k² copies of the image). The Gaussian window is OpenCV's default: 17 taps for float32, 13 for "
        "uint8.",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 4096])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for every library (0: their default)")
    parser.add_argument("--no-write", action="store_true", help="print only; write no record")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if not torch.cuda.is_available():
        devices = [d for d in devices if d != "cuda"]
    tables, data = run(args.sizes, args.repeat, devices)
    text = "\n".join(environment() + tables)
    print(text)
    if not args.no_write:
        figures = {"threads": {"torch": torch.get_num_threads(), "opencv": cv2.getNumThreads()}, "cases": data}
        write_record(
            NAME,
            TITLE,
            text,
            data=figures,
            argv=argv,
            packages=("opencv-python-headless", "opencv-python", "scipy", "kornia"),
        )


if __name__ == "__main__":
    main()
