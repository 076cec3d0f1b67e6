"""The spectral-mask engine (pydenoise.core.spectral) and the seismic mask model."""

import numpy as np
import pytest
import torch

import pydenoise
from pydenoise.core.level import LocalLevel
from pydenoise.core.nn import DDAE, save_model
from pydenoise.core.spectral import MaskSettings, SpectralMaskDenoiser
from pydenoise.core.spectral_training import trace_frames
from pydenoise.seismic.noise import obspy_noise
from pydenoise.seismic.spectral_training import DEFAULTS, LOW_LATENCY, WIDTHS, train, training_mixes
from pydenoise.seismic.training_data import NoiseMixture

CONFIG = {"frame": 510, "hop": 85, "sample_rate": 100.0, "history_frames": 20}
SHIPPED = DEFAULTS  # the settings the seismic mask model is trained with


def mask_model(gain_logit=None, seed=0, config=CONFIG):
    torch.manual_seed(seed)
    net = DDAE((256, 64, 256))
    if gain_logit is not None:  # a constant gain: sigmoid(gain_logit) on every bin
        with torch.no_grad():
            net.layers[-1].weight.zero_()
            net.layers[-1].bias.fill_(gain_logit)
    return SpectralMaskDenoiser(net, config)


@pytest.mark.parametrize("samples", [1, 300, 509, 510, 511, 5000])
def test_a_pass_through_mask_gives_the_input_back(samples):
    x = np.random.default_rng(samples).standard_normal((2, samples)) * 5 + 100  # an offset too
    out = mask_model(gain_logit=60.0).denoise(x)
    assert out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-9)


@pytest.mark.parametrize("config", [SHIPPED, LOW_LATENCY], ids=["shipped", "low-latency"])
@pytest.mark.parametrize("samples", [1, 509, 5000])
def test_with_hann_windows_and_no_level_a_pass_through_gives_the_input_less_its_level(samples, config):
    x = np.random.default_rng(samples).standard_normal((2, samples)) * 5 + 100
    out = mask_model(gain_logit=60.0, config=config).denoise(x)
    level = LocalLevel(config["frame"], config["level_blocks"]).process(x)
    np.testing.assert_allclose(out, x - level, atol=1e-9)


def test_a_file_without_the_newer_keys_keeps_the_settings_it_was_made_with():
    settings = MaskSettings.from_config({"frame": 510, "hop": 85}, 256)
    assert (settings.floor_quantile, settings.window, settings.restore_level) == (0.5, "sqrt-hann", True)
    settings = MaskSettings.from_config(SHIPPED, 256)
    assert (settings.floor_quantile, settings.window, settings.restore_level) == (0.25, "hann", False)
    assert settings.history == SHIPPED["history_frames"] and settings.noise_scale == 3.5


def test_a_low_quantile_floor_keeps_a_long_event_that_a_median_floor_eats():
    """A 12 s burst ends up filling 70 % of a 20-frame (17 s) window: a median floor rises into it after half the
    window, and the prior gain falls to its floor; a 0.25 quantile stays at the noise for 75 % of the window."""
    rng = np.random.default_rng(5)
    t = np.arange(30_000) / 100.0
    burst = np.where((t > 150) & (t < 162), 3 * np.sin(2 * np.pi * 4.0 * t), 0.0)
    noisy = burst + rng.standard_normal(t.size)

    def kept(quantile):
        out = mask_model(gain_logit=0.0, config=CONFIG | {"floor_quantile": quantile}).denoise(noisy)
        window = slice(15_900, 16_150)  # the burst's last seconds
        return float(np.dot(out[window], burst[window]) / np.dot(burst[window], burst[window]))

    assert kept(0.25) > 0.9 and kept(0.5) < 0.5 * kept(0.25)


def test_with_no_correction_the_classical_prior_removes_steady_noise_and_keeps_a_strong_burst():
    """A 10 s burst is signal (the floor is a median over 51 s); steady noise, and a steady tone, are noise."""
    rng = np.random.default_rng(6)
    t = np.arange(60_000) / 100.0
    burst = np.where((t > 300) & (t < 310), 10 * np.sin(2 * np.pi * 5.0 * t), 0.0)
    noise = rng.standard_normal(t.size)
    model = mask_model(gain_logit=0.0)  # a zero correction: the decision-directed Wiener gain alone
    steady = slice(6000, -1000)  # after the noise floor's history has filled
    assert np.mean(model.denoise(noise)[steady] ** 2) < 0.1 * np.mean(noise[steady] ** 2)
    inside = (t > 301) & (t < 309)
    kept = model.denoise(burst + noise)[inside]
    assert abs(10 * np.log10(np.mean(kept**2) / np.mean(burst[inside] ** 2))) < 1.0


@pytest.mark.parametrize("config", [CONFIG, LOW_LATENCY], ids=["sqrt-hann", "low-latency"])
@pytest.mark.parametrize("cuts", [[7, 1000, 1003], [510], [85 * k for k in range(1, 40)], [4999]])
def test_a_stream_gives_the_offline_samples(cuts, config):
    model = mask_model(config=config)
    x = np.random.default_rng(1).standard_normal((3, 5000)).cumsum(axis=1)
    stream = model.stream()
    edges = [0, *cuts, x.shape[1]]
    parts = [stream.process(x[:, a:b]) for a, b in zip(edges, edges[1:])] + [stream.flush()]
    assert np.array_equal(np.concatenate(parts, axis=1), model.denoise(x))


