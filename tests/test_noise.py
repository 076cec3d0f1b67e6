"""pydenoise.core.noise and pydenoise.seismic.noise: generators (shape, seed, spectrum) and mix (exact SNR, errors)."""

import numpy as np
import pytest

from pydenoise.core import noise
from pydenoise.core.metrics import snr
from pydenoise.seismic.noise import obspy_noise


def _psd_slope(x):
    """Log-log slope of the averaged power spectrum between 1 % and 25 % of the sampling rate."""
    power = np.mean(np.abs(np.fft.rfft(x, axis=-1)) ** 2, axis=0)
    frequency = np.fft.rfftfreq(x.shape[-1])
    band = (frequency > 0.01) & (frequency < 0.25)
    return np.polyfit(np.log(frequency[band]), np.log(power[band]), 1)[0]


@pytest.mark.parametrize("generator", [noise.white, noise.pink, noise.brown])
def test_generators_are_seeded_and_shaped(generator):
    a = generator((3, 500), rng=7)
    assert a.shape == (3, 500)
    np.testing.assert_array_equal(a, generator((3, 500), rng=np.random.default_rng(7)))
    assert not np.array_equal(a, generator((3, 500), rng=8))


@pytest.mark.parametrize(("generator", "slope"), [(noise.white, 0.0), (noise.pink, -1.0), (noise.brown, -2.0)])
def test_colour_sets_the_spectral_slope(generator, slope):
    assert _psd_slope(generator((64, 4096), rng=1)) == pytest.approx(slope, abs=0.1)


def test_coloured_rows_have_unit_rms():
    x = noise.coloured((5, 1000), 1.5, rng=0)
    np.testing.assert_allclose(np.sqrt(np.mean(x**2, axis=1)), 1.0)


def test_band_limited_has_no_energy_outside_the_band():
    x = noise.band_limited((4, 2000), 2.0, 8.0, sample_rate=100.0, rng=0)
    spectrum = np.abs(np.fft.rfft(x, axis=1))
    frequency = np.fft.rfftfreq(2000, 0.01)
    outside = (frequency < 2.0) | (frequency > 8.0)
    assert spectrum[:, outside].max() < 1e-9 * spectrum.max()
    with pytest.raises(ValueError, match="fmax"):
        noise.band_limited(100, 5.0, 60.0, sample_rate=100.0)


def test_spikes_rate_and_heavy_tails():
    x = noise.spikes((10, 10000), rate=0.02, rng=3)
    assert np.count_nonzero(x) / x.size == pytest.approx(0.02, rel=0.1)
    with pytest.raises(ValueError, match="rate"):
        noise.spikes(10, rate=1.5)


def test_mask_zeroes_an_exact_fraction_and_copies():
    x = np.ones((3, 400))
    y = noise.mask(x, 0.1, rng=0)
    assert (y == 0).sum(axis=1).tolist() == [40, 40, 40]
    assert (x == 1).all()
    with pytest.raises(ValueError, match="fraction"):
        noise.mask(x, -0.1)


def test_from_recording_cuts_real_segments():
    recording = np.random.default_rng(0).standard_normal(5000).cumsum()
    segments = noise.from_recording(recording, (6, 300), rng=1, augment=False)
    windows = np.lib.stride_tricks.sliding_window_view(recording, 300)
    windows = windows - windows.mean(axis=1, keepdims=True)
    windows /= np.sqrt(np.mean(windows**2, axis=1, keepdims=True))
    for segment in segments:  # each is a demeaned, rescaled stretch of the recording
        assert np.abs(windows - segment).max(axis=1).min() < 1e-9
    np.testing.assert_allclose(np.sqrt(np.mean(segments**2, axis=1)), 1.0)
    with pytest.raises(ValueError, match="do not fit"):
        noise.from_recording(recording, 6000)


def test_obspy_noise_is_resampled_explicitly():
    data = obspy_noise("ref_STS2", 100.0)
    assert data.size == 360000 and not data.flags.writeable
    assert abs(data.mean()) < 1e-6 * np.abs(data).max()
    with pytest.raises(ValueError, match="name"):
        obspy_noise("nope")


def test_mix_reaches_the_requested_snr_row_by_row():
    clean = np.sin(np.linspace(0, 30, 800))[None] * np.array([[1.0], [5.0]])
    mixed = noise.mix(clean, noise.white((2, 800), rng=0), np.array([-5.0, 12.0]))
    assert snr(clean[0], mixed[0]) == pytest.approx(-5.0)
    assert snr(clean[1], mixed[1]) == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("clean", "noise_", "match"),
    [
        (np.zeros(10), np.ones(10), "zero energy"),
        (np.ones(10), np.zeros(10), "zero energy"),
        (np.ones(10), np.ones(11), "shapes differ"),
        (np.array([1.0, np.nan]), np.ones(2), "finite"),
    ],
)
def test_mix_rejects_bad_input(clean, noise_, match):
    with pytest.raises(ValueError, match=match):
        noise.mix(clean, noise_, 0.0)
