"""Seismic files: reading and writing every ObsPy format, before/after plots, and miniSEED day files of a
real-time feed.
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
from contextlib import suppress
from pathlib import Path

import numpy as np
import obspy

from pydenoise.seismic.paths import MINISEED2_CODE_LENGTHS, path_inside, trace_file_name

__all__ = ["FORMATS_BY_EXTENSION", "read", "write", "output_format", "plot_comparison", "MiniSeedDayFiles"]

logger = logging.getLogger(__name__)


#: Output formats by file name extension (lower case).
FORMATS_BY_EXTENSION = {
    ".mseed": "MSEED",
    ".miniseed": "MSEED",
    ".ms": "MSEED",
    ".sac": "SAC",
    ".gse2": "GSE2",
    ".gse": "GSE2",
    ".ah": "AH",
    ".q": "Q",
    ".slist": "SLIST",
    ".tspair": "TSPAIR",
    ".su": "SU",
    ".pickle": "PICKLE",
}


_ONE_TRACE_FORMATS = {"SAC", "SACXY", "SU"}

#: Bytes per record of the day files.
_RECORD = 512


def read(path) -> obspy.Stream:
    """Read a waveform file in any format ObsPy knows; a clear ``ValueError`` otherwise (missing, unknown format,
    unreadable, no traces)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError("no such file")
    try:
        stream = obspy.read(os.fspath(path))
    except TypeError:  # ObsPy's "Unknown format for file ..."
        raise ValueError("not a waveform format ObsPy can read") from None
    except Exception as error:  # ObsPy's readers raise many types (InternalMSEEDError, struct.error, ...)
        if isinstance(error, ctypes.ArgumentError) and "KeyboardInterrupt" in str(error):
            # Ctrl-C (or SIGTERM, which the CLI turns into it) inside libmseed's ctypes callback arrives wrapped
            # as an ArgumentError: it is a stop, not a bad file.
            raise KeyboardInterrupt from error
        reason = " ".join(str(error).split())
        raise ValueError(f"unreadable ({type(error).__name__}: {reason})") from None
    if len(stream) == 0:
        raise ValueError("the file holds no traces")
    return stream


def output_format(path, fallback: str | None = None) -> str:
    """ObsPy format name for an output file, from its extension; ``fallback`` (the input's) otherwise."""
    extension = Path(path).suffix.lower()
    if extension in FORMATS_BY_EXTENSION:
        return FORMATS_BY_EXTENSION[extension]
    if fallback:
        return fallback
    known = ", ".join(sorted(FORMATS_BY_EXTENSION))
    raise ValueError(f"cannot tell the output format from the name {Path(path).name!r}; use one of {known}")


def write(stream: obspy.Stream, path, format: str) -> None:
    """Write ``stream`` to ``path`` in ObsPy ``format`` (float data as FLOAT64 in miniSEED).

    One-trace formats (SAC, SU) get a clear error for a stream of several traces instead of ObsPy's numbered
    extra files.
    """
    if format in _ONE_TRACE_FORMATS and len(stream) > 1:
        raise ValueError(
            f"{format} holds one trace per file but there are {len(stream)} traces "
            "(write miniSEED instead, or split the stream)"
        )
    options = {"encoding": "FLOAT64"} if format == "MSEED" else {}
    if format == "MSEED":
        stream = stream.copy()
        for trace in stream:
            trace.data = trace.data.astype(np.float64)
    stream.write(os.fspath(path), format=format, **options)


def plot_comparison(before: obspy.Stream, after: obspy.Stream, path, max_traces: int = 8) -> None:
    """A PNG with each trace before (grey) and after denoising (blue), one panel per trace."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    pairs = list(zip(before, after))[:max_traces]
    figure, axes = plt.subplots(len(pairs), 1, figsize=(10, 1.8 * len(pairs) + 0.6), squeeze=False, sharex=False)
    for axis, (raw, clean) in zip(axes[:, 0], pairs):
        seconds = raw.times()
        axis.plot(seconds, raw.data, color="0.6", linewidth=0.6, label="input")
        axis.plot(seconds, clean.data, color="tab:blue", linewidth=0.7, label="denoised")
        axis.set_title(f"{raw.id}  {raw.stats.starttime}", fontsize=8, loc="left")
        axis.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since start", fontsize=8)
    figure.tight_layout()
    figure.savefig(os.fspath(path), dpi=100, format="png")
    plt.close(figure)


class MiniSeedDayFiles:
    """An ``on_denoised`` callback that appends each Trace to ``DIR/NET.STA.LOC.CHA.YYYY.DDD.mseed``.

    Each Trace is encoded in memory first and appended with one write, so a file only ever grows by whole
    512-byte records; a file whose last record was cut short (the writer was killed mid-write) is cut back to
    its whole records, with a warning, before this writer first appends to it. A Trace whose codes cannot name
    a file inside DIR (``/``, ``..``, NUL, ...: :func:`~pydenoise.seismic.paths.trace_file_name`) is refused with
    an error logged once per trace id; the other ids go on.
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.traces_written = 0
        self.traces_refused = 0
        self._refused_ids: set[str] = set()
        self._checked_files: set[Path] = set()

    def __call__(self, trace: obspy.Trace) -> None:
        start = trace.stats.starttime
        day = f".{start.year:04d}.{start.julday:03d}.mseed"
        try:
            path = path_inside(self.directory, trace_file_name(trace.stats, day, MINISEED2_CODE_LENGTHS))
        except ValueError as error:
            self._refuse(trace, error)
            return
        buffer = io.BytesIO()
        obspy.Stream([trace]).write(buffer, format="MSEED", encoding="FLOAT64", reclen=_RECORD)
        if path not in self._checked_files:
            _cut_torn_record(path)
            self._checked_files.add(path)
        with open(path, "ab") as handle:
            handle.write(buffer.getvalue())
        self.traces_written += 1

    def _refuse(self, trace: obspy.Trace, error: ValueError) -> None:
        self.traces_refused += 1
        if trace.id not in self._refused_ids:
            self._refused_ids.add(trace.id)
            logger.error("not writing %r: %s; its traces are dropped", trace.id, error)


def _cut_torn_record(path: Path) -> None:
    """Truncate ``path`` to whole 512-byte records: what a killed writer's last, partial append left."""
    with suppress(FileNotFoundError):
        size = path.stat().st_size
        if size % _RECORD:
            logger.warning(
                "%s ends in a partial record (%d bytes); cut back to %d bytes",
                path,
                size % _RECORD,
                size - size % _RECORD,
            )
            os.truncate(path, size - size % _RECORD)
