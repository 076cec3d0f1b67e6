"""The ``pydenoise`` command line: one sub-command per job, each with ``--help`` and an example.

Each sub-command lives in a module of this package as an ``_add_<name>(subparsers)`` function that declares
its arguments and sets ``func``; the work itself lives in the domain packages (seismic, audio, image).
"""

from __future__ import annotations

import argparse
import signal
import sys

from pydenoise.cli.archive import add_archive
from pydenoise.cli.compare import add_compare
from pydenoise.cli.denoise import add_denoise
from pydenoise.cli.info import add_info
from pydenoise.cli.interrupt import stop_signals_raised
from pydenoise.cli.live import add_live
from pydenoise.cli.seedlink import add_seedlink
from pydenoise.cli.train import add_train

COMMANDS = [add_info, add_denoise, add_seedlink, add_train, add_live, add_compare, add_archive]

#: Exit statuses of every command (docs/architecture.md says the same); a signal N gives 128 + N, as in shells.
EXIT_STATUS_HELP = """exit status:
  0    success
  1    bad input or partial failure (one failing file is reported and the others go on)
  2    usage: bad or conflicting arguments
  130  interrupted by Ctrl-C (143 for SIGTERM); outputs are written atomically, so no half-written file is
       left (seedlink treats both as a stop: it writes what it holds back and exits 0)"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="pydenoise",
        description="Real-time denoising autoencoders for seismic traces, audio and images.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pydenoise`` console script; returns the exit status (:data:`EXIT_STATUS_HELP`).

    SIGTERM unwinds like Ctrl-C (as ``SystemExit(143)``), so the atomic writes remove their temporary files.
    """
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # recorded by commands that log how they ran
    try:
        with stop_signals_raised():
            return args.func(args)
    except KeyboardInterrupt:
        print(f"pydenoise {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
