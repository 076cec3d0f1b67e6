"""Image denoising on the frozen held-out test set (issue #25): the patch DAE, σ given and blind, against
NL-means, BM3D / CBM3D, TV and wavelet shrinkage on the same noisy inputs.

Test images: ``benchmarks/image_manifests/test.json`` (see ``eval_image_protocol.py``): Set12, BSD68 and the
pictures that ship with scikit-image and matplotlib that nothing here trained or tuned on, gray (``packaged``,
colour pictures as luma) and colour (``packaged colour``, RGB). Noise on the 0..255 scale, *not clipped*, seed
0 for every image:

* Gaussian, σ = 5, 15, 25, 50;
* Poisson-Gaussian (``PG``, camera-like): ``GAIN · Poisson(x / GAIN) + N(0, READ²)``, variance ``1.5 x + 5²``
  (σ 5 in black, 20 in white); σ-given methods get the image's RMS noise σ, ``sqrt(mean(1.5 x + 25))``.

Every σ-given method gets the true σ; ``patch DAE (blind)`` gets none (:func:`pydenoise.image.estimate_sigma`).
PSNR (data_range 255) and SSIM per image, averaged per set; per image, the patch DAE against NL-means (the
issue's "never below NL-means on any image"); seconds per image on one thread, and the 512×512 ``camera`` time
of each method. DnCNN-class peers: no installed package ships trained weights (and nothing may be downloaded),
so none runs. Peer results (not ours) are cached in ``build/eval_image_heldout_cache.json`` by image, noise,
method and package versions, so that a rerun after a change of the patch DAE reruns only the patch DAE.

    python benchmarks/eval_image_heldout.py                # everything (about an hour on one core: BM3D)
    python benchmarks/eval_image_heldout.py --quick        # 3 images per set, σ = 25 and PG, no record
    python benchmarks/eval_image_heldout.py --sets packaged --conditions 25 --no-write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_image_protocol as protocol  # noqa: E402
from results import markdown_table, time_call, versions, write_record  # noqa: E402

from pydenoise.core.metrics import psnr, ssim  # noqa: E402
from pydenoise.image import denoise  # noqa: E402
from pydenoise.image.compare import available_methods, montage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "eval_image_heldout_cache.json"
RECORD = "eval_image_heldout"
TITLE = "Image denoising, frozen held-out test set (benchmarks/eval_image_heldout.py)"
OURS, BLIND = "patch DAE", "patch DAE (blind)"
METHODS = ("noisy", OURS, BLIND, "NL-means", "BM3D", "TV", "wavelet")
CACHED = ("noisy", "NL-means", "BM3D", "TV", "wavelet")  # methods that do not change with this repository
SETS = ("Set12", "BSD68", "packaged", "packaged colour")
#: Poisson-Gaussian noise on the 0..255 scale: variance GAIN · x + READ².
GAIN, READ = 1.5, 5.0
TIMING_IMAGE = ("packaged", "camera")  # 512×512 gray
SUMMARY_CONDITION = "σ=25"


@dataclass(frozen=True)
class Noise:
    """A noise condition: Gaussian of ``sigma``, or Poisson-Gaussian (``sigma`` None)."""

    name: str
    sigma: float | None = None

    def apply(self, clean: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
        """``(noisy float64, σ given to the σ-given methods)``."""
        rng = np.random.default_rng(seed)
        clean = clean.astype(np.float64)
        if self.sigma is not None:
            return clean + rng.normal(0.0, self.sigma, clean.shape), self.sigma
        noisy = GAIN * rng.poisson(clean / GAIN) + rng.normal(0.0, READ, clean.shape)
        return noisy, float(np.sqrt(np.mean(GAIN * clean + READ**2)))


CONDITIONS = {n.name: n for n in [*(Noise(f"σ={s}", float(s)) for s in (5, 15, 25, 50)), Noise("PG")]}


def method_functions(sigma: float, colour: bool) -> dict:
    axis = -1 if colour else None
    functions = available_methods(sigma, channel_axis=axis)
    functions[BLIND] = lambda noisy: denoise(noisy, data_range=255.0, channel_axis=axis)
    return functions


def load_cache(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def cache_key(set_name: str, image: str, condition: str, method: str) -> str:
    peers = versions("scikit-image", "bm3d")
    return f"{set_name}|{image}|{condition}|{method}|skimage {peers.get('scikit-image')}|bm3d {peers.get('bm3d')}"


def score(set_name: str, image: str, condition: str, clean: np.ndarray, methods, cache: dict, keep: bool):
    """Rows of one noisy image (peers from ``cache`` when there), and ``(method, row, output)`` of those run
    (every method when ``keep``: the montage needs the outputs)."""
    colour = clean.ndim == 3
    noisy, sigma = CONDITIONS[condition].apply(clean)
    functions = method_functions(sigma, colour)
    rows, outputs = [], []
    for method in [m for m in methods if m in functions]:
        key = cache_key(set_name, image, condition, method)
        if method in CACHED and key in cache and not keep:
            row = cache[key]
        else:
            started = time.perf_counter()
            out = functions[method](noisy)
            seconds = time.perf_counter() - started
            axis = -1 if colour else None
            row = {
                "psnr": psnr(clean, out, data_range=255.0),
                "ssim": ssim(clean, out, data_range=255.0, channel_axis=axis),
                "seconds": seconds,
            }
            outputs.append((method, row, out))
            if method in CACHED:
                cache[key] = row
        rows.append({"set": set_name, "image": image, "condition": condition, "method": method, **row})
    return rows, outputs


def run(sets, conditions, methods, limit, montage_dir: Path | None, cache_path: Path = CACHE) -> list[dict]:
    """One row per (set, image, condition, method): PSNR, SSIM, seconds."""
    cache, rows = load_cache(cache_path), []
    for set_name in sets:
        images = protocol.test_images(set_name.split()[0], colour=set_name.endswith("colour"))[:limit]
        for condition in conditions:
            for index, (image, clean) in enumerate(images):
                shown = montage_dir is not None and index == 0 and condition == SUMMARY_CONDITION
                image_rows, outputs = score(set_name, image, condition, clean, methods, cache, keep=shown)
                rows += image_rows
                scores = ", ".join(f"{r['method']} {r['psnr']:.2f}" for r in image_rows)
                print(f"{set_name} {condition} {image}: {scores}", flush=True)
                if shown:
                    write_montage(montage_dir, set_name, image, clean, outputs)
            cache_path.parent.mkdir(exist_ok=True)
            cache_path.write_text(json.dumps(cache))
    return rows


def write_montage(folder: Path, set_name: str, image: str, clean, results) -> None:
    from pydenoise.image.compare import Result

    panels = [Result(method, row["psnr"], row["ssim"], row["seconds"], out) for method, row, out in results]
    name = "image_montage_heldout_" + set_name.lower().replace(" ", "_") + ".png"
    montage(clean, panels, folder / name, title=f"{set_name}/{image}, {SUMMARY_CONDITION} (never trained on)")


def means(rows) -> dict:
    """(set, condition, method) -> (mean PSNR, mean SSIM, mean seconds)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["set"], r["condition"], r["method"]), []).append((r["psnr"], r["ssim"], r["seconds"]))
    return {key: tuple(np.mean(values, axis=0)) for key, values in groups.items()}


