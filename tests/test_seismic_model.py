"""The shipped seismic models load, carry their metadata, and clearly denoise a real record (a broken or
badly trained weights file cannot land)."""

import numpy as np
import pytest

import pydenoise
from pydenoise import noise
from pydenoise.demo import DEMO_RECORD, bundled_record
from pydenoise.metrics import snr

#: The shipped model gains about 9.5 dB at 0 dB and 7 dB at 10 dB on this mix; an untrained or corrupted network
#: gains nothing or loses, so these margins catch a broken weights file without flaking on a retrained one.
MIN_GAIN_DB = {0.0: 5.0, 10.0: 4.0}


@pytest.fixture(scope="module")
def record():
    clean = bundled_record(*DEMO_RECORD, 100.0, announce=lambda _: None)
    ambient = noise.from_recording(noise.obspy_noise("ref_unknown", 100.0), clean.size, rng=3, augment=False)
    return clean, ambient


@pytest.mark.parametrize("name", ["seismic", "seismic_dae"])
def test_metadata_records_how_it_was_made(name):
    model = pydenoise.load(name)
    assert model.sample_rate == 100.0 and model.window == 256
    assert model.config["domain"] == "seismic"
    training = model.config["training"]
    assert training["command"].startswith("pydenoise train ")
    assert "ref_STS2" in training["data"] and "ref_unknown" not in training["data"]
    assert np.isfinite(training["validation_loss"]) and training["epochs"] >= 1


def test_shipped_model_is_the_noise_learning_one():
    assert pydenoise.load("seismic").residual
    assert not pydenoise.load("seismic_dae").residual


@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_seismic_model_clearly_improves_a_real_record(record, snr_db):
    clean, ambient = record
    noisy = noise.mix(clean, ambient, snr_db)
    denoised = pydenoise.load("seismic").denoise(noisy)
    assert denoised.shape == noisy.shape and denoised.dtype == noisy.dtype
    assert snr(clean, denoised) - snr(clean, noisy) > MIN_GAIN_DB[snr_db]


def test_seismic_model_keeps_a_clean_record(record):
    clean, _ = record
    assert snr(clean, pydenoise.load("seismic").denoise(clean)) > 15.0


def test_post_filter_adds_to_the_models_gain_in_real_noise(record):
    clean, ambient = record
    noisy = noise.mix(clean, ambient, 0.0)
    model = pydenoise.load("seismic")
    assert model.postfilter == {"history_s": 20.0} and model.noise_floor_s == 120.0  # as shipped
    plain, filtered = model.without_postfilter().denoise(noisy), model.denoise(noisy)
    assert snr(clean, filtered) > snr(clean, plain) + 0.5


def test_highpass_takes_out_the_drift_that_defeats_the_network(record):
    clean, ambient = record
    noisy = noise.mix(clean, ambient, 0.0)
    drifting = noisy + 10 * np.std(noisy - clean) * np.linspace(-1.0, 1.0, noisy.size)
    model = pydenoise.load("seismic")
    gain = {label: snr(clean, m.denoise(drifting)) - snr(clean, noisy)
            for label, m in (("as shipped", model), ("high-passed", model.with_highpass(0.005)))}
    assert gain["as shipped"] < 0 < 10 < gain["high-passed"], gain
