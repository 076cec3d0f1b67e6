"""``pydenoise denoise``: files of any domain (picked by extension) to denoised files, written atomically."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path

from pydenoise.cli.interrupt import raise_if_stopped

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

    On any error or Ctrl-C the temporary file is removed, so no half-written output is ever left behind
    (also after a Ctrl-C that C code swallowed mid-write: :func:`~pydenoise.cli.interrupt.raise_if_stopped`).
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=f".part{destination.suffix}", dir=destination.parent
    )
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; the output gets the usual permissions
    try:
        yield Path(temporary)
        raise_if_stopped()
        os.replace(temporary, destination)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


HIGHPASS_HELP = (
    "high-pass each trace causally at HZ before denoising (for example 0.005), which takes out sensor "
    "drift: the model fails on a trace whose level wanders by more than its noise"
)


LONG_PERIOD_HELP = (
    "with or without the long-period path, which keeps long-period wave trains (teleseisms, large "
    "regional events) that 2.56 s windows take for microseism, and delays streams to 24 s (default: "
    "as the model says; the seismic model has it)"
)


def trace_model(args, default: str):
    """The ``--model`` (or ``default``) as a Denoiser; ``--postfilter`` / ``--no-postfilter`` add or remove its
    spectral post-filter (default: as the model file says), ``--highpass HZ`` high-passes its input,
    ``--long-period`` / ``--no-long-period`` add or remove the long-period path."""
    from pydenoise.core.denoiser import load

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
    after = seismic.denoise(before, model=trace_model(args, "seismic"), hop=args.hop, resample=not args.no_resample)
    with atomic_path(destination) as temporary:
        seismic.write(after, temporary, output_format)
    if args.plot:
        with atomic_path(destination.with_name(destination.name + ".png")) as temporary:
            seismic.plot_comparison(before, after, temporary)


def _denoise_audio_file(source: Path, destination: Path, args) -> None:
    from pydenoise import audio
    from pydenoise.audio.offline import sound_file_info

    def announce(message: str) -> None:
        print(f"pydenoise denoise: {source}: {message}", file=sys.stderr)

    default = audio.speech_model_for(sound_file_info(source).samplerate)
    with atomic_path(destination) as temporary:  # keeps the extension, so the output format follows it
        audio.denoise_file(
            source,
            temporary,
            model=trace_model(args, default),
            hop=args.hop,
            resample=not args.no_resample,
            announce=announce,
        )


def _denoise_image_file(source: Path, destination: Path, args) -> None:
    import skimage.io

    from pydenoise import image

    if args.postfilter is not None or args.highpass is not None or args.long_period is not None:
        raise ValueError(
            "--postfilter, --no-postfilter, --highpass and --long-period apply to traces and sound, not to images"
        )
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
        raise FileNotFoundError(f"no input files in {', '.join(inputs)}")
    target = Path(output)
    into_folder = len(sources) > 1 or folder_given or target.is_dir() or output.endswith(os.sep)
    pairs = [(source, target / source.name if into_folder else target) for source in sources]
    destinations = [destination.resolve() for _, destination in pairs]
    if len(set(destinations)) < len(destinations):
        raise ValueError("two inputs have the same file name; they would write the same output file")
    return pairs


def add_denoise(subparsers) -> None:
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
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file for one input; a folder for several inputs (created if needed)",
    )
    parser.add_argument(
        "--model",
        help="model name or .safetensors path (default: seismic; sound files: speech_mask16k up to 16 kHz, "
        "else speech_mask48k)",
    )
    parser.add_argument("--hop", type=int, help="hop between windows (divides the window; default: the model's)")
    parser.add_argument(
        "--no-resample",
        action="store_true",
        help="reject traces or sound files whose sampling rate differs from the model's instead of resampling",
    )
    parser.add_argument("--plot", action="store_true", help="also write OUT.png: each trace before and after")
    parser.add_argument(
        "--postfilter",
        action=argparse.BooleanOptionalAction,
        help="with or without the spectral post-filter, which removes stationary noise the network "
        "leaves (default: as the model says; the seismic model has it)",
    )
    parser.add_argument("--highpass", type=float, metavar="HZ", help=HIGHPASS_HELP)
    parser.add_argument("--long-period", action=argparse.BooleanOptionalAction, help=LONG_PERIOD_HELP)
    parser.set_defaults(func=_run_denoise)


def _run_denoise(args) -> int:
    from tqdm import tqdm

    try:
        pairs = _plan_outputs(args.inputs, args.output)
    except FileNotFoundError as error:  # bad input: nothing to denoise
        print(f"pydenoise denoise: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # usage: outputs that cannot all be written
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
