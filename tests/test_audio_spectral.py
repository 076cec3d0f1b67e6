"""The spectral-mask speech models: the engine's zero-padded frames (fft_size) and strided noise floor, the
training mixes, the shipped 16 and 48 kHz models (latency, streaming = offline) and the live callback."""

import numpy as np
import pytest
import torch

import pydenoise
from pydenoise.audio import LiveProcessor, training_data
from pydenoise.audio.spectral_training import CONFIGS, WIDTHS, SpeechMixer
from pydenoise.core import spectral_features
from pydenoise.core.denoiser import available_models
from pydenoise.core.nn import DDAE
from pydenoise.core.spectral import SpectralMaskDenoiser
from pydenoise.core.spectral_features import RunningQuantile

SHIPPED = {16000: "speech_mask16k", 48000: "speech_mask48k"}


def untrained(rate):
    """A model of the shipped layout whose correction is zero: the classical Wiener gain alone."""
    module = DDAE(WIDTHS)
    with torch.no_grad():
        module.layers[-1].weight.zero_()
        module.layers[-1].bias.zero_()
    return SpectralMaskDenoiser(module, CONFIGS[rate])


def speech_like(rate, seconds=1.5, seed=0):
    """Harmonic bursts (a quarter of the time, as syllables occupy a bin) in pink noise, 10 dB SNR."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20)) * (np.sin(2 * np.pi * 1.5 * t) > 0.7)
    return training_data.mix(voiced, training_data.pink(1, t.size, rng)[0], 10.0)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_stream_equals_offline_bit_for_bit_with_zero_padded_frames(rate):
    model = untrained(rate)
    x = speech_like(rate)
    offline = model.denoise(x)
    stream = model.stream()
    rng = np.random.default_rng(1)
    parts, start = [], 0
    while start < x.size:
        size = int(rng.integers(1, 700))
        parts.append(stream.process(x[start : start + size]))
        start += size
    np.testing.assert_array_equal(np.concatenate(parts + [stream.flush()]), offline)
    assert offline.shape == x.shape


@pytest.mark.parametrize("rate", [16000, 48000])
def test_latency_is_within_20_ms_and_the_network_sees_256_bins(rate):
    config = CONFIGS[rate]
    assert config["fft_size"] // 2 + 1 == WIDTHS[0] == 256
    worst = config["frame"] - config["hop"] + config["hop"] - 1  # plus up to one hop of buffering
    assert worst / rate <= 0.020
    assert untrained(rate).latency == config["frame"] - config["hop"]


def test_fft_size_shorter_than_the_frame_is_refused_with_both_values():
    with pytest.raises(ValueError, match="fft_size 300 is shorter than the frame \\(320 samples\\)"):
        SpectralMaskDenoiser(DDAE((151, 8, 151)), {"frame": 320, "fft_size": 300, "hop": 160})
    with pytest.raises(ValueError, match="320 samples zero-padded to 510 has 256 bins, the network's window is 151"):
        SpectralMaskDenoiser(DDAE((151, 8, 151)), {"frame": 320, "fft_size": 510, "hop": 160})


@pytest.mark.parametrize("quantile", [0.5, 0.25, 0.3])
@pytest.mark.parametrize("stride", [1, 3, 4])
@pytest.mark.parametrize("block", [1 << 23, 50])  # windows sorted at once: all, or a few per block
def test_running_quantile_is_the_quantile_of_every_strideth_recent_value(quantile, stride, block, monkeypatch):
    monkeypatch.setattr(spectral_features, "WINDOW_VALUES_PER_BLOCK", block)
    history, skip = 9, 5
    values = torch.rand(2, 40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    floor = RunningQuantile(history, quantile, skip=skip, stride=stride)
    got = torch.cat([floor.update(values[:, :17]), floor.update(values[:, 17:17]), floor.update(values[:, 17:])], 1)
    counted = values.clone()
    counted[:, :skip] = float("nan")
    for k in range(values.shape[1]):
        taken = counted[:, max(0, k - history + 1) : k + 1].flip(1)[:, ::stride]  # the newest first
        want = taken.nanmedian(dim=1).values if quantile == 0.5 else taken.nanquantile(quantile, dim=1)
        want = torch.where(want.isnan(), values[:, k], want)  # nothing counted yet: the value itself
        np.testing.assert_allclose(got[:, k], want, rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="stride=0"):
        RunningQuantile(history, stride=0)


def test_zero_correction_keeps_clean_speech_and_cuts_noise_alone():
    model = untrained(16000)
    x = speech_like(16000, seconds=3.0)
    out = model.denoise(x)
    voiced = np.abs(x) > 0.5 * np.abs(x).max()
    assert np.mean(out[voiced] ** 2) > 0.5 * np.mean(x[voiced] ** 2)
    noise = training_data.white(1, 48000, np.random.default_rng(2))[0] * 0.01
    assert np.mean(model.denoise(noise)[16000:] ** 2) < 0.1 * np.mean(noise**2)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_speech_mixer_rows_have_the_drawn_snr_at_the_rate(rate):
    rng = np.random.default_rng(0)
    utterances = [speech_like(16000, seconds=s, seed=i) for i, s in enumerate((0.6, 1.2))]
    mixer = SpeechMixer(utterances, [training_data.pink(1, 20000, rng)[0]], rate)
    clean, noisy = mixer.rows(6, rate, rng, snr_db=(7.0, 7.0))
    assert clean.shape == noisy.shape == (6, rate)
    snr = 10 * np.log10(np.sum(clean**2, axis=1) / np.sum((noisy - clean) ** 2, axis=1))
    np.testing.assert_allclose(snr, 7.0, atol=1e-6)
    assert np.abs(noisy).max(axis=1).max() <= 1.0 + 1e-9
    with pytest.raises(ValueError, match="got 2 and 0"):
        SpeechMixer(utterances, [], rate)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_shipped_model_loads_streams_like_offline_and_denoises(rate):
    if SHIPPED[rate] not in available_models():
        pytest.skip(f"{SHIPPED[rate]} is not shipped yet")
    model = pydenoise.load(SHIPPED[rate])
    assert isinstance(model, SpectralMaskDenoiser) and model.sample_rate == rate
    assert (model.latency + model.hop - 1) / rate <= 0.020
    x = speech_like(rate, seconds=2.0)
    offline = model.denoise(x)
    stream = model.stream()
    chunk = rate // 100
    streamed = [stream.process(x[i : i + chunk]) for i in range(0, x.size, chunk)]
    # Equal to float32 rounding: one frame per chunk (16 kHz) runs the fused op at batch 1, whose sums round
    # otherwise than the offline batch's (2e-7 at most on this unit-peak signal).
    np.testing.assert_allclose(np.concatenate(streamed + [stream.flush()]), offline, rtol=0, atol=1e-6)
    noise = training_data.white(1, x.size, np.random.default_rng(4))[0] * 0.05
    assert np.mean(model.denoise(noise)[rate // 2 :] ** 2) < 0.1 * np.mean(noise**2)


@pytest.mark.parametrize("blocksize", [64, 480])
def test_live_callback_gives_the_offline_samples_after_its_latency(blocksize):
    model = untrained(48000)
    x = speech_like(48000, seconds=1.0).astype(np.float32)
    processor = LiveProcessor(model, 48000, channels=1, blocksize=blocksize)
    outputs = []
    for start in range(0, x.size - blocksize + 1, blocksize):
        indata = x[start : start + blocksize, None].copy()
        outdata = np.full_like(indata, np.nan)
        processor(indata, outdata, blocksize, None, None)
        outputs.append(outdata[:, 0])
    y = np.concatenate(outputs)
    delay = round(processor.latency * 48000)
    assert delay / 48000 <= 0.020
    offline = model.denoise(x.astype(np.float64))
    np.testing.assert_allclose(y[delay:], offline[: y.size - delay], atol=1e-5)
    assert processor.summary()["late_frames"] == 0
