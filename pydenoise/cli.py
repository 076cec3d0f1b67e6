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


#: File extensions of sound files (anything libsndfile reads), routed to :func:`pydenoise.audio.denoise_file`.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64", ".caf")


def _add_denoise(subparsers) -> None:
    parser = subparsers.add_parser(
        "denoise",
        help="denoise a file (the kind follows the extension)",
        description="Denoise a file into another. Sound files (" + ", ".join(AUDIO_EXTENSIONS) + ") go through "
        "the speech model at any sampling rate (resampled explicitly to the model's rate and back), every "
        "channel on its own, written in the input's format and subtype where the output format allows.",
        epilog="example: pydenoise denoise noisy.wav -o clean.wav",
    )
    parser.add_argument("input", help="the noisy file")
    parser.add_argument("-o", "--output", required=True, help="where to write the denoised file")
    parser.add_argument("--model", default=None, help="shipped model name or .safetensors path "
                        "(default: the domain's model, e.g. speech)")
    parser.add_argument("--hop", type=int, default=None, help="hop between windows (default: the model's)")
    parser.add_argument("--device", default=None, help="torch device, e.g. cuda")
    parser.set_defaults(func=_run_denoise)


def _run_denoise(args) -> int:
    from pathlib import Path

    extension = Path(args.input).suffix.lower()
    if extension not in AUDIO_EXTENSIONS:
        raise SystemExit(f"pydenoise denoise: unsupported input file type {extension!r}; sound files: "
                         + ", ".join(AUDIO_EXTENSIONS))
    from pydenoise import audio

    result = audio.denoise_file(args.input, args.output, model=args.model or "speech", hop=args.hop,
                                device=args.device)
    print(f"wrote {args.output}: {result['frames']} frames x {result['channels']} channels at "
          f"{result['sample_rate']:g} Hz ({result['subtype']}) in {result['seconds']:.2f} s")
    return 0


def _add_live(subparsers) -> None:
    parser = subparsers.add_parser(
        "live",
        help="denoise the microphone live (duplex audio stream)",
        description="Denoise an input device into an output device in real time through the streaming "
        "denoiser. Prints the algorithmic and device latency, then on Ctrl-C the input overflow, output "
        "underflow and late-frame counts. Needs PortAudio (Debian: libportaudio2).",
        epilog="examples: pydenoise live --list-devices; pydenoise live --input 1 --output 3",
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

    if args.list_devices:
        print(audio.list_devices())
        return 0
    result = audio.live(_device(args.input), _device(args.output), model=args.model, blocksize=args.blocksize,
                        hop=args.hop, samplerate=args.samplerate, channels=args.channels, duration=args.duration)
    if args.json:
        print(json.dumps(result))
    return 0


COMMANDS = [_add_info, _add_denoise, _add_live]


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
