"""SDS archives (ObsPy's ``obspy.clients.filesystem.sds`` layout) for :mod:`pydenoise.seismic.archive`.

``ROOT/YEAR/NET/STA/CHAN.TYPE/NET.STA.LOC.CHAN.TYPE.YEAR.DAY``: one file per channel and day (DAY: day of the
year, three digits). This module finds the channel-days of a date range, checks the codes an output path is
built from, and scans file headers into the gap-free segments of each channel (the archive's tasks need where
a segment began, which may lie days before the day they process).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import obspy
from obspy.io.mseed import InternalMSEEDWarning

__all__ = [
    "ChannelDay",
    "channel_days",
    "check_code",
    "day_path",
    "read_strictly",
    "scan_segments",
    "stitch_segments",
]

DAY = dt.timedelta(days=1)
NS_PER_S = 1_000_000_000
#: Characters of a SEED code (network, station, location, channel); anything else never reaches a path.
_CODE = re.compile(r"[A-Za-z0-9_-]{0,8}")


def check_code(kind: str, code: str) -> str:
    """``code`` if it is a SEED code that is safe in a path (no ``/``, ``..``, NUL or other odd characters)."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"{kind} code {code!r} is not a SEED code (up to 8 letters, digits, '_' or '-')")
    return code


@dataclass(frozen=True, order=True)
class ChannelDay:
    """One channel's day: the unit of work of an archive run."""

    seed_id: str  # NET.STA.LOC.CHA
    day: dt.date
    quality: str = "D"  # the SDS TYPE

    @property
    def codes(self) -> tuple[str, str, str, str]:
        return tuple(self.seed_id.split("."))

    def path(self, root) -> Path:
        return day_path(root, self.seed_id, self.day, self.quality)

    def neighbour(self, days: int) -> ChannelDay:
        return ChannelDay(self.seed_id, self.day + dt.timedelta(days=days), self.quality)

    @property
    def start_ns(self) -> int:
        return day_start_ns(self.day)


def day_start_ns(day: dt.date) -> int:
    return obspy.UTCDateTime(day.year, day.month, day.day).ns


def day_path(root, seed_id: str, day: dt.date, quality: str = "D") -> Path:
    """The SDS path of a channel-day; every code is checked before it becomes part of a path."""
    net, sta, loc, cha = seed_id.split(".")
    for kind, code in (("network", net), ("station", sta), ("location", loc), ("channel", cha), ("type", quality)):
        check_code(kind, code)
    doy = day.timetuple().tm_yday
    return Path(root) / f"{day.year}" / net / sta / f"{cha}.{quality}" / f"{seed_id}.{quality}.{day.year}.{doy:03d}"


def channel_days(root, start: dt.date, end: dt.date, select: str = "*") -> tuple[list[ChannelDay], list[tuple]]:
    """The channel-days of ``root`` in ``[start, end)`` whose ``NET.STA.LOC.CHA`` matches the glob ``select``.

    Returns the channel-days and ``(path, reason)`` for each file in the range whose name or codes are
    unusable (reported, not skipped silently).
    """
    if end <= start:
        raise ValueError(f"--end must come after --start, got {start} to {end}")
    found, rejected = [], []
    for year in range(start.year, (end - DAY).year + 1):
        for path in sorted(Path(root).glob(f"{year}/*/*/*/*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            try:
                channel_day = _parse(path, root)
            except ValueError as error:  # reported where its name's first four parts match the selection
                if fnmatchcase(".".join(path.name.split(".")[:4]), select):
                    rejected.append((path, str(error)))
                continue
            if start <= channel_day.day < end and fnmatchcase(channel_day.seed_id, select):
                found.append(channel_day)
    return sorted(found), rejected


def _parse(path: Path, root) -> ChannelDay:
    parts = path.name.split(".")
    if len(parts) != 7:
        raise ValueError(f"not an SDS file name NET.STA.LOC.CHAN.TYPE.YEAR.DAY: {path.name!r}")
    net, sta, loc, cha, quality, year, doy = parts
    if not (year.isdigit() and doy.isdigit() and len(doy) == 3):
        raise ValueError(f"not an SDS year and day of year: {year!r}.{doy!r}")
    day = dt.date(int(year), 1, 1) + dt.timedelta(days=int(doy) - 1)
    if day.year != int(year):
        raise ValueError(f"day of year {doy} does not exist in {year}")
    channel_day = ChannelDay(f"{net}.{sta}.{loc}.{cha}", day, quality)
    if channel_day.path(root) != path:
        raise ValueError(f"file is not where SDS puts it (expected {channel_day.path(root)})")
    return channel_day


def read_strictly(path, headonly: bool = False) -> obspy.Stream:
    """A miniSEED file; where libmseed would skip a corrupt stretch with a warning, an error naming the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", InternalMSEEDWarning)
        try:
            return obspy.read(str(path), format="MSEED", headonly=headonly)
        except InternalMSEEDWarning as warning:
            raise ValueError(f"{Path(path).name} is corrupt: {warning}") from None


def scan_segments(path) -> list[tuple[int, int, float]]:
    """``(start_ns, samples, rate)`` of each contiguous run of records in a miniSEED file (headers only)."""
    stream = read_strictly(path, headonly=True)
    return [(t.stats.starttime.ns, int(t.stats.npts), float(t.stats.sampling_rate)) for t in stream]


def stitch_segments(pieces: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Gap-free segments ``(start_ns, samples, rate)`` from scanned pieces: a piece continues the previous one
    when it starts within half a sample of where that ended, at the same rate."""
    segments: list[list] = []
    for start, samples, rate in sorted(pieces):
        if segments:
            last = segments[-1]
            expected = last[0] + round(last[1] * NS_PER_S / last[2])
            if rate == last[2] and abs(start - expected) < NS_PER_S / (2 * rate):
                last[1] += samples
                continue
        segments.append([start, samples, rate])
    return [tuple(segment) for segment in segments]
