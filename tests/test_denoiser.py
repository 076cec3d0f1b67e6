"""Offline denoising: framing, normalisation, overlap-add, dtypes and shapes, model files, errors."""

import numpy as np
import pytest
import torch
from conftest import random_ddae

import pydenoise
from pydenoise import Denoiser
from pydenoise.core.frames import frame_weights, normalise_frames, overlap_add, pad_edges
from pydenoise.core.nn import DDAE, load_model, save_model
from pydenoise.core.noise_floor import NoiseFloor
from pydenoise.core.postfilter import CausalHighpass, SpectralPostfilter


def identity_denoiser(residual=False):
    """A one-layer linear network that returns its window: f(x) = x, or noise = 0 in residual mode."""
    net = DDAE((256, 256), residual=residual)
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.zeros(256, 256) if residual else torch.eye(256))
        net.layers[0].bias.zero_()
    return Denoiser(net)


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("hop", [16, 64, 128, 256])
@pytest.mark.parametrize("samples", [1, 255, 256, 1000, 4099])
def test_identity_network_reproduces_input_edges_included(residual, hop, samples):
    rng = np.random.default_rng(samples)
    x = rng.standard_normal(samples) * 3.0 + 0.5
    y = identity_denoiser(residual).denoise(x, hop=hop)
    np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6 * np.abs(x).max())


def test_large_offsets_survive_in_float64():
    x = 1e6 + np.sin(np.arange(3000) / 7.0)
    y = identity_denoiser().denoise(x)
    np.testing.assert_allclose(y - 1e6, x - 1e6, atol=1e-6)


def test_zeros_give_zeros():
    m = Denoiser(random_ddae())
    for x in (np.zeros(1000), np.zeros((3, 500), np.float32), torch.zeros(2, 300, dtype=torch.float64)):
        y = m.denoise(x)
        assert (np.asarray(y) == 0).all()


def test_types_shapes_and_dtypes_are_kept():
    m = Denoiser(random_ddae())
    rng = np.random.default_rng(0)
    for x in (
        rng.standard_normal(777),
        rng.standard_normal(777).astype(np.float32),
        rng.standard_normal((4, 600)),
        torch.randn(3, 900),
        torch.randn(900, dtype=torch.float64),
    ):
        y = m.denoise(x)
        assert type(y) is type(x) and y.shape == x.shape and y.dtype == x.dtype


def test_channels_are_independent_and_batched_in_one_call(monkeypatch):
    m = Denoiser(random_ddae())
    x = np.random.default_rng(1).standard_normal((3, 2000))
    calls = []
    original = pydenoise.ops.ddae_overlap_add
    monkeypatch.setattr(
        pydenoise.ops, "ddae_overlap_add", lambda *a, **k: calls.append(a[0].shape) or original(*a, **k)
    )
    together = m.denoise(x)
    assert len(calls) == 1 and calls[0][0] == 3  # one call of the fused pipeline for all channels
    separately = np.stack([m.denoise(channel) for channel in x])
    np.testing.assert_allclose(together, separately, rtol=1e-6, atol=1e-9)


def test_scale_invariance():
    m = Denoiser(random_ddae(residual=True))
    x = np.random.default_rng(2).standard_normal(1500)
    np.testing.assert_allclose(m.denoise(x * 1e4), m.denoise(x) * 1e4, rtol=1e-5, atol=1e-5 * 1e4)


def test_save_load_round_trip(tmp_path):
    net = random_ddae(residual=True)
    path = tmp_path / "model.safetensors"
    save_model(net, path, {"sample_rate": 100.0, "hop": 128, "domain": "seismic"})
    loaded = pydenoise.load(path)
    assert (loaded.window, loaded.hop, loaded.sample_rate, loaded.residual) == (256, 128, 100.0, True)
    assert loaded.config["domain"] == "seismic"
    x = np.random.default_rng(3).standard_normal(2000)
    np.testing.assert_array_equal(loaded.denoise(x), Denoiser(net, {"hop": 128}).denoise(x))
    module, config = load_model(path)
    assert config["widths"] == list(net.widths)
    for a, b in zip(module.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)


