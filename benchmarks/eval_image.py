"""Image denoising benchmark: Set12 and BSD68 at σ = 15, 25, 50, every method of pydenoise.image.compare.

Protocol (../shared/data/images/README.md, as in the DnCNN/FFDNet tables): clean 8-bit grayscale image →
float, plus N(0, σ²) noise on the 0..255 scale, *not clipped*, seed 0 for every image; every method gets
the true σ; PSNR (data_range 255) and SSIM per image, averaged over the set; wall time per image. The
images are only read here: never trained on, never shipped.

Each set writes its own record, ``benchmarks/records/eval_image_SET.json`` (``make results`` turns the records
into RESULTS.md), and a montage of its first image at σ = 25: ``benchmarks/image_montage.png`` for Set12 and
``benchmarks/image_montage_<set>.png`` for the others, or ``--montage`` for the first set and
``<its stem>_<set>.png`` beside it for the others.

    python benchmarks/eval_image.py                                 # everything: both records + montages
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
from results import markdown_table, write_record  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "images"
#: Published set averages at σ = 25 (README of the data folder), for reference.
PUBLISHED = {("Set12", 25): {"BM3D": 29.97, "DnCNN": 30.44}, ("BSD68", 25): {"BM3D": 28.57, "MLP": 28.96}}
OURS, PEER, SUMMARY_SIGMA = "patch DAE", "BM3D", 25
#: What the README's line for each set is not (issue #25).
NOT_HELD_OUT = {
    "Set12": "not held out: a training choice was made looking at Set12 (#25)",
    "BSD68": "not a frozen held-out set yet (#25)",
}


def record_name(set_name: str) -> str:
    return f"eval_image_{set_name.lower()}"


def record_title(set_name: str) -> str:
    return f"Image denoising, {set_name} (benchmarks/eval_image.py)"


def montage_path(first: Path | None, set_name: str, sets: list[str]) -> Path:
    """``first`` for the first set, ``<stem>_<set>.png`` beside it for the others; without ``first``,
    ``image_montage.png`` for Set12 and ``image_montage_<set>.png`` for the others."""
    if first is None:
        return HERE / ("image_montage.png" if set_name == "Set12" else f"image_montage_{set_name.lower()}.png")
    return first if set_name == sets[0] else first.with_name(f"{first.stem}_{set_name.lower()}{first.suffix}")


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


def evaluate(data, sets, sigmas, methods, limit, montages, bm3d_sets):
    """Mean PSNR / SSIM / seconds per (set, σ, method), and each set's wall time; BM3D only on ``bm3d_sets`` (it
    is slow); ``montages``: set -> path of the montage of its first image at σ = 25 (None: none)."""
    table, seconds = {}, {}
    for set_name in sets:
        started = time.time()
        images = load_set(data, set_name, limit)
        for sigma in sigmas:
            names = [name for name in methods or available_methods(sigma) if name != "BM3D" or set_name in bm3d_sets]
            totals = {name: np.zeros(3) for name in names}
            for index, (stem, clean) in enumerate(images):
                _, results = compare(clean, sigma, seed=0, methods=names)
                for r in results:
                    totals[r.method] += (r.psnr, r.ssim, r.seconds)
                if montages and index == 0 and sigma == 25:
                    montage(clean, results, montages[set_name], title=f"{set_name}/{stem}, sigma 25")
                print(
                    f"{set_name} σ={sigma} {stem}: " + ", ".join(f"{r.method} {r.psnr:.2f}" for r in results),
                    flush=True,
                )
            for name in names:
                table[(set_name, sigma, name)] = totals[name] / len(images)
        seconds[set_name] = time.time() - started
    return table, seconds


def summary_rows(table: dict, set_name: str) -> list[dict]:
    """The README's line for ``set_name``: the patch DAE's mean PSNR at σ = 25 against BM3D's, or, where BM3D did
    not run, against the best method that did (``table``: (set, σ, method) -> (PSNR, SSIM, seconds))."""
    at = {key[2]: values[0] for key, values in table.items() if key[:2] == (set_name, SUMMARY_SIGMA)}
    peers = {name: psnr for name, psnr in at.items() if name not in (OURS, "noisy")}
    if OURS not in at or not peers:
        return []
    peer = PEER if PEER in peers else max(peers, key=peers.get)
    note = NOT_HELD_OUT.get(set_name, "not a frozen held-out set yet (#25)")
    if peer != PEER:
        published = PUBLISHED.get((set_name, SUMMARY_SIGMA), {}).get(PEER)
        note += f"; {PEER} not run on {set_name}" + (f" (published: {published} dB)" if published else "")
    return [
        {
            "domain": "image",
            "measure": f"{set_name}, mean PSNR at σ={SUMMARY_SIGMA} (gray, Gaussian, σ given)",
            "ours": f"{at[OURS]:.2f} dB",
            "peer": f"{peers[peer]:.2f} dB ({peer})",
            "note": note,
        }
    ]


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
        default=None,
        help="montage of the first set's first image at σ=25; further sets get <stem>_<set>.png beside it "
        "(default benchmarks/image_montage.png for Set12, benchmarks/image_montage_<set>.png for others)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; write no record and no montage")
    args = parser.parse_args(argv)
    sigmas = [int(s) if float(s).is_integer() else s for s in args.sigmas]
    montages = None if args.no_write else {name: montage_path(args.montage, name, args.sets) for name in args.sets}
    table, seconds = evaluate(args.data, args.sets, sigmas, args.methods, args.limit, montages, args.bm3d_sets)
    facts = pydenoise.info()
    for set_name in args.sets:
        text = "\n".join(
            [
                f"Images: {set_name}"
                + (f" (first {args.limit})" if args.limit else "")
                + f", {seconds[set_name]:.0f} s in all; {torch.get_num_threads()} threads, CPU kernels "
                f"{facts['cpu_kernels']}."
                + (f" Montage: `{montages[set_name].name}`." if montages else "")
                + " Protocol: unclipped noise, seed 0 per image, true σ given to every method; BM3D on "
                f"{', '.join(args.bm3d_sets)} only.",
                "",
                format_table({key: v for key, v in table.items() if key[0] == set_name}, [set_name], sigmas),
            ]
        )
        print(f"\n{record_title(set_name)}\n\n{text}")
        if not args.no_write:
            figures = [
                {"set": s, "sigma": sigma, "method": name, "psnr": v[0], "ssim": v[1], "seconds_per_image": v[2]}
                for (s, sigma, name), v in table.items()
                if s == set_name
            ]
            write_record(
                record_name(set_name),
                record_title(set_name),
                text,
                data={"limit": args.limit, "seconds": seconds[set_name], "results": figures},
                summary=summary_rows(table, set_name),
                argv=argv,
                packages=("scikit-image", "bm3d"),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