def worst_against(rows, peer: str) -> dict:
    """(set, condition) -> (lowest per-image PSNR of the patch DAE minus ``peer``'s, that image)."""
    by_image = {(r["set"], r["condition"], r["image"], r["method"]): r["psnr"] for r in rows}
    worst: dict = {}
    for (set_name, condition, image, method), value in by_image.items():
        if method == OURS and (set_name, condition, image, peer) in by_image:
            gap = value - by_image[(set_name, condition, image, peer)]
            if (set_name, condition) not in worst or gap < worst[(set_name, condition)][0]:
                worst[(set_name, condition)] = (gap, image)
    return worst


def set_table(table: dict, worst: dict, set_name: str, conditions, count: int) -> str:
    methods = [m for m in METHODS if any((set_name, c, m) in table for c in conditions)]
    rows = [
        [m, *(f"{table[(set_name, c, m)][0]:.2f} / {table[(set_name, c, m)][1]:.3f}" for c in conditions)]
        for m in methods
    ]
    lines = [f"### {set_name} ({count} images)", "", markdown_table(["method", *conditions], rows), ""]

    def gap_line(label: str, other: str) -> str | None:
        cells = [
            f"{c} {table[(set_name, c, OURS)][0] - table[(set_name, c, other)][0]:+.2f}"
            for c in conditions
            if (set_name, c, other) in table and (set_name, c, OURS) in table
        ]
        return f"- {label} (dB): " + ", ".join(cells) if cells else None

    gaps = (("patch DAE − BM3D", "BM3D"), ("σ given − blind", BLIND), ("patch DAE − NL-means", "NL-means"))
    lines += [line for line in (gap_line(label, other) for label, other in gaps) if line]
    cells = [f"{c} {worst[key][0]:+.2f} ({worst[key][1]})" for c in conditions if (key := (set_name, c)) in worst]
    if cells:
        lines.append("- worst single image, patch DAE − NL-means (dB): " + ", ".join(cells))
    return "\n".join(lines)


