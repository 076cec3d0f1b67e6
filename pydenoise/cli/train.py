"""``pydenoise train``: train or fine-tune a trace model (seismic) or an image model."""

from __future__ import annotations

import argparse
import sys


def add_train(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune a trace denoiser (noise drawn on the fly)",
        description="Train a DDAE on synthetic earthquakes (or your event recordings) mixed on the fly with real "
        "and synthetic noise, or fine-tune a shipped model on your own recordings. Writes the best model "
        "(.safetensors), a CSV log, a loss-curve PNG and a checkpoint (--resume continues from it).",
        epilog="examples:\n"
        "  pydenoise train -o my.safetensors --mode nldae --epochs 40\n"
        "  pydenoise train -o tuned.safetensors --init seismic --signal events/*.mseed --noise quiet/*.mseed",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", required=True, help="model file to write (.safetensors)")
    parser.add_argument(
        "--mode",
        choices=("dae", "nldae"),
        default=None,
        help="learn the clean window (dae) or the noise (nldae); default nldae, or the --init model's",
    )
    parser.add_argument("--init", metavar="MODEL", help="fine-tune this model (shipped name or .safetensors path)")
    parser.add_argument(
        "--signal",
        nargs="+",
        default=[],
        metavar="FILE",
        help="event recordings to cut clean windows from (default: synthetic earthquakes)",
    )
    parser.add_argument(
        "--noise",
        nargs="+",
        default=[],
        metavar="FILE",
        help="quiet recordings to draw noise from (default: ObsPy's bundled ref_STS2)",
    )
    parser.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="layer widths, window first and last (default 256 512 256 128 128 256 512 256)",
    )
    parser.add_argument("--sample-rate", type=float, default=None, help="Hz (default 100, or the --init model's)")
    parser.add_argument("--hop", type=int, default=32, help="default hop stored in the model (default 32)")
    parser.add_argument(
        "--snr",
        type=float,
        nargs=2,
        default=(-10.0, 40.0),
        metavar=("LOW", "HIGH"),
        help="training SNR range in dB (default -10 40)",
    )
    parser.add_argument(
        "--drift",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="share of training traces whose noise gets a sensor drift (offset + trend up to 30x "
        "the noise RMS), so that the model removes drift instead of failing on it (default 0)",
    )
    parser.add_argument(
        "--noise-floor",
        type=float,
        default=None,
        metavar="SECONDS",
        help="normalise each window by sqrt(RMS x noise floor), the floor tracked over this many "
        "seconds (default: by its RMS alone; or the --init model's)",
    )
    parser.add_argument(
        "--trace-samples",
        type=int,
        default=None,
        help="length of the training traces windows are cut from (default 1024, or two noise-floor "
        "histories if longer)",
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps-per-epoch", type=int, default=250)
    parser.add_argument(
        "--batch", type=int, default=None, help="windows per step (default 256; images: 64 conv, 512 patch)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate (cosine decay)")
    parser.add_argument("--validation-windows", type=int, default=4096, help="size of the fixed validation set")
    parser.add_argument("--patience", type=int, default=8, help="epochs without improvement before stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from the output's .ckpt checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from pydenoise.image.train import add_image_arguments

    add_image_arguments(parser)
    parser.set_defaults(func=_run_train)


def _run_train(args) -> int:
    if args.images is not None:
        from pydenoise.image.train import run_image_training

        return run_image_training(args)
    from pydenoise.seismic.train import TrainConfig, command_line, train

    settings = {
        "mode": args.mode or "nldae",
        "sample_rate": args.sample_rate or 100.0,
        "noise_floor_s": args.noise_floor,
    }
    if args.init is not None:
        import pydenoise

        base = pydenoise.load(args.init)
        settings = {
            "mode": args.mode or ("nldae" if base.residual else "dae"),
            "sample_rate": args.sample_rate or base.sample_rate or 100.0,
            "noise_floor_s": args.noise_floor if args.noise_floor is not None else base.noise_floor_s,
        }
    if args.widths is not None:
        if args.init is not None:
            print("pydenoise train: --widths cannot change the architecture of an --init model", file=sys.stderr)
            return 2
        settings["widths"] = tuple(args.widths)
    config = TrainConfig(
        output=args.output,
        init=args.init,
        signal_files=args.signal,
        noise_files=args.noise,
        hop=args.hop,
        snr_db=tuple(args.snr),
        drift_share=args.drift,
        trace_samples=args.trace_samples,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch=args.batch or 256,
        lr=args.lr,
        patience=args.patience,
        validation_windows=args.validation_windows,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
        command=command_line(args.argv),
        **settings,
    )
    try:
        result = train(config)
    except ValueError as error:  # bad settings or recordings: named in the message, no traceback
        print(f"pydenoise train: {error}", file=sys.stderr)
        return 2
    print(f"best validation loss {result.best_validation_loss:.5f} at epoch {result.best_epoch}: {result.model_path}")
    print(f"log {result.log_path}, loss curve {result.plot_path}")
    return 0
