"""The shipped seismic models load, carry their metadata, and clearly denoise a real record (a broken or
badly trained weights file cannot land)."""

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

import pydenoise
from pydenoise.core import noise
from pydenoise.core.metrics import snr
from pydenoise.seismic.demo import DEMO_RECORD, bundled_record
from pydenoise.seismic.noise import obspy_noise

#: The shipped model gains about 9.5 dB at 0 dB and 7 dB at 10 dB on this mix; an untrained or corrupted network
#: gains nothing or loses, so these margins catch a broken weights file without flaking on a retrained one.
MIN_GAIN_DB = {0.0: 5.0, 10.0: 4.0}
#: What the long-period path must add on KONO at 0 dB (about 3.5 dB as shipped).
LONG_PERIOD_MARGIN_DB = 1.5


@pytest.fixture(scope="module")
def record():
    clean = bundled_record(*DEMO_RECORD, 100.0, announce=lambda _: None)
    ambient = noise.from_recording(obspy_noise("ref_unknown", 100.0), clean.size, rng=3, augment=False)
    return clean, ambient


@pytest.mark.parametrize("name, rate", [("seismic", 100.0), ("seismic_dae", 100.0), ("seismic_lp", 12.5)])
def test_metadata_records_how_it_was_made(name, rate):
    model = pydenoise.load(name)
    assert model.sample_rate == rate and model.window == 256
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
    assert model.postfilter == {"history_s": 20.0, "over_subtraction": 5.0}  # as shipped
    assert model.noise_floor_s == 120.0
    plain, filtered = model.without_postfilter().denoise(noisy), model.denoise(noisy)
    assert snr(clean, filtered) > snr(clean, plain) + 0.5


def test_post_filter_keeps_its_time_constants_at_any_hop(record):
    # Its smoothing is given per frame at the model's hop; taken per frame at hop 8 and 64 as well, the same mix
    # came out 7.0 and 11.4 dB.
    clean, _ = record
    noisy = noise.mix(clean, noise.pink(clean.size, 5), 0.0)
    model = pydenoise.load("seismic").with_long_period(None)
    gains = [snr(clean, model.denoise(noisy, hop=hop)) for hop in (8, 64)]
    assert abs(gains[0] - gains[1]) < 0.5, gains


def test_highpass_takes_out_the_drift_that_defeats_the_network(record):
    clean, ambient = record
    noisy = noise.mix(clean, ambient, 0.0)
    drifting = noisy + 10 * np.std(noisy - clean) * np.linspace(-1.0, 1.0, noisy.size)
    model = pydenoise.load("seismic")
    high_passed = model.with_highpass(0.01)

    def gain(denoiser, x):
        return snr(clean, denoiser.denoise(x)) - snr(clean, noisy)

    assert gain(model, drifting) < 0 < gain(model, noisy) - 1 < gain(high_passed, drifting)


#: A distant event recorded at 20 Hz: most of its energy lies below 0.1 Hz, where the microseism also lies.
KONO = ("io/seisan/tests/data/2001-01-13-1742-24S.KONO__004", ".KONO.0.B0Z")


def test_long_period_path_keeps_a_distant_events_long_period_waves():
    clean = bundled_record(*KONO, 100.0, announce=lambda _: None)
    ambient = noise.from_recording(obspy_noise("ref_unknown", 100.0), clean.size, rng=3, augment=False)
    noisy = noise.mix(clean, ambient, 0.0)
    model = pydenoise.load("seismic")
    assert model.long_period == {"model": "seismic_lp", "crossover_hz": 0.5}  # as shipped
    gain = {
        label: snr(clean, m.denoise(noisy)) - snr(clean, noisy)
        for label, m in (("short", model.with_long_period(None)), ("long", model))
    }
    assert gain["long"] > gain["short"] + LONG_PERIOD_MARGIN_DB, gain


def test_long_period_path_changes_only_the_band_below_its_crossover(record):
    clean, ambient = record
    noisy = noise.mix(clean, ambient, 0.0)
    model = pydenoise.load("seismic")
    short, merged = model.with_long_period(None).denoise(noisy), model.denoise(noisy)
    above = butter(4, 2.0, "highpass", fs=100.0, output="sos")  # two octaves above the 0.5 Hz crossover
    changed = np.sum(sosfiltfilt(above, merged - short) ** 2)
    assert np.sum((merged - short) ** 2) > 1e-3 * np.sum(short**2)  # it does change the low band...
    assert changed < 1e-6 * np.sum(sosfiltfilt(above, short) ** 2)  # ...and nothing above it


@pytest.mark.parametrize(
    "options, match",
    [
        ({"model": "seismic_dae"}, "integer fraction"),
        ({"crossover_hz": 6.0}, "crossover_hz"),
        ({"crossover_hz": -1.0}, "crossover_hz"),
    ],
)
def test_long_period_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        pydenoise.load("seismic").with_long_period(**options)


def test_long_period_path_needs_a_model_of_the_same_domain():
    with pytest.raises(ValueError, match="for seismic data, this one for audio"):
        pydenoise.load("speech").with_long_period()
    model = pydenoise.load("seismic")
    assert model.with_long_period(None).long_period is None and "long_period" in repr(model)
