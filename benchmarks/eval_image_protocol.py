"""The frozen held-out protocol for image quality figures (issue #25): which images are test images, which
images the shipped model and the peers' settings ever saw, and proof that the two never meet.

Test images (``image_manifests/test.json``, sha256 of every file and of the decoded pixels):

* **Set12** and **BSD68** (``../shared/data/images``, research-evaluation licence: read, never shipped);
* **packaged**: pictures that ship with installed packages and that nothing in this repository ever trained
  on or tuned a setting on: scikit-image's ``camera`` (gray) and ``astronaut`` (colour), matplotlib's
  ``grace_hopper.jpg`` (colour) and its MRI slice ``s1045.ima.gz`` (gray, big-endian 16-bit holding 0..215,
  taken as 8-bit). OpenCV's wheel ships no sample images. The gray evaluation takes the colour pictures'
  BT.601 luma rounded to uint8; the colour evaluation takes the RGB pictures.

Seen images (``image_manifests/train.json``): the shipped ``image`` model's training images
(:data:`pydenoise.image.train.BUNDLED` except ``coffee``), its validation image (``coffee``) and the three
photographs the comparison's filter / TV / NL-means settings were fitted on (``coffee``, ``chelsea``,
``rocket``, :mod:`pydenoise.image.compare`), each with the sha256 of its decoded pixels.

:func:`verify` checks the files against the manifests and that no test image is a seen image, by name, by
pixels, or as a near duplicate (32×32 thumbnails correlated above 0.98: a rescaled or re-encoded copy).

    python benchmarks/eval_image_protocol.py --write    # derives and writes benchmarks/image_manifests/
    python benchmarks/eval_image_protocol.py            # checks the frozen manifests

The manifests are frozen: rewriting them is a change of protocol and needs a reason in the commit.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MANIFEST_DIR = HERE / "image_manifests"
#: Set12/ and BSD68/: ``$PYDENOISE_IMAGE_DATA``, else ``../shared/data/images`` beside the checkout.
DATA = Path(os.environ.get("PYDENOISE_IMAGE_DATA") or HERE.parent.parent / "shared" / "data" / "images")
STANDARD_SETS = ("Set12", "BSD68")
#: (name, package, path inside the package, colour): the packaged test pictures.
PACKAGED = (
    ("camera", "skimage", "data/camera.png", False),
    ("astronaut", "skimage", "data/astronaut.png", True),
    ("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", True),
    ("mri", "matplotlib", "mpl-data/sample_data/s1045.ima.gz", False),
)
#: Images the comparison's filter, TV and NL-means settings were fitted on (pydenoise/image/compare.py).
TUNING_IMAGES = ("coffee", "chelsea", "rocket")
NEAR_DUPLICATE_CORRELATION = 0.98
#: Seen images drawn at random on each call (no fixed pixels to checksum; synthetic, so no photo can match).
RANDOM_IMAGES = ("binary_blobs",)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pixels_sha256(pixels: np.ndarray) -> str:
    """Checksum of decoded pixels: dtype, shape and values (catches a decoder that changed)."""
    pixels = np.ascontiguousarray(pixels)
    return sha256_bytes(f"{pixels.dtype.str}{pixels.shape}".encode() + pixels.tobytes())


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package!r} is not installed (it holds the test image {relative})")
    return Path(spec.origin).parent / relative


def read_packaged(package: str, relative: str) -> np.ndarray:
    """A packaged picture as uint8, ``H×W`` or ``H×W×3``."""
    path = package_file(package, relative)
    if path.name == "s1045.ima.gz":  # raw 256×256 big-endian uint16, values 0..215
        raw = np.frombuffer(gzip.decompress(path.read_bytes()), ">u2").reshape(256, 256)
        if raw.max() > 255:
            raise ValueError(f"{path}: expected 8-bit values in 16-bit words, found {raw.max()}")
        return raw.astype(np.uint8)
    import skimage.io

    pixels = np.asarray(skimage.io.imread(path))
    return pixels[..., :3] if pixels.ndim == 3 else pixels  # RGBA → RGB


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of a uint8 RGB picture, rounded to uint8 (the gray version of a colour test picture)."""
    gray = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.round(gray), 0, 255).astype(np.uint8)


