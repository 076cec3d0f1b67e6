"""Image denoising benchmark: Set12 and BSD68 at σ = 15, 25, 50, every method of pydenoise.image.compare.

Protocol (../shared/data/images/README.md, as in the DnCNN/FFDNet tables): clean 8-bit grayscale image →
float, plus N(0, σ²) noise on the 0..255 scale, *not clipped*, seed 0 for every image; every method gets
the true σ; PSNR (data_range 255) and SSIM per image, averaged over the set; wall time per image. The
images are only read here: never trained on, never shipped.

    python benchmarks/eval_image.py                                 # everything, writes RESULTS.md + montage
    python benchmarks/eval_image.py --sets BSD68 --montage benchmarks/image_montage_bsd68.png   # one set
    python benchmarks/eval_image.py --sets Set12 --sigmas 25 --no-write
    python benchmarks/eval_image.py --methods noisy "patch DAE" NL-means --limit 4 --no-write
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import skimage
import skimage.io
import torch

import pydenoise
from pydenoise.image.compare import available_methods, compare, montage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine_header, markdown_table, write_section  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "images"
#: Published set averages at σ = 25 (README of the data folder), for reference.
PUBLISHED = {("Set12", 25): {"BM3D": 29.97, "DnCNN": 30.44}, ("BSD68", 25): {"BM3D": 28.57, "MLP": 28.96}}


def load_set(data: Path, name: str, limit: int | None) -> list[tuple[str, np.ndarray]]:
    folder = data / name
    paths = sorted(folder.glob("*.png"))
    if not paths:
        raise SystemExit(f"no PNG images in {folder}")
    images = []
    for path in paths[:limit]:
        img = skimage.io.imread(path)
        if img.ndim == 3:  # a few copies of these sets store gray as RGB
            img = img[..., 0]
        images.append((path.stem, img))
    return images


def evaluate(data, sets, sigmas, methods, limit, montage_path, bm3d_sets):
    """Mean PSNR / SSIM / seconds per (set, σ, method); BM3D only on ``bm3d_sets`` (it is slow)."""
    table = {}
    for set_name in sets:
        images = load_set(data, set_name, limit)
        for sigma in sigmas:
            names = [name for name in methods or available_methods(sigma) if name != "BM3D" or set_name in bm3d_sets]
            totals = {name: np.zeros(3) for name in names}
            for index, (stem, clean) in enumerate(images):
                _, results = compare(clean, sigma, seed=0, methods=names)
                for r in results:
                    totals[r.method] += (r.psnr, r.ssim, r.seconds)
                if montage_path and index == 0 and sigma == 25 and set_name == sets[0]:
                    montage(clean, results, montage_path, title=f"{set_name}/{stem}, sigma 25")
                print(
                    f"{set_name} σ={sigma} {stem}: " + ", ".join(f"{r.method} {r.psnr:.2f}" for r in results),
                    flush=True,
                )
            for name in names:
                table[(set_name, sigma, name)] = totals[name] / len(images)
    return table


def format_table(table, sets, sigmas) -> str:
    methods = list(dict.fromkeys(key[2] for key in table))
    columns = [(s, sigma) for s in sets for sigma in sigmas]
    rows = []
    for name in methods:
        cells = [
            f"{table[(*key, name)][0]:.2f} / {table[(*key, name)][1]:.3f}" if (*key, name) in table else "–"
            for key in columns
        ]
        times = [table[(*key, name)][2] for key in columns if (*key, name) in table]
        rows.append([name, *cells, f"{np.mean(times):.3f}"])
    header = ["method", *(f"{s} σ={sigma}" for s, sigma in columns), "s / image"]
    dae = {key[:2]: table[key][0] for key in table if key[2] == "patch DAE"}
    gaps = []
    for peer in ("TV", "NL-means", "BM3D"):
        cells = [
            f"{s} σ={sigma}: {dae[(s, sigma)] - table[(s, sigma, peer)][0]:+.2f}"
            for s, sigma in columns
            if (s, sigma, peer) in table and (s, sigma) in dae
        ]
        if cells:
            gaps.append(f"- patch DAE − {peer} (dB): " + ", ".join(cells))
    published = [
        f"- published {s} σ={sigma}: " + ", ".join(f"{k} {v}" for k, v in values.items())
        for (s, sigma), values in PUBLISHED.items()
        if s in sets and sigma in sigmas
    ]
    return "\n".join(
        [
            "PSNR dB / SSIM, mean over each set; seconds per image averaged over all columns:",
            "",
            markdown_table(header, rows),
            "",
            *gaps,
            *published,
        ]
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help=f"folder holding Set12/ and BSD68/ (default {DATA})")
    parser.add_argument("--sets", nargs="+", default=["Set12", "BSD68"])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[15, 25, 50])
    parser.add_argument("--methods", nargs="+", default=None, help="default: every available method")
    parser.add_argument(
        "--bm3d-sets",
        nargs="+",
        default=["Set12"],
        help="sets BM3D runs on (default Set12: ~10 s per BSD68 image on one core)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set (quick runs)")
    parser.add_argument(
        "--montage",
        type=Path,
        default=HERE / "image_montage.png",
        help="montage of the first image at σ=25 (default benchmarks/image_montage.png)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md and the montage")
    args = parser.parse_args(argv)
    sigmas = [int(s) if float(s).is_integer() else s for s in args.sigmas]
    started = time.time()
    table = evaluate(
        args.data, args.sets, sigmas, args.methods, args.limit, None if args.no_write else args.montage, args.bm3d_sets
    )
    facts = pydenoise.info()
    command = "python benchmarks/eval_image.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join(
        [
            machine_header(
                {
                    "threads": torch.get_num_threads(),
                    "kernels": facts["cpu_kernels"],
                    "pydenoise": facts["version"],
                    "torch": facts["torch"],
                    "scikit-image": skimage.__version__,
                }
            ),
            "",
            f"Command: `{command.strip()}` ({time.time() - started:.0f} s); images: {', '.join(args.sets)}"
            + (f" (first {args.limit} of each)" if args.limit else "")
            + f". Montage: `{args.montage.name}`. "
            f"Protocol: unclipped noise, seed 0 per image, true σ given to every method; BM3D on "
            f"{', '.join(args.bm3d_sets)} only.",
            "",
            format_table(table, args.sets, sigmas),
        ]
    )
    print(text)
    if not args.no_write:
        write_section(f"Image denoising ({', '.join(args.sets)})", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
