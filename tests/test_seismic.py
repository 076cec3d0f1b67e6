"""pydenoise.seismic on ObsPy data: Stream/Trace denoising, the filter plugins, the `pydenoise denoise` command."""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import obspy
import pytest
import torch

import pydenoise
from pydenoise import cli, seismic
from pydenoise.cli.denoise import file_domain

MSEED_DATA = Path(obspy.__file__).parent / "io" / "mseed" / "tests" / "data"
SAC_FILE = Path(obspy.__file__).parent / "io" / "sac" / "tests" / "data" / "test.sac"


def make_model(sample_rate=100.0, residual=False) -> pydenoise.Denoiser:
    torch.manual_seed(1)
    return pydenoise.Denoiser(pydenoise.nn.DDAE(residual=residual), config={"sample_rate": sample_rate, "hop": 64})


MODEL = make_model()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "seismic_test.safetensors"
    pydenoise.nn.save_model(MODEL.module, path, config={"sample_rate": 100.0, "hop": 64})
    return path


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())


# --------------------------------------------------------------------------------- Stream and Trace


def test_stream_keeps_ids_times_rates_lengths_and_records_the_call():
    st = obspy.read()
    out = seismic.denoise(st, model=MODEL)
    assert out is not st and len(out) == len(st)
    for raw, clean in zip(st, out):
        assert (clean.id, clean.stats.starttime, clean.stats.sampling_rate, clean.stats.npts) == (
            raw.id,
            raw.stats.starttime,
            raw.stats.sampling_rate,
            raw.stats.npts,
        )
        close(clean.data, MODEL.denoise(raw.data))
        assert "denoise(model=" in clean.stats.processing[-1] and "hop=64" in clean.stats.processing[-1]
    assert "processing" not in st[0].stats  # the input is untouched


def test_trace_in_trace_out_and_the_model_from_a_file(model_file):
    trace = obspy.read()[0]
    out = seismic.denoise(trace, model=model_file)
    assert isinstance(out, obspy.Trace)
    close(out.data, MODEL.denoise(trace.data))


def test_gaps_stay_gaps_and_each_segment_is_denoised_alone():
    merged = obspy.read(MSEED_DATA / "gaps.mseed").merge()[0]  # one masked trace, 3 gaps, 200 Hz
    model = make_model(sample_rate=200.0)
    out = seismic.denoise(merged, model=model)
    assert np.ma.isMaskedArray(out.data)
    np.testing.assert_array_equal(np.ma.getmaskarray(out.data), np.ma.getmaskarray(merged.data))
    segments = np.ma.clump_unmasked(merged.data)
    assert len(segments) == 4
    for segment in segments:
        close(out.data[segment].data, model.denoise(merged.data[segment].data.astype(np.float64)))


def test_other_sampling_rates_are_resampled_explicitly_and_recorded_or_rejected():
    trace = obspy.read(MSEED_DATA / "BW.BGLD.__.EHE.D.2008.001.first_10_records")[0]  # 200 Hz, int32
    out = seismic.denoise(trace, model=MODEL)
    assert out.stats.npts == trace.stats.npts and out.stats.sampling_rate == 200.0
    assert "resampled 200 Hz -> 100 Hz -> 200 Hz" in out.stats.processing[0]
    with pytest.raises(ValueError, match="sampled at 200 Hz but the model expects 100 Hz"):
        seismic.denoise(trace, model=MODEL, resample=False)
    with pytest.raises(ValueError, match="cannot resample exactly"):
        seismic.denoise_array(np.zeros(500), 100.0 * np.pi, MODEL)


def test_the_default_model_is_the_shipped_seismic_model_and_unknown_names_are_clear():
    assert inspect.signature(seismic.denoise).parameters["model"].default == "seismic"
    assert inspect.signature(seismic.ddae).parameters["model"].default == "seismic"
    with pytest.raises(ValueError, match="unknown model name 'no-such-model'"):
        seismic.denoise(obspy.read(), model="no-such-model")


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data, rate, error, message",
    [
        (np.array([1.0, np.nan, 2.0]), 100.0, ValueError, "NaN or Inf samples .first at index 1"),
        (np.zeros(0), 100.0, ValueError, "no samples"),
        (np.zeros(10), 0.0, ValueError, "sampling rate must be a positive"),
        (np.zeros(10), -100.0, ValueError, "sampling rate must be a positive"),
        (np.zeros(10, dtype=complex), 100.0, TypeError, "float32/float64"),
        (np.zeros((2, 10)), 100.0, ValueError, "1-D"),
    ],
)
def test_bad_samples_get_clear_errors(data, rate, error, message):
    with pytest.raises(error, match=message):
        seismic.denoise_array(data, rate, MODEL)