def test_corrupt_and_truncated_files(tmp_path):
    good = tmp_path / "good.safetensors"
    save_model(random_ddae(), good)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a model at all" * 10)
    for path in (truncated, garbage):
        with pytest.raises(ValueError, match="not a readable safetensors file"):
            pydenoise.load(path)
    with pytest.raises(ValueError, match="does not exist"):
        pydenoise.load(tmp_path / "missing.safetensors")


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model name 'nonexistent'"):
        pydenoise.load("nonexistent")


@pytest.mark.parametrize(
    "x, error, message",
    [
        (np.array([]), ValueError, "empty"),
        (np.zeros((2, 0)), ValueError, "empty"),
        (np.array([1.0, np.nan, 2.0]), ValueError, "NaN or Inf"),
        (np.array([1.0, np.inf]), ValueError, "NaN or Inf"),
        (np.zeros((2, 3, 4)), ValueError, "1-D .* or 2-D"),
        (np.arange(10), TypeError, "float32 or float64"),
        (torch.arange(10), TypeError, "float32 or float64"),
        ([1.0, 2.0], TypeError, "numpy array or a torch tensor"),
    ],
)
def test_bad_signals(x, error, message):
    with pytest.raises(error, match=message):
        Denoiser(random_ddae()).denoise(x)


@pytest.mark.parametrize("hop, error", [(0, ValueError), (100, ValueError), (512, ValueError), (2.0, TypeError)])
def test_bad_hops(hop, error):
    with pytest.raises(error, match="hop"):
        Denoiser(random_ddae()).denoise(np.zeros(300), hop=hop)


def test_module_trains_through_the_reference_and_infers_through_the_kernel():
    net = random_ddae().train()
    x = torch.randn(8, 256)
    loss = (net(x) ** 2).mean()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            net(x), pydenoise.ops.ddae_reference(x, net.weights(), net.biases()), atol=1e-5, rtol=1e-5
        )


def test_inference_tensors_follow_parameter_updates_and_replacements():
    net = random_ddae()
    x = torch.randn(4, 256)
    with torch.no_grad():
        before = net.clean(x)
        other = random_ddae(seed=7)
        net.load_state_dict(other.state_dict())  # in place: the cached views see it
        torch.testing.assert_close(net.clean(x), other.clean(x))
        net.double().float()  # parameters replaced: the cache is rebuilt
        torch.testing.assert_close(net.clean(x), other.clean(x))
    assert not torch.equal(before, net.clean(x))


def test_bfloat16_module_runs_the_fused_kernel_and_follows_in_place_updates(monkeypatch):
    net = random_ddae()
    x = torch.randn(4, 256)
    with torch.no_grad():
        expected = net.clean(x)
        net.bfloat16()
        calls = []
        original = pydenoise.ops.ddae_forward
        monkeypatch.setattr(
            pydenoise.ops, "ddae_forward", lambda *a, **k: calls.append(a[1][0].dtype) or original(*a, **k)
        )
        bf16 = net.clean(x)
        assert calls == [torch.bfloat16]  # not the reference path
        torch.testing.assert_close(bf16, expected, atol=2e-2 * expected.abs().max().item(), rtol=0)
        net.layers[-1].bias.add_(1.0)  # bf16 biases reach the kernel as float32 copies: refreshed in place too
        torch.testing.assert_close(net.clean(x), bf16 + 1.0, atol=1e-2, rtol=0)


# --- noise-floor normalisation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("history", [1, 3, 10])
def test_noise_floor_is_the_running_minimum_whatever_the_split(history):
    rng = np.random.default_rng(3)
    rms = torch.from_numpy(rng.uniform(0.1, 10, (2, 200)))
    expected = torch.stack([rms[:, max(0, k - history + 1) : k + 1].amin(dim=1) for k in range(200)], dim=1)
    whole = NoiseFloor(history).update(rms)
    torch.testing.assert_close(whole, expected, rtol=0, atol=0)
    for sizes in ([1, 0, 7, 30, 2, 160], rng.integers(0, 2 * history + 2, 400).tolist()):
        tracker, parts, start = NoiseFloor(history), [], 0
        for size in sizes:
            parts.append(tracker.update(rms[:, start : start + size]))
            start += size
        torch.testing.assert_close(torch.cat(parts, dim=1), expected[:, :start], rtol=0, atol=0)