def read_standard(path: Path) -> np.ndarray:
    import skimage.io

    pixels = np.asarray(skimage.io.imread(path))
    return pixels[..., 0] if pixels.ndim == 3 else pixels  # a few copies of these sets store gray as RGB


def standard_paths(set_name: str, data: Path = DATA) -> list[Path]:
    paths = sorted((data / set_name).glob("*.png"))
    if not paths:
        raise FileNotFoundError(f"no PNG images in {data / set_name} (set $PYDENOISE_IMAGE_DATA or pass --data)")
    return paths


def seen_images() -> dict[str, np.ndarray]:
    """Every image the shipped model or a tuned setting saw, by name, as loaded (scikit-image's arrays;
    :data:`RANDOM_IMAGES` differ on each call)."""
    import skimage.data

    from pydenoise.image.train import BUNDLED

    names = dict.fromkeys([*BUNDLED, *TUNING_IMAGES])
    seen = {}
    for name in names:
        loaded = getattr(skimage.data, name)()
        views = loaded[:2] if name == "stereo_motorcycle" else [loaded]
        for index, view in enumerate(views):
            seen[name if len(views) == 1 else f"{name}[{index}]"] = np.asarray(view)
    return seen


def standard_entry(set_name: str, path: Path) -> dict:
    pixels = read_standard(path)
    return {
        "name": path.stem,
        "file": f"{set_name}/{path.name}",
        "sha256": sha256_bytes(path.read_bytes()),
        "pixels_sha256": pixels_sha256(pixels),
        "shape": list(pixels.shape),
        "colour": False,
    }


def packaged_entry(name: str, package: str, relative: str, colour: bool) -> dict:
    pixels = read_packaged(package, relative)
    return {
        "name": name,
        "package": package,
        "file": relative,
        "sha256": sha256_bytes(package_file(package, relative).read_bytes()),
        "pixels_sha256": pixels_sha256(pixels),
        "shape": list(pixels.shape),
        "colour": colour,
    }


def derive_test(sets, data: Path = DATA) -> dict[str, list[dict]]:
    """The test manifest's entries of ``sets`` from the files on this installation."""
    return {
        set_name: [packaged_entry(*row) for row in PACKAGED]
        if set_name == "packaged"
        else [standard_entry(set_name, path) for path in standard_paths(set_name, data)]
        for set_name in sets
    }


def seen_sha256(name: str, pixels: np.ndarray) -> str | None:
    return None if name in RANDOM_IMAGES else pixels_sha256(pixels)


def derive(data: Path = DATA) -> dict:
    """Both manifests from the files on this installation."""
    seen = [
        {"name": name, "pixels_sha256": seen_sha256(name, pixels), "shape": list(pixels.shape)}
        for name, pixels in seen_images().items()
    ]
    return {
        "test": derive_test([*STANDARD_SETS, "packaged"], data),
        "train": {"seen": seen, "tuning": list(TUNING_IMAGES), "validation": ["coffee"]},
    }


def load_manifest(name: str) -> dict:
    return json.loads((MANIFEST_DIR / f"{name}.json").read_text())


def test_images(set_name: str, colour: bool = False, data: Path = DATA) -> list[tuple[str, np.ndarray]]:
    """``(name, uint8 pixels)`` of a frozen test set: ``Set12``, ``BSD68`` or ``packaged`` (gray: every
    packaged picture, colour ones as luma; ``colour=True``: the colour pictures in RGB)."""
    entries = load_manifest("test")[set_name]
    if set_name != "packaged":
        if colour:
            raise ValueError(f"{set_name} is a gray set; only 'packaged' has colour pictures")
        return [(e["name"], read_standard(data / e["file"])) for e in entries]
    pictures = [(e["name"], read_packaged(e["package"], e["file"])) for e in entries if e["colour"] or not colour]
    return [(name, p if colour or p.ndim == 2 else luma(p)) for name, p in pictures]


