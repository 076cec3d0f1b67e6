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


COMMANDS = [_add_info]


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
