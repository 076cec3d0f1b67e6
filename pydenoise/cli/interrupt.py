"""Ctrl-C and SIGTERM for the commands: raised where they land, and again at the next check if C code ate them.

A signal handler's exception that lands in Python code called back from C (ObsPy's miniSEED writer hands
every record to a Python callback through ctypes) is printed as "Exception ignored" and dropped: the write
goes on, possibly without the record it interrupted, and the command would finish with status 0. So the
handlers below also remember the signal, and :func:`raise_if_stopped` raises it again before an output
file is put in place.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager

_received: int | None = None


def _stop(signum, frame):
    global _received
    _received = signum
    raise_if_stopped()


def raise_if_stopped() -> None:
    """Raise KeyboardInterrupt after SIGINT, ``SystemExit(128 + N)`` after signal N (SIGTERM: 143)."""
    if _received == signal.SIGINT:
        raise KeyboardInterrupt
    if _received is not None:
        raise SystemExit(128 + _received)


@contextmanager
def stop_signals_raised():
    """Within: SIGINT and SIGTERM raise as above (a SIGINT that is ignored, as for a background job, stays
    ignored). Only the main thread can set handlers; elsewhere this does nothing."""
    global _received
    _received = None
    previous = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(number) is not signal.SIG_IGN:
                previous[number] = signal.signal(number, _stop)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
