"""A JACK dummy server for the tests and the live-audio benchmark: no sound card, a private server name,
real-time scheduled where allowed (root, or rtprio limits)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


def skip_reason() -> str | None:
    """Why a JACK server cannot be used here (None if it can)."""
    if shutil.which("jackd") is None:
        return "jackd is not installed (Debian: jackd2)"
    try:
        import sounddevice  # noqa: F401
    except OSError as error:
        return f"PortAudio is missing (Debian: libportaudio2): {error}"
    return None


def _start(name: str, rate: int, period: int, realtime: bool, env: dict, log_path: Path):
    """Start the dummy server; return the process once it serves clients, or None if it exited."""
    log = open(log_path, "w")
    mode = ["-R"] if realtime else ["--no-realtime"]
    server = subprocess.Popen(
        ["jackd", "-n", name, *mode, "-d", "dummy", "-r", str(rate), "-p", str(period)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log.close()
    deadline = time.monotonic() + 10
    while server.poll() is None and "server starting" not in log_path.read_text():
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # a failing real-time start exits right after its banner
    return server if server.poll() is None else None


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextlib.contextmanager
def dummy_server(rate: int, period: int, log_path: Path):
    """Yield the environment that points JACK clients at a new dummy server (RuntimeError if none starts)."""
    name = f"pydenoise-{os.getpid()}-{period}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION="1")
    server = _start(name, rate, period, True, env, log_path) or _start(name, rate, period, False, env, log_path)
    if server is None:
        raise RuntimeError(f"jackd cannot run here: {log_path.read_text()[-400:]}")
    try:
        yield env
    finally:
        _stop(server)


def ctrl_c_as_in_a_terminal() -> None:
    """SIGINT at its default in a child, as for a command typed in a terminal: a harness that runs the tests
    as a background job (no job control) passes SIGINT on ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
