"""``pydenoise live``: microphone to speakers, denoised, with a fixed latency."""

from __future__ import annotations

import argparse
import json
import sys


def add_live(subparsers) -> None:
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
    parser.add_argument(
        "--model", help="shipped model name or .safetensors path (default: speech_mask16k up to 16 kHz, else 48k)"
    )
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
        result = audio.live(
            _device(args.input),
            _device(args.output),
            model=args.model,
            blocksize=args.blocksize,
            hop=args.hop,
            samplerate=args.samplerate,
            channels=args.channels,
            duration=args.duration,
        )
    except (RuntimeError, ValueError) as error:  # no PortAudio, unknown device, bad model
        print(f"pydenoise live: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    return 0