def test_noise_floor_tracks_trailing_dimensions_apart_on_both_minimum_paths():
    """Frequency bins (a trailing dimension) are tracked independently; 600 values per frame take the loop path
    of ``running_minimum``, 6 its cummin path."""
    rng = np.random.default_rng(4)
    for bins in (3, 300):
        rms = torch.from_numpy(rng.uniform(0.1, 10, (2, 50, bins)))
        tracker = NoiseFloor(7, skip=2)  # the two skipped frames are their own floors and count for no other
        floors = torch.cat([tracker.update(rms[:, start : start + 5]) for start in range(0, 50, 5)], dim=1)
        later = [rms[:, max(2, k - 6) : k + 1].amin(dim=1) for k in range(2, 50)]
        expected = torch.cat([rms[:, :2], torch.stack(later, dim=1)], dim=1)
        torch.testing.assert_close(floors, expected, rtol=0, atol=0)


def test_noise_floor_skips_the_padding_frames():
    rms = torch.tensor([[0.0, 0.0, 5.0, 3.0, 4.0]])  # two padding frames of zeros must not pin the floor
    assert NoiseFloor(4, skip=2).update(rms).tolist() == [[0.0, 0.0, 5.0, 3.0, 3.0]]
    with pytest.raises(ValueError, match="history must be >= 1"):
        NoiseFloor(0)


def test_floor_normalisation_tells_the_level_above_the_floor():
    frames = torch.tensor([[4.0, -4.0], [1.0, -1.0]])
    normalised, scale = normalise_frames(frames, floor=torch.tensor([[1.0], [1.0]]))
    assert normalised.tolist() == [[2.0, -2.0], [1.0, -1.0]] and scale.flatten().tolist() == [2.0, 1.0]


def test_floor_model_denoises_with_its_tracked_floor():
    """The floor model's output equals framing by hand with the floors of a NoiseFloor over the frames."""
    torch.manual_seed(0)
    config = {"sample_rate": 1000.0, "hop": 64, "noise_floor_s": 0.3}
    model = Denoiser(DDAE(), config=config)
    x = np.random.default_rng(0).standard_normal(3000) * np.linspace(0.1, 3, 3000)
    got = model.denoise(x, offset=0.0)
    padded = pad_edges(torch.from_numpy(x)[None], 192, 64 * 50 + 256 - 192 - 3000)
    frames = padded.unfold(1, 256, 64)[0]
    rms = frames.square().mean(dim=1).sqrt()
    floors = NoiseFloor(5, skip=3).update(rms[None])[0]
    clean = model.denoise_frames(frames, ((rms * floors).sqrt())[:, None]) * frame_weights(256, 64)
    expected = overlap_add(clean[None], 64)[0, 192 : 192 + 3000].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert not np.allclose(got, Denoiser(model.module, config={"hop": 64}).denoise(x, offset=0.0))


def test_floor_model_fused_and_framed_steps_agree():
    """The fused op with given frame scales (float32 weights) and the torch framing (float64 weights, which
    the fused kernel does not take) give one function, chunk after chunk."""
    torch.manual_seed(1)
    config = {"sample_rate": 1000.0, "hop": 32, "noise_floor_s": 0.2}
    fused, framed = Denoiser(DDAE(), config=config), Denoiser(DDAE(), config=config)
    framed.module.load_state_dict(fused.module.state_dict())
    framed.module.double()
    x = np.random.default_rng(4).standard_normal((2, 4000)) * np.linspace(0.05, 2, 4000)
    np.testing.assert_allclose(framed.denoise(x), fused.denoise(x), rtol=1e-5, atol=1e-6)
    streams = fused.stream(), framed.stream()
    for chunk in np.array_split(x, 7, axis=1):
        np.testing.assert_allclose(streams[1].process(chunk), streams[0].process(chunk), rtol=1e-5, atol=1e-6)


def test_noise_floor_needs_a_sample_rate():
    with pytest.raises(ValueError, match="noise_floor_s needs a sample_rate"):
        Denoiser(DDAE(), config={"noise_floor_s": 1.0})
    with pytest.raises(ValueError, match="must be > 0"):
        Denoiser(DDAE(), config={"sample_rate": 100.0, "noise_floor_s": 0})


