"""``pydenoise seedlink``: denoise a SeedLink feed in real time into miniSEED day files."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from pydenoise.cli.denoise import HIGHPASS_HELP, LONG_PERIOD_HELP, trace_model


def _seedlink_stream(text: str) -> tuple[str, str, str]:
    """``NET_STA[:SELECTORS]`` -> (network, station, selectors); selectors default to every channel."""
    station_part, _, selectors = text.partition(":")
    network, _, station = station_part.partition("_")
    if not network or not station:
        raise argparse.ArgumentTypeError(f"expected NET_STA[:SELECTORS] (e.g. BW_RJOB:EHZ), got {text!r}")
    return network, station, selectors.strip() or "???"


def add_seedlink(subparsers) -> None:
    parser = subparsers.add_parser(
        "seedlink",
        help="denoise a SeedLink feed live into miniSEED files",
        description=(
            "Connect to a SeedLink server, denoise the selected streams as packets arrive, and append the denoised "
            "traces to DIR/NET.STA.LOC.CHA.YYYY.DDD.mseed (a stream whose codes cannot name a file there, such as "
            "'/' or '..', is refused with a logged error). Reconnects after a dropped connection; Ctrl-C or SIGTERM "
            "stops and writes the samples still held back by the latency (exit status 0)."
        ),
        epilog="example: pydenoise seedlink localhost:18000 -s BW_RJOB:EHZ -s GE_APE -o live/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("server", metavar="HOST:PORT", help="SeedLink server")
    parser.add_argument(
        "-s",
        "--stream",
        dest="streams",
        action="append",
        required=True,
        type=_seedlink_stream,
        metavar="NET_STA[:SELECTORS]",
        help="station to follow; SELECTORS space-separated (default ??? = all channels); repeatable",
    )
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the miniSEED files")
    parser.add_argument("--model", default="seismic", help="model name or .safetensors path (default: seismic)")
    parser.add_argument("--hop", type=int, help="hop between windows (default: the model's)")
    parser.add_argument(
        "--postfilter",
        action=argparse.BooleanOptionalAction,
        help="with or without the spectral post-filter (default: as the model says; seismic has it)",
    )
    parser.add_argument("--highpass", type=float, metavar="HZ", help=HIGHPASS_HELP)
    parser.add_argument(
        "--long-period", action=argparse.BooleanOptionalAction, help=LONG_PERIOD_HELP + "; --no-long-period: 2.2 s"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without data before reconnecting (default: 60)"
    )
    parser.add_argument("--reconnect-delay", type=float, default=5.0, help="seconds between attempts (default: 5)")
    parser.set_defaults(func=_run_seedlink)


def _run_seedlink(args) -> int:
    from obspy.clients.seedlink.easyseedlink import EasySeedLinkClientException
    from obspy.clients.seedlink.seedlinkexception import SeedLinkException

    from pydenoise import seismic

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("pydenoise").setLevel(logging.INFO)
    writer = seismic.MiniSeedDayFiles(args.output)
    try:
        model = trace_model(args, "seismic")
        client = seismic.SeedLinkDenoiser(
            args.server, writer, model=model, hop=args.hop, timeout=args.timeout, reconnect_delay=args.reconnect_delay
        )
        for network, station, selectors in args.streams:
            client.select_stream(network, station, selectors)
        latency = model.stream(hop=args.hop).latency  # (checks --hop too)
    except (ValueError, TypeError, OSError, SeedLinkException, EasySeedLinkClientException) as error:
        print(f"pydenoise seedlink: {getattr(error, 'value', error)}", file=sys.stderr)  # SeedLinkException.value
        return 1
    if model.sample_rate:
        print(f"pydenoise seedlink: output lags the feed by about {latency / model.sample_rate:.1f} s", file=sys.stderr)
    stop_on = (signal.SIGINT, signal.SIGTERM)  # both stop cleanly: the held-back tails are written
    previous = {number: signal.signal(number, lambda *_: client.stop()) for number in stop_on}
    try:
        client.run_forever()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    print(f"pydenoise seedlink: {writer.traces_written} denoised traces written to {args.output}", file=sys.stderr)
    return 0
