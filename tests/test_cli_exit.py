"""CLI exit statuses (0 success, 1 bad input or partial failure, 2 usage, 128 + N for signal N) and what
signals leave behind: never a half-written output file."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import obspy
import pytest
from test_seismic_seedlink import FEED, MODEL, SeedLinkServer, check_outputs, offline

import pydenoise
from pydenoise import cli
from pydenoise.cli import interrupt
from pydenoise.cli.denoise import atomic_path


def seismic_file(path: Path, seconds: float = 20.0, seed: int = 0) -> Path:
    data = np.random.default_rng(seed).standard_normal(int(seconds * 200))
    obspy.Trace(data, header={"network": "XX", "station": f"S{seed}", "sampling_rate": 200.0}).write(str(path))
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    pydenoise.nn.save_model(MODEL.module, path, config=MODEL.config)
    return path


def test_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "exit status:" in help_text and "2    usage" in help_text and "130  interrupted" in help_text


@pytest.mark.parametrize("argv", [[], ["denoise"], ["denoise", "x.mseed"], ["nonsense"], ["info", "--bogus"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and "usage:" in capsys.readouterr().err


def test_conflicting_outputs_are_a_usage_error(tmp_path, model_file):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        seismic_file(tmp_path / folder / "same.mseed")
    argv = [
        "denoise",
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        "-o",
        str(tmp_path / "out"),
        "--model",
        str(model_file),
    ]
    assert cli.main(argv) == 2


def test_bad_input_exits_1_and_partial_failure_keeps_the_good_files(tmp_path, model_file, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["denoise", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 1
    assert "no input files" in capsys.readouterr().err
    assert cli.main(["denoise", str(tmp_path / "missing.mseed"), "-o", str(tmp_path / "x.mseed")]) == 1
    inputs = tmp_path / "in"
    inputs.mkdir()
    seismic_file(inputs / "good.mseed")
    (inputs / "garbage.mseed").write_bytes(b"\xff" * 700)
    assert cli.main(["denoise", str(inputs), "-o", str(tmp_path / "out"), "--model", str(model_file)]) == 1
    assert "1 of 2 files failed" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.mseed"]
    assert (
        cli.main(["denoise", str(inputs / "good.mseed"), "-o", str(tmp_path / "ok.mseed"), "--model", str(model_file)])
        == 0
    )


def test_a_missing_model_for_seedlink_exits_1(tmp_path, capsys):
    argv = ["seedlink", "127.0.0.1:1", "-s", "XX_STA", "-o", str(tmp_path), "--model", str(tmp_path / "no.safetensors")]
    assert cli.main(argv) == 1 and "does not exist" in capsys.readouterr().err


def pydenoise_process(*argv) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from pydenoise.cli import main; sys.exit(main())", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_signal_during_denoise_leaves_only_whole_outputs(tmp_path, model_file, signal_number):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for seed in range(60):
        seismic_file(inputs / f"f{seed:02d}.mseed", seconds=60.0, seed=seed)
    child = pydenoise_process("denoise", inputs, "-o", outputs, "--model", model_file)
    wait_for(lambda: outputs.is_dir() and any(not p.name.startswith(".") for p in outputs.iterdir()))
    child.send_signal(signal_number)
    _, err = child.communicate(timeout=60)
    assert child.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[signal_number], err
    finished = [p for p in outputs.iterdir() if not p.name.startswith(".")]
    assert 0 < len(finished) < 60
    for path in finished:
        assert obspy.read(str(path))[0].stats.npts == 60 * 200, path  # whole, never cut short
    temporaries = [p.name for p in outputs.iterdir() if p.name.startswith(".")]
    if signal_number == signal.SIGKILL:
        assert all(".part." in name for name in temporaries)  # nothing can clean up: hidden, never the output name
    else:
        assert temporaries == []


def signal_inside_a_c_callback(signal_number: int) -> None:
    """Deliver ``signal_number`` while Python code runs as a C callback (libc's qsort calling a ctypes
    comparator), as when Ctrl-C lands in ObsPy's miniSEED record handler: ctypes prints the handler's
    exception and drops it."""
    compare = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))

    def in_the_callback(a, b):
        os.kill(os.getpid(), signal_number)
        time.sleep(0.01)  # the handler runs here, inside the callback
        return a[0] - b[0]

    values = (ctypes.c_int * 2)(2, 1)
    ctypes.CDLL(None).qsort(values, 2, ctypes.sizeof(ctypes.c_int), compare(in_the_callback))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed exception
@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_that_c_code_swallowed_still_stops_before_the_output_is_put_in_place(tmp_path, signal_number):
    destination = tmp_path / "out.mseed"
    expected = KeyboardInterrupt if signal_number == signal.SIGINT else SystemExit
    with pytest.raises(expected), interrupt.stop_signals_raised():
        with atomic_path(destination) as temporary:
            temporary.write_bytes(b"half")
            signal_inside_a_c_callback(signal_number)  # swallowed: the write goes on
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temporary file


#: Samples per id out before the end of the feed: what the latency (192 samples) lets through, per 64-sample hop.
BEFORE_FLUSH = {trace_id: 64 * (whole.stats.npts // 64) - 192 for trace_id, (whole, _) in offline(FEED).items()}


def samples_written(folder: Path) -> dict[str, int]:
    counts = {}
    try:
        for trace in obspy.read(str(folder / "*.mseed")):
            counts[trace.id] = counts.get(trace.id, 0) + trace.stats.npts
    except Exception:  # no file yet, or one being appended to
        return {}
    return {trace_id: counts.get(trace_id, 0) for trace_id in BEFORE_FLUSH}


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_seedlink_stops_on_a_signal_and_writes_every_held_back_sample(tmp_path, model_file, signal_number):
    server = SeedLinkServer(FEED, drop_after=len(FEED))
    server.start()
    try:
        child = pydenoise_process(
            "seedlink", f"127.0.0.1:{server.port}", "-s", "BW_BGLD:EHE", "-s", "BW_UH3:EHE EHZ",
            "-o", tmp_path / "live", "--model", model_file, "--timeout", "5",
        )  # fmt: skip
        wait_for(lambda: samples_written(tmp_path / "live") == BEFORE_FLUSH)  # every packet processed
        child.send_signal(signal_number)
        _, err = child.communicate(timeout=60)
    finally:
        server.closing.set()
        server.join(5)
    assert child.returncode == 0, err
    files = sorted((tmp_path / "live").iterdir())
    assert len(files) == 4 and all(p.stat().st_size % 512 == 0 for p in files)
    check_outputs(list(obspy.read(str(tmp_path / "live" / "*.mseed"))), FEED)  # tails flushed: all samples


def test_seedlink_killed_leaves_whole_records(tmp_path, model_file):
    server = SeedLinkServer(FEED, drop_after=len(FEED))
    server.start()
    try:
        child = pydenoise_process(
            "seedlink", f"127.0.0.1:{server.port}", "-s", "BW_BGLD:EHE", "-o", tmp_path / "live", "--model", model_file,
        )  # fmt: skip
        wait_for(lambda: (tmp_path / "live").is_dir() and any((tmp_path / "live").iterdir()))
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=60)
    finally:
        server.closing.set()
        server.join(5)
    for path in (tmp_path / "live").iterdir():
        assert path.stat().st_size % 512 == 0
        obspy.read(str(path))