def test_bad_streams_name_the_trace():
    with pytest.raises(ValueError, match="no traces"):
        seismic.denoise(obspy.Stream(), model=MODEL)
    trace = obspy.Trace(np.array([0.0, np.inf]), header={"station": "XYZ", "sampling_rate": 100.0})
    with pytest.raises(ValueError, match=r"trace \.XYZ\.\.: data contains NaN"):
        seismic.denoise(trace, model=MODEL)
    with pytest.raises(TypeError, match="Stream or Trace"):
        seismic.denoise(np.zeros(10), model=MODEL)


def test_a_trace_shorter_than_a_window_is_padded_and_keeps_its_length():
    trace = obspy.Trace(np.arange(10, dtype=np.float32), header={"sampling_rate": 100.0})
    out = seismic.denoise(trace, model=MODEL)
    assert out.data.dtype == np.float32 and out.stats.npts == 10
    close(out.data, MODEL.denoise(trace.data))


# ----------------------------------------------------------------------------------- filter plugin


def test_plugin_functions_take_integer_data_and_keep_the_length():
    counts = obspy.read()[0].data.astype(np.int32)
    out = seismic.ddae(counts, df=100.0, model=MODEL)
    assert out.dtype == np.float64 and out.shape == counts.shape
    with pytest.warns(seismic.ResamplingWarning, match="200 Hz -> 100 Hz"):
        seismic.ddae(counts, df=200.0, model=MODEL)
    with pytest.raises(ValueError, match="noise-learning model"):
        seismic.nldae(counts, df=100.0, model=MODEL)
    residual = make_model(residual=True)
    close(seismic.nldae(counts, df=100.0, model=residual), residual.denoise(counts.astype(np.float64)))


def _installed_filters() -> set[str]:
    return {e.name for e in entry_points(group="obspy.plugin.filter") if e.value.startswith("pydenoise.")}


@pytest.mark.skipif(
    not {"ddae", "nldae"} <= _installed_filters(),
    reason="pydenoise's obspy.plugin.filter entry points are not installed (pip install -e . registers them)",
)
def test_obspy_filter_api_finds_the_plugins(model_file):
    st = obspy.read()
    st[0].data = st[0].data.astype(np.int32)
    expected = MODEL.denoise(st[0].data.astype(np.float64))
    st.filter("ddae", model=str(model_file))
    close(st[0].data, expected)
    assert len(st[0].data) == 3000
    assert "type='ddae'" in st[0].stats.processing[-1] and "'model': " in st[0].stats.processing[-1]
    with pytest.raises(ValueError, match="noise-learning"):
        st[0].filter("nldae", model=str(model_file))


# ---------------------------------------------------------------------------------------------- CLI


def run_cli(*argv) -> int:
    return cli.main(["denoise", *map(str, argv)])