def timing_table(rows) -> str:
    at = [r for r in rows if (r["set"], r["image"]) == TIMING_IMAGE and r["condition"] == SUMMARY_CONDITION]
    if not at:
        return ""
    clean = dict(protocol.test_images("packaged"))["camera"]
    noisy, sigma = CONDITIONS[SUMMARY_CONDITION].apply(clean)
    torch.set_num_threads(2)
    two_threads = time_call(lambda: denoise(noisy, sigma=sigma, data_range=255.0), min_time=2.0, repeats=3)
    torch.set_num_threads(1)
    cells = [[r["method"], f"{r['seconds']:.2f}"] for r in at if r["method"] != "noisy"]
    cells.append([f"{OURS}, 2 threads (median of 3)", f"{two_threads:.2f}"])
    return "\n".join(
        ["### Time per 512×512 gray image (`camera`, σ = 25, one thread)", "", markdown_table(["method", "s"], cells)]
    )


def summary_rows(table: dict, worst: dict, sets) -> list[dict]:
    rows = []
    for set_name in sets:
        key = (set_name, SUMMARY_CONDITION)
        if (*key, OURS) not in table or (*key, "BM3D") not in table:
            continue
        blind = table.get((*key, BLIND), (float("nan"),))[0]
        peer = "CBM3D" if set_name.endswith("colour") else "BM3D"
        rows.append(
            {
                "domain": "image",
                "measure": f"held-out {set_name}, mean PSNR at σ=25 ({'colour' if 'colour' in set_name else 'gray'})",
                "ours": f"{table[(*key, OURS)][0]:.2f} dB (blind {blind:.2f})",
                "peer": f"{table[(*key, 'BM3D')][0]:.2f} dB ({peer})",
                "note": f"worst image vs NL-means {worst[key][0]:+.2f} dB" if key in worst else "",
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), help="σ=5 σ=15 σ=25 σ=50 PG (or 5 ...)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--quick", action="store_true", help="3 images per set, σ = 25 and PG, no record")
    parser.add_argument(
        "--cache", type=Path, default=CACHE, help=f"peer results cache (default {CACHE.relative_to(ROOT)})"
    )
    parser.add_argument("--no-write", action="store_true", help="print only: no record, no montages")
    args = parser.parse_args(argv)
    conditions = [c if c in CONDITIONS else f"σ={c}" for c in args.conditions]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown conditions {unknown}; known: {list(CONDITIONS)}")
    limit, write = args.limit, not args.no_write
    if args.quick:
        limit, conditions, write = limit or 3, [SUMMARY_CONDITION, "PG"], False
    torch.set_num_threads(1)
    started = time.time()
    rows = run(args.sets, conditions, args.methods, limit, ROOT / "benchmarks" if write else None, args.cache)
    table, worst = means(rows), worst_against(rows, "NL-means")
    counts = {s: len({r["image"] for r in rows if r["set"] == s}) for s in args.sets}
    text = "\n\n".join(
        [
            f"Frozen test manifest `benchmarks/image_manifests/test.json`, {time.time() - started:.0f} s in all, one "
            f"thread. PSNR dB / SSIM, mean per set; unclipped noise, seed 0 per image; PG = Poisson-Gaussian, "
            f"variance {GAIN} x + {READ:g}² (0..255), σ-given methods get its RMS σ. Colour: the patch DAE on an "
            "orthonormal luma/opponent basis, BM3D is CBM3D (`bm3d.bm3d_rgb`), NL-means/TV/wavelet joint. No DnCNN-"
            "class peer: no installed package ships trained weights. Montages: `image_montage_heldout_*.png`.",
            *(set_table(table, worst, s, conditions, counts[s]) for s in args.sets if counts[s]),
            timing_table(rows),
        ]
    )
    print(f"\n{TITLE}\n\n{text}")
    if write:
        write_record(
            RECORD,
            TITLE,
            text,
            data={"limit": limit, "rows": rows},
            summary=summary_rows(table, worst, args.sets),
            argv=argv,
            packages=("scikit-image", "bm3d"),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
