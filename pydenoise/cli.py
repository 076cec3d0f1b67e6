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
    parser.add_argument("--mode", choices=("dae", "nldae"), default=None,
                        help="learn the clean window (dae) or the noise (nldae); default nldae, or the --init model's")
    parser.add_argument("--init", metavar="MODEL", help="fine-tune this model (shipped name or .safetensors path)")
    parser.add_argument("--signal", nargs="+", default=[], metavar="FILE",
                        help="event recordings to cut clean windows from (default: synthetic earthquakes)")
    parser.add_argument("--noise", nargs="+", default=[], metavar="FILE",
                        help="quiet recordings to draw noise from (default: ObsPy's bundled ref_STS2)")
    parser.add_argument("--widths", type=int, nargs="+", default=None, metavar="N",
                        help="layer widths, window first and last (default 256 512 256 128 128 256 512 256)")
    parser.add_argument("--sample-rate", type=float, default=None, help="Hz (default 100, or the --init model's)")
    parser.add_argument("--hop", type=int, default=32, help="default hop stored in the model (default 32)")
    parser.add_argument("--snr", type=float, nargs=2, default=(-10.0, 40.0), metavar=("LOW", "HIGH"),
                        help="training SNR range in dB (default -10 40)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps-per-epoch", type=int, default=250)
    parser.add_argument("--batch", type=int, default=256, help="windows per step (default 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate (cosine decay)")
    parser.add_argument("--validation-windows", type=int, default=4096, help="size of the fixed validation set")
    parser.add_argument("--patience", type=int, default=8, help="epochs without improvement before stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from the output's .ckpt checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from pydenoise.train import TrainConfig, command_line, train

    settings = {"mode": args.mode or "nldae", "sample_rate": args.sample_rate or 100.0}
    if args.init is not None:
        import pydenoise

        base = pydenoise.load(args.init)
        settings = {"mode": args.mode or ("nldae" if base.residual else "dae"),
                    "sample_rate": args.sample_rate or base.sample_rate or 100.0}
    if args.widths is not None:
        if args.init is not None:
            raise SystemExit("pydenoise train: --widths cannot change the architecture of an --init model")
        settings["widths"] = tuple(args.widths)
    config = TrainConfig(
        output=args.output, init=args.init, signal_files=args.signal, noise_files=args.noise, hop=args.hop,
        snr_db=tuple(args.snr), epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch=args.batch,
        lr=args.lr, patience=args.patience, validation_windows=args.validation_windows, seed=args.seed,
        device=args.device, resume=args.resume, progress=not args.no_progress, command=command_line(args.argv),
        **settings,
    )
    result = train(config)
    print(f"best validation loss {result.best_validation_loss:.5f} at epoch {result.best_epoch}: {result.model_path}")
    print(f"log {result.log_path}, loss curve {result.plot_path}")
    return 0


COMMANDS = [_add_info, _add_train]


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
    args.argv = sys.argv[1:] if argv is None else list(argv)  # recorded by commands that log how they ran
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
