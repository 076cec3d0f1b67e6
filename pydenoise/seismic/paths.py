"""File names built from data: network, station, location and channel codes come from a server or a file, and
miniSEED keeps any ASCII in them (``/``, ``..``, NUL, spaces). Every writer that names a file after codes goes
through :func:`trace_file_name` and :func:`path_inside`, so codes never choose where a file goes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["FDSN_CODE_LENGTHS", "MINISEED2_CODE_LENGTHS", "check_codes", "trace_file_name", "path_inside"]

#: Longest network, station, location and channel codes of an FDSN source identifier.
FDSN_CODE_LENGTHS = {"network": 8, "station": 8, "location": 8, "channel": 8}

#: The fixed header fields of miniSEED 2 (ObsPy silently cuts longer codes when it writes one).
MINISEED2_CODE_LENGTHS = {"network": 2, "station": 5, "location": 2, "channel": 3}

#: Letters, digits, ``_`` and ``-``: what SEED and FDSN codes use. No ``.`` (it separates the codes in a name).
_CODE = re.compile(r"[A-Za-z0-9_-]*")


def check_codes(stats, lengths: dict[str, int] = FDSN_CODE_LENGTHS) -> None:
    """Raise ``ValueError`` naming the first code of ``stats`` (an ObsPy ``Stats``) that cannot go in a file name
    or is longer than ``lengths`` allows.

    Network and station must not be empty (the name would start with a dot: a hidden file); location and
    channel may be.
    """
    for name, longest in lengths.items():
        code = stats[name]
        if not isinstance(code, str) or not _CODE.fullmatch(code) or len(code) > longest:
            raise ValueError(
                f"{name} code {code!r} cannot name a file: only letters, digits, '_' and '-', "
                f"at most {longest} characters"
            )
        if not code and name in ("network", "station"):
            raise ValueError(f"empty {name} code: a file named after it would be hidden")


def trace_file_name(stats, suffix: str, lengths: dict[str, int] = FDSN_CODE_LENGTHS) -> str:
    """``NET.STA.LOC.CHA`` + ``suffix`` for a trace's ``stats``, after :func:`check_codes`."""
    check_codes(stats, lengths)
    return f"{stats.network}.{stats.station}.{stats.location}.{stats.channel}{suffix}"


def path_inside(directory, name: str) -> Path:
    """``directory / name``, refused (``ValueError``) unless it is a plain entry of ``directory``.

    ``name`` must be one path component (no separator, NUL, ``.`` or ``..``), and the joined path, symbolic links
    resolved, must still lie in ``directory``: an absolute name would replace the folder when joined, and a
    link planted in the folder could point anywhere.
    """
    separators = {os.sep, os.altsep} - {None}
    if not name or name in (".", "..") or "\0" in name or any(s in name for s in separators):
        raise ValueError(f"{name!r} is not a plain file name (it would leave the output folder)")
    directory = Path(directory)
    path = directory / name
    if path.resolve().parent != directory.resolve():
        raise ValueError(f"{path} leads outside the output folder {directory}")
    return path
