"""The ``pydenoise`` command line: one sub-command per job, each with ``--help`` and an example.

Each sub-command is a ``_add_<name>(subparsers)`` function that declares its arguments and sets ``func``;
the work itself lives in the domain modules (seismic, audio, image, train).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path


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


# ------------------------------------------------------------------------------------------- denoise

#: File types that are not seismic, by extension; everything else goes to ObsPy (miniSEED, SAC, GSE2, ...).
DOMAINS_BY_EXTENSION = {
    ".wav": "audio",
    ".flac": "audio",
    ".ogg": "audio",
    ".oga": "audio",
    ".aiff": "audio",
    ".aif": "audio",
    ".w64": "audio",
    ".caf": "audio",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}


def file_domain(path) -> str:
    """Which domain handles a file: ``"audio"``, ``"image"`` or ``"seismic"`` (any format ObsPy reads)."""
    return DOMAINS_BY_EXTENSION.get(Path(path).suffix.lower(), "seismic")


@contextmanager
def atomic_path(destination: Path):
    """Yield a temporary path beside ``destination`` (same extension) that replaces it only on success.

    On any error or Ctrl-C the temporary file is removed, so no half-written output is ever left behind.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=f".part{destination.suffix}",
                                         dir=destination.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; the output gets the usual permissions
    try:
        yield Path(temporary)
        os.replace(temporary, destination)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


HIGHPASS_HELP = ("high-pass each trace causally at HZ before denoising (for example 0.005), which takes out sensor "
                 "drift: the model fails on a trace whose level wanders by more than its noise")


LONG_PERIOD_HELP = ("with or without the long-period path, which keeps long-period wave trains (teleseisms, large "
                    "regional events) that 2.56 s windows take for microseism, and delays streams to 24 s (default: "
                    "as the model says; the seismic model has it)")


def _trace_model(args, default: str):
    """The ``--model`` (or ``default``) as a Denoiser; ``--postfilter`` / ``--no-postfilter`` add or remove its
    spectral post-filter (default: as the model file says), ``--highpass HZ`` high-passes its input,
    ``--long-period`` / ``--no-long-period`` add or remove the long-period path."""
    from pydenoise.denoiser import load

    model = load(args.model or default)
    if args.highpass is not None:
        model = model.with_highpass(args.highpass)
    if args.long_period is not None and args.long_period != (model.long_period is not None):
        model = model.with_long_period() if args.long_period else model.with_long_period(None)
    if args.postfilter is None or args.postfilter == (model.postfilter is not None):
        return model
    return model.with_postfilter() if args.postfilter else model.without_postfilter()


def _denoise_seismic_file(source: Path, destination: Path, args) -> None:
    from pydenoise import seismic

    before = seismic.read(source)
    same_name = destination.name == source.name  # folder output: a name without a known extension keeps the format
    output_format = seismic.output_format(destination, fallback=before[0].stats.get("_format") if same_name else None)
    after = seismic.denoise(before, model=_trace_model(args, "seismic"), hop=args.hop, resample=not args.no_resample)
    with atomic_path(destination) as temporary:
        seismic.write(after, temporary, output_format)
    if args.plot:
        with atomic_path(destination.with_name(destination.name + ".png")) as temporary:
            seismic.plot_comparison(before, after, temporary)


def _denoise_audio_file(source: Path, destination: Path, args) -> None:
    from pydenoise import audio

    def announce(message: str) -> None:
        print(f"pydenoise denoise: {source}: {message}", file=sys.stderr)

    with atomic_path(destination) as temporary:  # keeps the extension, so the output format follows it
        audio.denoise_file(source, temporary, model=_trace_model(args, "speech"), hop=args.hop,
                           resample=not args.no_resample, announce=announce)