def test_cli_folder_of_files_keeps_headers_and_formats(tmp_path, model_file, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    records = "BW.BGLD.__.EHE.D.2008.001.first_10_records"  # no known extension: keeps its format
    for source in (MSEED_DATA / "two_channels.mseed", SAC_FILE, MSEED_DATA / records):
        (inputs / source.name).write_bytes(source.read_bytes())
    assert run_cli(inputs, "-o", tmp_path / "out", "--model", model_file) == 0
    for name, fmt in (("two_channels.mseed", "MSEED"), ("test.sac", "SAC"), (records, "MSEED")):
        before, after = obspy.read(inputs / name), obspy.read(tmp_path / "out" / name)
        assert after[0].stats._format == fmt
        assert [(t.id, t.stats.starttime, t.stats.sampling_rate, t.stats.npts) for t in after] == [
            (t.id, t.stats.starttime, t.stats.sampling_rate, t.stats.npts) for t in before
        ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([records, "test.sac", "two_channels.mseed"])


def test_cli_output_format_follows_the_output_name_and_plots(tmp_path, model_file):
    out = tmp_path / "clean.sac"
    assert (
        run_cli(MSEED_DATA / "BW.BGLD.__.EHE.D.2008.001.first_10_records", "-o", out, "--model", model_file, "--plot")
        == 0
    )
    assert obspy.read(out)[0].stats._format == "SAC"
    assert (tmp_path / "clean.sac.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore::UserWarning")  # ObsPy's many warnings about the corrupt records
def test_cli_reports_a_bad_file_and_goes_on(tmp_path, model_file, capsys):
    junk = tmp_path / "junk.mseed"
    junk.write_text("not a seismogram")
    missing = tmp_path / "missing.mseed"
    corrupt = MSEED_DATA / "infinite-loop.mseed"
    status = run_cli(junk, missing, corrupt, SAC_FILE, "-o", tmp_path / "out", "--model", model_file)
    err = capsys.readouterr().err
    assert status == 1
    assert f"{junk}: not a waveform format ObsPy can read" in err and f"{missing}: no such file" in err
    assert f"{corrupt}: unreadable (InternalMSEEDError: " in err
    assert "3 of 4 files failed" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["test.sac"]


def test_cli_rejects_other_rates_when_asked_and_one_trace_formats_with_many_traces(tmp_path, model_file, capsys):
    source = MSEED_DATA / "two_channels.mseed"  # 200 Hz, two traces
    assert run_cli(source, "-o", tmp_path / "a.mseed", "--model", model_file, "--no-resample") == 1
    assert run_cli(source, "-o", tmp_path / "b.sac", "--model", model_file) == 1
    assert run_cli(source, "-o", tmp_path / "c.xyz", "--model", model_file) == 1
    err = capsys.readouterr().err
    assert "expects 100 Hz" in err and "SAC holds one trace per file" in err and "output format" in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written, no temporary files


@pytest.mark.parametrize("interruption", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_cli_writes_are_atomic(tmp_path, model_file, monkeypatch, interruption):
    out = tmp_path / "out.mseed"
    out.write_bytes(b"previous result")

    def write_half_then_fail(stream, path, format):
        Path(path).write_bytes(b"half a file")
        raise interruption

    monkeypatch.setattr(seismic, "write", write_half_then_fail)
    status = 130 if isinstance(interruption, KeyboardInterrupt) else 1  # Ctrl-C: 128 + SIGINT
    assert run_cli(SAC_FILE, "-o", out, "--model", model_file) == status
    assert out.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mseed"]


def test_cli_routes_by_file_type():
    assert [file_domain(n) for n in ("a.mseed", "b.SAC", "c", "d.wav", "e.flac", "f.png", "g.TIFF")] == [
        "seismic",
        "seismic",
        "seismic",
        "audio",
        "audio",
        "image",
        "image",
    ]


def test_cli_refuses_to_overwrite_its_input(tmp_path, model_file, capsys):
    copy = tmp_path / "x.sac"
    copy.write_bytes(SAC_FILE.read_bytes())
    assert run_cli(copy, "-o", copy, "--model", model_file) == 1
    assert "overwrite the input" in capsys.readouterr().err and copy.read_bytes() == SAC_FILE.read_bytes()


def test_cli_highpass_is_the_models_highpass(tmp_path):
    source = tmp_path / "rjob.mseed"
    obspy.read().write(source, format="MSEED")
    assert run_cli(source, "-o", tmp_path / "out.mseed", "--highpass", "0.01") == 0
    expected = seismic.denoise(obspy.read(source), model=pydenoise.load("seismic").with_highpass(0.01))
    for a, b in zip(obspy.read(tmp_path / "out.mseed"), expected):
        np.testing.assert_allclose(a.data, b.data.astype(a.data.dtype), rtol=1e-6, atol=1e-6 * np.abs(b.data).max())
    assert run_cli(source, "-o", tmp_path / "bad.mseed", "--highpass", "60") == 1  # above Nyquist: named, refused


@pytest.mark.parametrize("flag", [None, "--long-period", "--no-long-period"])
def test_cli_long_period_flags_match_the_api(tmp_path, flag):
    """The seismic model ships with its long-period path: no flag and --long-period keep it, --no-long-period
    drops it."""
    source = tmp_path / "rjob.mseed"
    obspy.read().write(source, format="MSEED")
    assert run_cli(source, "-o", tmp_path / "out.mseed", *([flag] if flag else [])) == 0
    shipped = pydenoise.load("seismic")
    model, other = (
        (shipped.with_long_period(None), shipped)
        if flag == "--no-long-period"
        else (shipped, shipped.with_long_period(None))
    )
    expected = seismic.denoise(obspy.read(source), model=model)
    different = seismic.denoise(obspy.read(source), model=other)
    for a, b, c in zip(obspy.read(tmp_path / "out.mseed"), expected, different):
        np.testing.assert_allclose(a.data, b.data.astype(a.data.dtype), rtol=1e-6, atol=1e-6 * np.abs(b.data).max())
        assert not np.allclose(a.data, c.data, atol=1e-3 * np.abs(c.data).max())


@pytest.mark.parametrize("flag", [None, "--postfilter", "--no-postfilter"])
def test_cli_postfilter_flags_match_the_api(tmp_path, flag):
    """The seismic model ships with its post-filter: no flag and --postfilter keep it, --no-postfilter drops it."""
    source = tmp_path / "rjob.mseed"
    obspy.read().write(source, format="MSEED")  # BW.RJOB at 100 Hz: the shipped model's rate
    assert run_cli(source, "-o", tmp_path / "out.mseed", *([flag] if flag else [])) == 0
    shipped = pydenoise.load("seismic")
    model = shipped.without_postfilter() if flag == "--no-postfilter" else shipped
    expected = seismic.denoise(obspy.read(source), model=model)
    got = obspy.read(tmp_path / "out.mseed")
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.data, b.data.astype(a.data.dtype), rtol=1e-6, atol=1e-6 * np.abs(b.data).max())
    other = seismic.denoise(obspy.read(source), model=shipped if model is not shipped else shipped.without_postfilter())
    assert not np.allclose(got[0].data, other[0].data, atol=1e-3 * np.abs(other[0].data).max())
