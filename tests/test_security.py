"""Names from data never choose where files go, and model files are checked before anything is allocated."""

from __future__ import annotations

import json
import logging
import string
import struct
import tempfile
from pathlib import Path

import numpy as np
import obspy
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pydenoise
from pydenoise import cli, seismic
from pydenoise.core.model_file import MAX_HEADER_BYTES
from pydenoise.seismic.paths import MINISEED2_CODE_LENGTHS, check_codes, path_inside

HOSTILE_CODES = ["/t", "..", "../x", "a/b", "x\0y", " ", "É", "/", ".", "a.b", "x" * 300, "\\"]


def trace_with(**codes) -> obspy.Trace:
    header = {"network": "XX", "station": "STA", "location": "", "channel": "HHZ", "sampling_rate": 100.0}
    return obspy.Trace(np.arange(50, dtype=np.float64), header={**header, **codes})


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


# ------------------------------------------------------------------------------------ path helpers


@pytest.mark.parametrize("name", ["", ".", "..", "/etc/passwd", "a/b", "x\0y", "../up"])
def test_path_inside_refuses_names_that_leave_the_folder(tmp_path, name):
    with pytest.raises(ValueError, match="plain file name|leads outside"):
        path_inside(tmp_path, name)


def test_path_inside_refuses_a_link_planted_in_the_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "trap.mseed").symlink_to(tmp_path / "elsewhere.mseed")
    with pytest.raises(ValueError, match="leads outside the output folder"):
        path_inside(tmp_path / "out", "trap.mseed")
    assert path_inside(tmp_path / "out", "fine.mseed") == tmp_path / "out" / "fine.mseed"


@pytest.mark.parametrize("field", ["network", "station", "location", "channel"])
@pytest.mark.parametrize("code", HOSTILE_CODES)
def test_hostile_codes_are_refused_naming_the_code(field, code):
    with pytest.raises(ValueError, match=f"{field} code .* cannot name a file"):
        check_codes(trace_with(**{field: code}).stats)


# ------------------------------------------------------------------------- the SeedLink day files


def test_the_day_file_writer_refuses_a_hostile_stream_and_writes_the_others(tmp_path, caplog):
    """The reported case: network ``/t`` made the writer create ``/t.mp...1970.001.mseed`` at the root."""
    writer = seismic.MiniSeedDayFiles(tmp_path / "out")
    with caplog.at_level(logging.ERROR, logger="pydenoise.seismic.io"):
        for _ in range(3):
            writer(trace_with(network="/t", station="mp"))
            writer(trace_with())
    assert not Path("/t.mp...1970.001.mseed").exists()
    assert sorted(p.name for p in files_under(tmp_path)) == ["XX.STA..HHZ.1970.001.mseed", "out"]
    assert (writer.traces_written, writer.traces_refused) == (3, 3)
    refusals = [r.getMessage() for r in caplog.records]
    assert len(refusals) == 1 and "'/t.mp..HHZ'" in refusals[0] and "network code '/t'" in refusals[0]
    assert sum(t.stats.npts for t in obspy.read(str(tmp_path / "out" / "*.mseed"))) == 150


def test_codes_longer_than_miniseed2_fields_are_refused_not_cut(tmp_path):
    writer = seismic.MiniSeedDayFiles(tmp_path)
    writer(trace_with(station="ABCDEF"))  # ObsPy would silently write "ABCDE", merging it with that station
    assert writer.traces_refused == 1 and not list(tmp_path.iterdir())


