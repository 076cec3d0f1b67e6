"""The ``pydenoise`` command line: one sub-command per job, each with ``--help`` and an example.

Each sub-command is a ``_add_<name>(subparsers)`` function that declares its arguments and sets ``func``;
the work itself lives in the domain modules (seismic, audio, image, train).
"""

from __future__ import annotations

import argparse
import json
import sys


def _add_info(subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show versions, compiled kernels and devices",
        description="Show the pydenoise and torch versions, which kernels are compiled in, and the devices.",
        epilog="example: pydenoise info",
    )
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")
    parser.set_defaults(func=_run_info)


def _run_info(args) -> int:
    import pydenoise

    facts = pydenoise.info()
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        width = max(map(len, facts))
        for key, value in facts.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a denoiser (images mode: --images DIR)",
        description="Train a model. With --images DIR: a convolutional DAE (--arch conv) or the 16×16 patch DDAE "
        "(--arch patch) on random crops of every image under DIR, white Gaussian noise drawn on the fly.",
        epilog="examples:\n"
        "  pydenoise train --images photos/ -o faces.safetensors --arch conv --variant batchnorm --latent 16 --crop 24\n"
        "  pydenoise train --images photos/ -o patches.safetensors --arch patch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    parser.add_argument("--batch", type=int, default=None, help="examples per step (default 64 conv, 512 patch)")
    parser.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate (cosine decay)")
    parser.add_argument("--seed", type=int, default=0)
    from pydenoise.imagetrain import add_image_arguments

    add_image_arguments(parser)
    parser.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from pydenoise.imagetrain import run_image_training

    if args.images is None:
        raise SystemExit("pydenoise train: --images DIR is required in this build (trace training: see the docs)")
    return run_image_training(args)


def _add_compare(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare image denoisers (filters, patch DAE, TV, NL-means, BM3D) on one image",
        description="Add white Gaussian noise of standard deviation --sigma (0..255 scale, unclipped) to IMAGE, "
        "denoise it with every method and print PSNR, SSIM and time per method; optionally write a montage PNG.",
        epilog="example: pydenoise compare photo.png --sigma 25 --montage compare.png",
    )
    parser.add_argument("image", help="clean image file (PNG, JPEG, TIFF); colour is compared in colour")
    parser.add_argument("--sigma", type=float, default=25.0, help="noise standard deviation, 0..255 scale (default 25)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--methods", nargs="+", default=None, help="subset of methods to run (default: all)")
    parser.add_argument("--model", default="image", help="patch model name or .safetensors path (default image)")
    parser.add_argument("--montage", metavar="PNG", help="write the images side by side to this PNG")
    parser.set_defaults(func=_run_compare)


def _run_compare(args) -> int:
    import skimage.io

    from pydenoise.comparison import compare, montage

    clean = skimage.io.imread(args.image)
    if clean.dtype.name != "uint8":
        raise SystemExit(f"pydenoise compare: {args.image} is {clean.dtype}; an 8-bit image is expected")
    if clean.ndim == 3 and clean.shape[-1] == 4:
        raise SystemExit(f"pydenoise compare: {args.image} has an alpha channel; save it as RGB or grayscale")
    channel_axis = -1 if clean.ndim == 3 else None
    _, results = compare(clean, args.sigma, seed=args.seed, methods=args.methods, channel_axis=channel_axis,
                         model=args.model)
    print(f"{args.image}  {clean.shape}  sigma {args.sigma:g}")
    print(f"{'method':<12} {'PSNR dB':>8} {'SSIM':>6} {'time s':>8}")
    for r in results:
        print(f"{r.method:<12} {r.psnr:8.2f} {r.ssim:6.3f} {r.seconds:8.3f}")
    if args.montage:
        montage(clean, results, args.montage, title=f"{args.image}, sigma {args.sigma:g}")
        print(f"montage: {args.montage}")
    return 0


COMMANDS = [_add_info, _add_train, _add_compare]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="pydenoise",
        description="Real-time denoising autoencoders for seismic traces, audio and images.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pydenoise`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
