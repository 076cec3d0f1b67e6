"""EarthScope's ringserver (a real SeedLink server) for the tests: built once from the vendored archive into
``build/``, run on loopback, fed miniSEED through its scan directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
VERSION = "ringserver-4.5.3"
ARCHIVE_PLACES = [
    REPOSITORY / "shared" / "vendor",
    REPOSITORY.parent / "shared" / "vendor",
    Path("/work/shared/vendor"),
]


def archive() -> Path | None:
    """The vendored source archive: $PYDENOISE_VENDOR, else shared/vendor beside or above the checkout."""
    places = [Path(os.environ["PYDENOISE_VENDOR"])] if "PYDENOISE_VENDOR" in os.environ else ARCHIVE_PLACES
    return next((place / f"{VERSION}.tar.gz" for place in places if (place / f"{VERSION}.tar.gz").is_file()), None)


def build() -> Path:
    """The ringserver binary, built into build/ the first time (about 20-40 s, plain make)."""
    binary = REPOSITORY / "build" / VERSION / "ringserver"
    if not binary.is_file():
        source = archive()
        if source is None:
            raise FileNotFoundError(f"{VERSION}.tar.gz not found in $PYDENOISE_VENDOR or {ARCHIVE_PLACES}")
        (REPOSITORY / "build").mkdir(exist_ok=True)
        # The system tar: tarfile's safe `filter=` needs Python >= 3.11.4 (Debian 12 has 3.11.2).
        subprocess.run(["tar", "xzf", str(source), "-C", str(REPOSITORY / "build")], check=True)
        subprocess.run(["make", "-j2"], cwd=binary.parent, check=True, capture_output=True)
    return binary


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


class RingServer:
    """One ringserver on loopback with its ring in ``folder/ring`` and miniSEED scanned from ``folder/scan``."""

    def __init__(self, binary: Path, folder: Path, ring_size: str = "8M"):
        self.binary, self.folder = binary, folder
        self.scan = folder / "scan"
        self.scan.mkdir(parents=True, exist_ok=True)
        (folder / "ring").mkdir(exist_ok=True)
        self.port = free_port()
        self.config = folder / "ring.conf"
        self.config.write_text(
            f"RingDirectory {folder / 'ring'}\nRingSize {ring_size}\nSeedLinkPort {self.port}\nResolveHostnames 0\n"
            f"MSeedScan {self.scan}/ StateFile={folder / 'scan.state'}\n"
        )
        self.process: subprocess.Popen | None = None
        self.log = folder / "ringserver.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_for_clients(self, count: int, seconds: float = 60.0) -> None:
        """Until ``count`` clients have selected their streams from this run of the server (its log says so)."""
        deadline = time.monotonic() + seconds
        while self.log.read_text().count("Configured ring parameters") < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no client configured a stream: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        time.sleep(0.2)  # its END was read: packets from now on go to it

    def start(self) -> None:
        with open(self.log, "wb") as log:  # each run of the server logs afresh
            self.process = subprocess.Popen([self.binary, "-v", self.config], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"ringserver did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)

    def stop(self, signal_number: int = signal.SIGTERM) -> None:
        """SIGTERM: an orderly shutdown (the ring is kept); SIGKILL: a crash (ringserver then starts afresh)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal_number)
            self.process.wait(20)
        self.process = None
