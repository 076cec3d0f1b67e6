"""The ``pydenoise`` command line: one sub-command per job, each with ``--help`` and an example.

Each sub-command lives in a module of this package as an ``_add_<name>(subparsers)`` function that declares
its arguments and sets ``func``; the work itself lives in the domain packages (seismic, audio, image).
"""

from __future__ import annotations

import argparse
import sys

from pydenoise.cli.archive import add_archive
from pydenoise.cli.compare import add_compare
from pydenoise.cli.denoise import add_denoise
from pydenoise.cli.info import add_info
from pydenoise.cli.live import add_live
from pydenoise.cli.seedlink import add_seedlink
from pydenoise.cli.train import add_train

COMMANDS = [add_info, add_denoise, add_seedlink, add_train, add_live, add_compare, add_archive]


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