@pytest.mark.parametrize("config, latency", [(CONFIG, 425), (LOW_LATENCY, 250)], ids=["shipped", "low-latency"])
def test_a_stream_holds_back_only_its_latency_and_one_hop(config, latency):
    model = mask_model(config=config)
    assert model.latency == latency
    stream = model.stream()
    x = np.random.default_rng(2).standard_normal(20_000)
    given = returned = 0
    for chunk in np.array_split(x, 97):
        returned += stream.process(chunk).shape[-1]
        given += chunk.size
        if given >= model.frame:
            assert given - returned <= model.latency + model.hop
    assert returned + stream.flush().shape[-1] == x.size


def test_types_and_shapes_come_back_as_given():
    model = mask_model()
    x = np.random.default_rng(3).standard_normal(3000).astype(np.float32)
    assert model.denoise(x).dtype == np.float32
    tensor = model.denoise(torch.from_numpy(x))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tensor.shape == (3000,)


def test_bad_input_and_configuration_are_refused_with_the_value():
    model = mask_model()
    with pytest.raises(ValueError, match="NaN"):
        model.denoise(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        model.denoise(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="hop=100"):
        model.denoise(np.zeros(100), hop=100)
    with pytest.raises(ValueError, match="hop 100 must divide"):
        SpectralMaskDenoiser(DDAE((256, 64, 256)), CONFIG | {"hop": 100})
    with pytest.raises(ValueError, match="hop 255 must divide the frame .510 samples. at least 3 times: hann"):
        SpectralMaskDenoiser(DDAE((256, 64, 256)), SHIPPED | {"hop": 255})
    with pytest.raises(ValueError, match="window 'kaiser' is not one of"):
        SpectralMaskDenoiser(DDAE((256, 64, 256)), CONFIG | {"window": "kaiser"})
    with pytest.raises(ValueError, match="fft_size 256 is shorter than the frame .300 samples."):
        SpectralMaskDenoiser(DDAE((129, 64, 129)), LOW_LATENCY | {"fft_size": 256})
    with pytest.raises(ValueError, match="300 samples zero-padded to 510 has 256 bins, the network's window is 151"):
        SpectralMaskDenoiser(DDAE((151, 64, 151)), LOW_LATENCY)
    with pytest.raises(ValueError, match="floor_quantile must be in .0, 1., got 1.5"):
        SpectralMaskDenoiser(DDAE((256, 64, 256)), CONFIG | {"floor_quantile": 1.5})
    with pytest.raises(ValueError, match="510 samples has 256 bins, the network's window is 128"):
        SpectralMaskDenoiser(DDAE((128, 64, 128)), CONFIG)
    with pytest.raises(ValueError, match="max_correction must be >= 0 .or None: unlimited., got -1"):
        SpectralMaskDenoiser(DDAE((256, 64, 256)), CONFIG | {"max_correction": -1})


def test_the_correction_limit_bounds_how_far_the_network_moves_the_prior():
    x = np.random.default_rng(3).standard_normal(6000) * np.linspace(1, 30, 6000)
    prior_alone = mask_model(gain_logit=0.0, config=SHIPPED).denoise(x)  # a zero correction
    erasing = mask_model(gain_logit=-20.0, config=SHIPPED)  # what erased a 50 Hz station's events (docs/seismic.md)
    limited = SpectralMaskDenoiser(erasing.module, SHIPPED | {"max_correction": 0.0})
    np.testing.assert_allclose(limited.denoise(x), prior_alone, atol=1e-12)
    assert np.std(erasing.denoise(x)) < 1e-3 * np.std(prior_alone)
    one = SpectralMaskDenoiser(erasing.module, SHIPPED | {"max_correction": 1.0}).denoise(x)
    assert 0.05 * np.std(prior_alone) < np.std(one) < np.std(prior_alone)


def test_training_targets_line_up_with_what_inference_computes():
    """The ideal per-bin gain computed from the training frames, applied through the engine's own synthesis,
    beats any constant gain by a wide margin: the clean and noisy spectra are framed alike."""
    rng = np.random.default_rng(4)
    mixture = NoiseMixture([obspy_noise()], ["STS2"], 100.0)
    clean, noisy = training_mixes([], mixture, 4, 12000, rng, snr_db=(0.0, 0.0))
    features, _, x, s = trace_frames(clean, noisy, DEFAULTS)
    assert features.shape == x.shape == s.shape and features.shape[-1] == 256
    ideal = ((s * x.conj()).real / x.abs().square().clamp_min(1e-30)).clamp(0, 1)

    def residual(gain):
        return float((gain * x - s).abs().square().sum() / s.abs().square().sum())

    assert residual(ideal) < 0.5 * min(residual(torch.full_like(ideal, g)) for g in (0.25, 0.5, 0.75, 1.0))


def test_a_short_training_run_writes_a_model_that_load_returns(tmp_path):
    path = tmp_path / "mask.safetensors"
    recording = obspy_noise()
    _, metadata, log = train([], [], [recording], ["STS2"], path, epochs=1, rows=32, samples=6000)
    model = pydenoise.load(str(path))
    assert isinstance(model, SpectralMaskDenoiser) and model.module.widths == WIDTHS
    assert metadata["best_epoch"] == 1 and np.isfinite(log[0]["held_loss"])
    assert model.denoise(np.random.default_rng(5).standard_normal(3000)).shape == (3000,)


def test_a_ddae_file_still_loads_as_a_denoiser(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_model(DDAE(), path, config={"sample_rate": 100.0})
    assert isinstance(pydenoise.load(str(path)), pydenoise.Denoiser)


@pytest.mark.parametrize("name, latency_s", [("seismic_mask", 4.25), ("seismic_mask_low_latency", 2.5)])
def test_the_shipped_mask_models_load_with_their_documented_latency(name, latency_s):
    model = pydenoise.load(name)
    assert isinstance(model, SpectralMaskDenoiser) and model.sample_rate == 100.0
    assert model.latency / model.sample_rate == latency_s
    assert model.settings.floor_quantile == 0.25 and not model.settings.restore_level