code_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(HOSTILE_CODES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(network=code_text, station=code_text, location=code_text, channel=code_text)
def test_fuzzed_codes_are_written_inside_the_folder_or_refused(network, station, location, channel):
    with tempfile.TemporaryDirectory() as sandbox:
        out = Path(sandbox) / "out"
        writer = seismic.MiniSeedDayFiles(out)
        trace = obspy.Trace(np.zeros(4))
        try:  # ObsPy's Stats refuses some values itself (non-strings, ...): those never reach a writer
            trace.stats.update(network=network, station=station, location=location, channel=channel)
        except (ValueError, TypeError):
            return
        writer(trace)
        written = files_under(Path(sandbox)) - {out}
        assert writer.traces_written + writer.traces_refused == 1
        assert all(p.parent == out for p in written) and len(written) == writer.traces_written
        if writer.traces_written:
            allowed = set(string.ascii_letters + string.digits + "_-")
            assert all(set(code) <= allowed for code in (network, station, location, channel))
            assert all(len(trace.stats[k]) <= n for k, n in MINISEED2_CODE_LENGTHS.items())


def test_a_torn_last_record_is_cut_back_before_appending(tmp_path, caplog):
    writer = seismic.MiniSeedDayFiles(tmp_path)
    writer(trace_with())
    path = tmp_path / "XX.STA..HHZ.1970.001.mseed"
    whole = path.read_bytes()
    path.write_bytes(whole + whole[:100])  # a killed writer's partial append
    resumed = seismic.MiniSeedDayFiles(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pydenoise.seismic.io"):
        resumed(trace_with())
    assert "ends in a partial record (100 bytes)" in caplog.text
    assert path.stat().st_size == 2 * len(whole)
    assert len(obspy.read(str(path))) == 2


def test_denoise_into_a_folder_names_outputs_after_inputs_not_codes(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    hostile = trace_with(network="..", station="/tmp", sampling_rate=200.0)
    hostile.data = np.random.default_rng(0).standard_normal(1000)
    hostile.write(str(source / "hostile.mseed"), format="MSEED")
    assert cli.main(["denoise", str(source), "-o", str(tmp_path / "out"), "--plot"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hostile.mseed", "hostile.mseed.png"]
    assert obspy.read(str(tmp_path / "out" / "hostile.mseed"))[0].stats.network == ".."  # data kept as it was


# ------------------------------------------------------------------------------- model files


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def small_model_file(tmp_path) -> tuple[Path, dict, bytes]:
    """A valid tiny model, and its header and data, to corrupt."""
    path = tmp_path / "good.safetensors"
    pydenoise.nn.save_model(pydenoise.nn.DDAE((8, 4, 8)), path, {"sample_rate": 100.0, "hop": 4})
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return path, json.loads(raw[8 : 8 + length]), raw[8 + length :]


def test_a_valid_tiny_model_loads(tmp_path):
    path, _, _ = small_model_file(tmp_path)
    assert pydenoise.load(path).window == 8


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda h, d: (h, d[:-4]), "hold 304 bytes but the file has 300 bytes"),
        (lambda h, d: ({**h, "layers.0.weight": {**h["layers.0.weight"], "dtype": "PICKLE"}}, d), "dtype 'PICKLE'"),
        (lambda h, d: ({**h, "layers.0.weight": {**h["layers.0.weight"], "shape": [4, -8]}}, d), "non-negative"),
        (lambda h, d: ({**h, "layers.0.weight": {**h["layers.0.weight"], "shape": [40, 8]}}, d), "needs 1280 bytes"),
        (
            lambda h, d: ({k: v for k, v in h.items() if k != "layers.1.bias"}, d),
            r"starts at byte \d+ of the data, expected \d+",
        ),
    ],
)
def test_inconsistent_headers_are_refused_naming_the_problem(tmp_path, corrupt, message):
    _, header, data = small_model_file(tmp_path)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(safetensors_bytes(*corrupt(header, data)))
    with pytest.raises(ValueError, match=f"not a readable safetensors file: .*{message}"):
        pydenoise.load(bad)


def test_a_huge_claimed_architecture_is_refused_before_allocation(tmp_path, monkeypatch):
    """Widths of 10^6 would take 4 TB as real tensors; the check runs on the meta device."""
    _, header, data = small_model_file(tmp_path)
    config = json.loads(header["__metadata__"]["pydenoise"])
    header["__metadata__"]["pydenoise"] = json.dumps({**config, "widths": [1_000_000, 1_000_000, 1_000_000]})
    bad = tmp_path / "huge.safetensors"
    bad.write_bytes(safetensors_bytes(header, data))
    real_empty = torch.empty

    def no_huge_tensors(*args, **kwargs):
        tensor = real_empty(*args, **kwargs)
        assert tensor.device.type == "meta" or tensor.numel() < 10**8, "a tensor of the claimed size was allocated"
        return tensor

    monkeypatch.setattr(torch, "empty", no_huge_tensors)
    with pytest.raises(ValueError, match=r"tensor 'layers.0.weight' has shape \[4, 8\], the architecture needs"):
        pydenoise.load(bad)


def test_an_oversized_header_length_is_refused_before_reading_it(tmp_path):
    bad = tmp_path / "header.safetensors"
    bad.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(ValueError, match="header claims 4611686018427387904 bytes"):
        pydenoise.load(bad)
    big = tmp_path / "big.safetensors"
    big.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b" " * (MAX_HEADER_BYTES + 1))
    with pytest.raises(ValueError, match="the limit is 1048576"):
        pydenoise.load(big)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 2000), flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4))
def test_fuzzed_model_files_load_or_fail_with_a_clear_error(tmp_path, cut, flips):
    path, header, data = small_model_file(tmp_path)
    raw = bytearray(path.read_bytes()[: len(path.read_bytes()) - cut])
    for position, value in flips:
        if position < len(raw):
            raw[position] = value
    bad = tmp_path / "fuzzed.safetensors"
    bad.write_bytes(bytes(raw))
    try:
        pydenoise.load(bad)
    except ValueError as error:
        assert str(bad) in str(error)