def _thumbnail(pixels: np.ndarray) -> np.ndarray:
    from skimage.transform import resize

    gray = pixels.astype(np.float64)
    if gray.ndim == 3:
        gray = gray[..., :3].mean(axis=2)
    small = resize(gray, (32, 32), anti_aliasing=True).ravel()
    small -= small.mean()
    return small / (np.linalg.norm(small) or 1.0)


def near_duplicates(test: dict[str, np.ndarray], seen: dict[str, np.ndarray]) -> list[tuple[str, str, float]]:
    """``(test, seen, correlation)`` for every pair whose 32×32 thumbnails correlate above the threshold."""
    seen_thumbs = {name: _thumbnail(p) for name, p in seen.items()}
    pairs = []
    for name, pixels in test.items():
        thumb = _thumbnail(pixels)
        for other, other_thumb in seen_thumbs.items():
            correlation = float(thumb @ other_thumb)
            if correlation > NEAR_DUPLICATE_CORRELATION:
                pairs.append((name, other, correlation))
    return pairs


def verify(data: Path = DATA, standard: bool = True) -> list[str]:
    """Problems with the frozen protocol on this installation (empty: intact and disjoint). ``standard``:
    also check Set12 and BSD68's files (they live outside the repository)."""
    frozen, problems = load_manifest("test"), []
    sets = [*STANDARD_SETS, "packaged"] if standard else ["packaged"]
    current = derive_test(sets, data)
    for set_name, now in current.items():
        if [e["name"] for e in now] != [e["name"] for e in frozen[set_name]]:
            problems.append(f"{set_name}: the images changed: {[e['name'] for e in now]}")
        for old, new in zip(frozen[set_name], now):
            for key in ("sha256", "pixels_sha256"):
                if old[key] != new[key]:
                    problems.append(f"{set_name}/{old['name']}: {key} changed ({old[key][:12]} → {new[key][:12]})")
    seen = seen_images()
    train = load_manifest("train")
    if {e["name"]: e["pixels_sha256"] for e in train["seen"]} != {n: seen_sha256(n, p) for n, p in seen.items()}:
        problems.append("train: the seen images differ from the frozen train manifest (BUNDLED or skimage changed)")
    test_names = {e["name"] for entries in current.values() for e in entries}
    seen_names = {name.split("[")[0] for name in seen}
    problems += [f"{name}: a test image is also a seen image (by name)" for name in sorted(test_names & seen_names)]
    seen_hashes = {e["pixels_sha256"] for e in train["seen"]}
    problems += [
        f"{set_name}/{e['name']}: a test image has the pixels of a seen image"
        for set_name, entries in current.items()
        for e in entries
        if e["pixels_sha256"] in seen_hashes
    ]
    test_pixels = {f"{s}/{name}": p for s in sets for name, p in test_images(s, data=data)}
    problems += [f"{a}: near duplicate of seen {b} (r = {r:.3f})" for a, b, r in near_duplicates(test_pixels, seen)]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help=f"folder holding Set12/ and BSD68/ (default {DATA})")
    parser.add_argument("--write", action="store_true", help="derive and write the manifests (a protocol change)")
    args = parser.parse_args(argv)
    if args.write:
        MANIFEST_DIR.mkdir(exist_ok=True)
        for name, content in derive(args.data).items():
            (MANIFEST_DIR / f"{name}.json").write_text(json.dumps(content, indent=1) + "\n")
            print(f"wrote {MANIFEST_DIR / name}.json")
    problems = verify(args.data)
    for problem in problems:
        print(problem, file=sys.stderr)
    counts = {name: len(entries) for name, entries in load_manifest("test").items()}
    print(f"test images: {counts}; {'intact and disjoint' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