def _denoise_image_file(source: Path, destination: Path, args) -> None:
    import skimage.io

    from pydenoise import image

    if args.postfilter is not None or args.highpass is not None or args.long_period is not None:
        raise ValueError("--postfilter, --no-postfilter, --highpass and --long-period apply to traces and sound, "
                         "not to images")
    picture = skimage.io.imread(source)
    if picture.dtype.name != "uint8":
        raise ValueError(f"an 8-bit image is expected, got {picture.dtype}")
    if picture.ndim == 3 and picture.shape[-1] not in (1, 3):
        raise ValueError(f"grayscale or RGB expected, got {picture.shape[-1]} channels (alpha is not denoised)")
    channel_axis = -1 if picture.ndim == 3 else None
    out = image.denoise(picture, model=args.model or "image", channel_axis=channel_axis)  # blind: σ estimated
    with atomic_path(destination) as temporary:
        skimage.io.imsave(temporary, out, check_contrast=False)


#: The function that denoises one file of each domain: ``route(source, destination, args)``.
ROUTES = {"seismic": _denoise_seismic_file, "audio": _denoise_audio_file, "image": _denoise_image_file}


def _plan_outputs(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """(source, destination) pairs: ``output`` is a folder for several inputs or a folder input, else a file."""
    sources, folder_given = [], False
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            folder_given = True
            sources += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            sources.append(path)
    if not sources:
        raise ValueError(f"no input files in {', '.join(inputs)}")
    target = Path(output)
    into_folder = len(sources) > 1 or folder_given or target.is_dir() or output.endswith(os.sep)
    pairs = [(source, target / source.name if into_folder else target) for source in sources]
    destinations = [destination.resolve() for _, destination in pairs]
    if len(set(destinations)) < len(destinations):
        raise ValueError("two inputs have the same file name; they would write the same output file")
    return pairs


def _add_denoise(subparsers) -> None:
    parser = subparsers.add_parser(
        "denoise",
        help="denoise files: miniSEED, SAC or any format ObsPy reads; WAV, FLAC, OGG sound files",
        description=(
            "Denoise waveform files. Ids, start times, sampling rates and sample counts are kept; gaps stay gaps; "
            "the output format follows the output name (.mseed, .sac, ...; in an output folder, names without such an "
            "extension keep the input's format). "
            "Sound files (.wav, .flac, .ogg, .aiff, .w64, .caf) go through the speech model: any sampling rate "
            "(resampled to the model's and back), every channel, the input's subtype where the output format "
            "allows. 8-bit images (.png, .jpg, .tif) go through the image model (noise level estimated). "
            "Outputs are written atomically; a file that fails is reported and the others go on."
        ),
        epilog=(
            "examples:\n"
            "  pydenoise denoise day.mseed -o day.clean.mseed --plot\n"
            "  pydenoise denoise noisy.wav -o clean.wav\n"
            "  pydenoise denoise raw/ -o clean/ --model my_model.safetensors"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="IN", help="input files, or folders (all their files)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file for one input; a folder for several inputs (created if needed)")
    parser.add_argument("--model", help="model name or .safetensors path (default: seismic; speech for sound files)")
    parser.add_argument("--hop", type=int, help="hop between windows (divides the window; default: the model's)")
    parser.add_argument("--no-resample", action="store_true",
                        help="reject traces or sound files whose sampling rate differs from the model's instead of "
                        "resampling")
    parser.add_argument("--plot", action="store_true", help="also write OUT.png: each trace before and after")
    parser.add_argument("--postfilter", action=argparse.BooleanOptionalAction,
                        help="with or without the spectral post-filter, which removes stationary noise the network "
                        "leaves (default: as the model says; the seismic model has it)")
    parser.add_argument("--highpass", type=float, metavar="HZ", help=HIGHPASS_HELP)
    parser.add_argument("--long-period", action=argparse.BooleanOptionalAction, help=LONG_PERIOD_HELP)
    parser.set_defaults(func=_run_denoise)


def _run_denoise(args) -> int:
    from tqdm import tqdm

    try:
        pairs = _plan_outputs(args.inputs, args.output)
    except ValueError as error:
        print(f"pydenoise denoise: {error}", file=sys.stderr)
        return 2
    failures = 0
    progress = tqdm(pairs, unit="file", desc="denoise", disable=None)
    for source, destination in progress:
        try:
            if source.resolve() == destination.resolve():
                raise ValueError("the output would overwrite the input")
            domain = file_domain(source)
            if domain not in ROUTES:
                raise ValueError(f"{domain} files are not supported by this installation")
            ROUTES[domain](source, destination, args)
        except Exception as error:  # one bad file must not stop the others; it is reported below
            failures += 1
            progress.write(f"pydenoise denoise: {source}: {error}", file=sys.stderr)
    if failures:
        print(f"pydenoise denoise: {failures} of {len(pairs)} files failed", file=sys.stderr)
    return 1 if failures else 0


# ------------------------------------------------------------------------------------------ seedlink


def _seedlink_stream(text: str) -> tuple[str, str, str]:
    """``NET_STA[:SELECTORS]`` -> (network, station, selectors); selectors default to every channel."""
    station_part, _, selectors = text.partition(":")
    network, _, station = station_part.partition("_")
    if not network or not station:
        raise argparse.ArgumentTypeError(f"expected NET_STA[:SELECTORS] (e.g. BW_RJOB:EHZ), got {text!r}")
    return network, station, selectors.strip() or "???"


def _add_seedlink(subparsers) -> None:
    parser = subparsers.add_parser(
        "seedlink",
        help="denoise a SeedLink feed live into miniSEED files",
        description=(
            "Connect to a SeedLink server, denoise the selected streams as packets arrive, and append the denoised "
            "traces to DIR/NET.STA.LOC.CHA.YYYY.DDD.mseed. Reconnects after a dropped connection; Ctrl-C stops "
            "and writes the samples still held back by the latency."
        ),
        epilog="example: pydenoise seedlink localhost:18000 -s BW_RJOB:EHZ -s GE_APE -o live/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("server", metavar="HOST:PORT", help="SeedLink server")
    parser.add_argument("-s", "--stream", dest="streams", action="append", required=True, type=_seedlink_stream,
                        metavar="NET_STA[:SELECTORS]",
                        help="station to follow; SELECTORS space-separated (default ??? = all channels); repeatable")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the miniSEED files")
    parser.add_argument("--model", default="seismic", help="model name or .safetensors path (default: seismic)")
    parser.add_argument("--hop", type=int, help="hop between windows (default: the model's)")
    parser.add_argument("--postfilter", action=argparse.BooleanOptionalAction,
                        help="with or without the spectral post-filter (default: as the model says; seismic has it)")
    parser.add_argument("--highpass", type=float, metavar="HZ", help=HIGHPASS_HELP)
    parser.add_argument("--long-period", action=argparse.BooleanOptionalAction,
                        help=LONG_PERIOD_HELP + "; --no-long-period: 2.2 s")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds without data before reconnecting (default: 60)")
    parser.add_argument("--reconnect-delay", type=float, default=5.0, help="seconds between attempts (default: 5)")
    parser.set_defaults(func=_run_seedlink)


def _run_seedlink(args) -> int:
    from obspy.clients.seedlink.seedlinkexception import SeedLinkException

    from pydenoise import seismic

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("pydenoise").setLevel(logging.INFO)
    writer = seismic.MiniSeedDayFiles(args.output)
    try:
        model = _trace_model(args, "seismic")
        client = seismic.SeedLinkDenoiser(args.server, writer, model=model, hop=args.hop, timeout=args.timeout,
                                          reconnect_delay=args.reconnect_delay)
        for network, station, selectors in args.streams:
            client.select_stream(network, station, selectors)
        latency = model.stream(hop=args.hop).latency  # (checks --hop too)
    except (ValueError, TypeError, OSError, SeedLinkException, seismic.EasySeedLinkClientException) as error:
        print(f"pydenoise seedlink: {getattr(error, 'value', error)}", file=sys.stderr)  # SeedLinkException.value
        return 1
    if model.sample_rate:
        print(f"pydenoise seedlink: output lags the feed by about {latency / model.sample_rate:.1f} s", file=sys.stderr)
    try:
        client.run_forever()
    except KeyboardInterrupt:
        pass
    print(f"pydenoise seedlink: {writer.traces_written} denoised traces written to {args.output}", file=sys.stderr)
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
    parser.add_argument("--drift", type=float, default=0.0, metavar="SHARE",
                        help="share of training traces whose noise gets a sensor drift (offset + trend up to 30x "
                        "the noise RMS), so that the model removes drift instead of failing on it (default 0)")
    parser.add_argument("--noise-floor", type=float, default=None, metavar="SECONDS",
                        help="normalise each window by sqrt(RMS x noise floor), the floor tracked over this many "
                             "seconds (default: by its RMS alone; or the --init model's)")
    parser.add_argument("--trace-samples", type=int, default=None,
                        help="length of the training traces windows are cut from (default 1024, or two noise-floor "
                             "histories if longer)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps-per-epoch", type=int, default=250)
    parser.add_argument("--batch", type=int, default=None,
                        help="windows per step (default 256; images: 64 conv, 512 patch)")
    parser.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate (cosine decay)")
    parser.add_argument("--validation-windows", type=int, default=4096, help="size of the fixed validation set")
    parser.add_argument("--patience", type=int, default=8, help="epochs without improvement before stopping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from the output's .ckpt checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from pydenoise.imagetrain import add_image_arguments

    add_image_arguments(parser)
    parser.set_defaults(func=_run_train)


def _run_train(args) -> int:
    if args.images is not None:
        from pydenoise.imagetrain import run_image_training

        return run_image_training(args)
    from pydenoise.train import TrainConfig, command_line, train

    settings = {"mode": args.mode or "nldae", "sample_rate": args.sample_rate or 100.0,
                "noise_floor_s": args.noise_floor}
    if args.init is not None:
        import pydenoise

        base = pydenoise.load(args.init)
        settings = {"mode": args.mode or ("nldae" if base.residual else "dae"),
                    "sample_rate": args.sample_rate or base.sample_rate or 100.0,
                    "noise_floor_s": args.noise_floor if args.noise_floor is not None else base.noise_floor_s}
    if args.widths is not None:
        if args.init is not None:
            raise SystemExit("pydenoise train: --widths cannot change the architecture of an --init model")
        settings["widths"] = tuple(args.widths)
    config = TrainConfig(
        output=args.output, init=args.init, signal_files=args.signal, noise_files=args.noise, hop=args.hop,
        snr_db=tuple(args.snr), drift_share=args.drift, trace_samples=args.trace_samples, epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch, batch=args.batch or 256,
        lr=args.lr, patience=args.patience, validation_windows=args.validation_windows, seed=args.seed,
        device=args.device, resume=args.resume, progress=not args.no_progress, command=command_line(args.argv),
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


# -------------------------------------------------------------------------------------------- live


def _add_live(subparsers) -> None:
    parser = subparsers.add_parser(
        "live",
        help="denoise the microphone live (duplex audio stream)",
        description="Denoise an input device into an output device in real time through the streaming "
        "denoiser. Prints the algorithmic and device latency, then on Ctrl-C the input overflow, output "
        "underflow and late-frame counts. Needs PortAudio (Debian: libportaudio2).",
        epilog="examples:\n  pydenoise live --list-devices\n  pydenoise live --input 1 --output 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list-devices", action="store_true", help="list the audio devices and exit")
    parser.add_argument("--input", default=None, help="input device id or name substring")
    parser.add_argument("--output", default=None, help="output device id or name substring")
    parser.add_argument("--model", default="speech", help="shipped model name or .safetensors path")
    parser.add_argument("--blocksize", type=int, default=0, help="frames per callback (0: the host's choice)")
    parser.add_argument("--hop", type=int, default=None, help="hop between windows (default: the model's)")
    parser.add_argument("--samplerate", type=float, default=None, help="device rate (default: the input's)")
    parser.add_argument("--channels", type=int, default=1, help="channels in and out")
    parser.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--json", action="store_true", help="print the final counters as JSON")
    parser.set_defaults(func=_run_live)


def _device(text: str | None):
    return int(text) if text is not None and text.isdigit() else text


def _run_live(args) -> int:
    from pydenoise import audio

    try:
        if args.list_devices:
            print(audio.list_devices())
            return 0
        result = audio.live(_device(args.input), _device(args.output), model=args.model, blocksize=args.blocksize,
                            hop=args.hop, samplerate=args.samplerate, channels=args.channels,
                            duration=args.duration)
    except (RuntimeError, ValueError) as error:  # no PortAudio, unknown device, bad model
        print(f"pydenoise live: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    return 0



COMMANDS = [_add_info, _add_denoise, _add_seedlink, _add_train, _add_live, _add_compare]


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