def test_spectral_postfilter_gives_the_same_frames_whatever_the_split():
    frames = torch.randn(2, 30, 64, dtype=torch.float64) * torch.linspace(0.1, 3, 30)[None, :, None]
    whole = SpectralPostfilter(history=8, skip=2)(frames)
    split, parts = SpectralPostfilter(history=8, skip=2), []
    for start, stop in ((0, 1), (1, 1), (1, 7), (7, 30)):
        parts.append(split(frames[:, start:stop]))
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=0, atol=1e-12)


def test_spectral_postfilter_removes_stationary_noise_and_keeps_what_stands_above_it():
    """Frames of steady white noise lose over 5 dB (minimum statistics on 64-sample frames: 6-9 dB); a burst
    19 dB above the noise comes through within 1 % of its energy."""
    noise = 0.1 * torch.randn(1, 60, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    burst = torch.sin(torch.arange(64, dtype=torch.float64) * 2 * torch.pi * 8 / 64) * torch.hann_window(64) * 2.0
    frames = noise.clone()
    frames[0, 50] += burst
    out = SpectralPostfilter(history=40)(frames)

    def energy(x):
        return float(x.square().sum())

    assert energy(out[0, 20:50]) < 0.3 * energy(frames[0, 20:50])
    assert energy(out[0, 50] - burst) < 0.01 * energy(burst)


def test_highpass_is_checked_and_carries_its_state_across_chunks():
    model = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0})
    for bad in (0.0, 50.0, -1.0):
        with pytest.raises(ValueError, match="highpass_hz needs a sample_rate and must lie between 0 and its Nyquist"):
            model.with_highpass(bad)
    with pytest.raises(ValueError, match="highpass_hz needs a sample_rate"):
        pydenoise.Denoiser(pydenoise.nn.DDAE()).with_highpass(1.0)
    assert model.with_highpass(1.0).with_highpass(None).highpass() is None
    x = np.random.default_rng(0).standard_normal((2, 3000)) + 40.0
    whole = CausalHighpass(0.5, 100.0)(x)
    chunked = CausalHighpass(0.5, 100.0)
    parts = [chunked(x[:, a:b]) for a, b in ((0, 1), (1, 1), (1, 700), (700, 3000))]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    on_torch = CausalHighpass(0.5, 100.0)(torch.from_numpy(x).float())
    assert on_torch.dtype == torch.float32 and abs(float(on_torch[0, 0])) < 1e-3  # no step from the offset


def test_postfilter_options_are_checked():
    floor_model = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0, "noise_floor_s": 5.0})
    assert floor_model.with_postfilter().postfilter == {"history_s": 5.0}
    assert floor_model.with_postfilter(history_s=2, gain_floor=0.3).postfilter == {"history_s": 2.0, "gain_floor": 0.3}
    with pytest.raises(ValueError, match="over_subtraction >= 0"):
        floor_model.with_postfilter(over_subtraction=-1)
    with pytest.raises(ValueError, match="unknown postfilter options"):
        floor_model.with_postfilter(strength=2)
    rms_model = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0})
    with pytest.raises(ValueError, match="history_s > 0"):
        rms_model.with_postfilter()
    assert rms_model.with_postfilter(history_s=5).postfilter == {"history_s": 5.0}


def test_with_postfilter_tunes_one_option_and_keeps_the_others():
    model = pydenoise.Denoiser(
        pydenoise.nn.DDAE(),
        config={
            "sample_rate": 100.0,
            "noise_floor_s": 120.0,
            "postfilter": {"history_s": 20.0, "over_subtraction": 5.0},
        },
    )
    assert model.with_postfilter(gain_floor=0.2).postfilter == {
        "history_s": 20.0,
        "over_subtraction": 5.0,
        "gain_floor": 0.2,
    }
    assert model.with_postfilter(over_subtraction=2.0).postfilter == {"history_s": 20.0, "over_subtraction": 2.0}
    assert model.without_postfilter().with_postfilter().postfilter == {"history_s": 120.0}  # the defaults again


def test_zero_dimensional_input_is_refused():
    # found by tests/fuzz_cases.py: a 0-D array came back as a 1-sample trace
    model = pydenoise.Denoiser(pydenoise.nn.DDAE())
    with pytest.raises(ValueError, match="1-D"):
        model.denoise(np.array(0.0, dtype=np.float32))
