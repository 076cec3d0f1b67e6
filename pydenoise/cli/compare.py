"""``pydenoise compare``: every image denoiser on one image, with PSNR, SSIM and time."""

from __future__ import annotations


def add_compare(subparsers) -> None:
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

    from pydenoise.image.compare import compare, montage

    clean = skimage.io.imread(args.image)
    if clean.dtype.name != "uint8":
        raise SystemExit(f"pydenoise compare: {args.image} is {clean.dtype}; an 8-bit image is expected")
    if clean.ndim == 3 and clean.shape[-1] == 4:
        raise SystemExit(f"pydenoise compare: {args.image} has an alpha channel; save it as RGB or grayscale")
    channel_axis = -1 if clean.ndim == 3 else None
    _, results = compare(
        clean, args.sigma, seed=args.seed, methods=args.methods, channel_axis=channel_axis, model=args.model
    )
    print(f"{args.image}  {clean.shape}  sigma {args.sigma:g}")
    print(f"{'method':<12} {'PSNR dB':>8} {'SSIM':>6} {'time s':>8}")
    for r in results:
        print(f"{r.method:<12} {r.psnr:8.2f} {r.ssim:6.3f} {r.seconds:8.3f}")
    if args.montage:
        montage(clean, results, args.montage, title=f"{args.image}, sigma {args.sigma:g}")
        print(f"montage: {args.montage}")
    return 0
