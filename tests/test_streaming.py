"""StreamingDenoiser: any chunking gives the offline result, sample for sample, with a documented latency."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pydenoise
from pydenoise.core.streaming import StreamingDenoiser

WINDOW = 256


def random_denoiser(residual: bool = False, seed: int = 0) -> pydenoise.Denoiser:
    torch.manual_seed(seed)
    return pydenoise.Denoiser(pydenoise.nn.DDAE(residual=residual), config={"sample_rate": 100.0, "hop": 64})


def identity_denoiser() -> pydenoise.Denoiser:
    """A noise-learning model whose noise estimate is 0: it returns its input, so samples can be traced."""
    module = pydenoise.nn.DDAE(residual=True)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
    return pydenoise.Denoiser(module, config={"hop": 64})


MODEL = random_denoiser()
# Normalised by a tracked noise floor (half a second: 2 to 31 frames at the hops below), whose state the stream carries.
FLOOR_MODEL = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 1000.0, "hop": 64, "noise_floor_s": 0.5})
# The same with a spectral post-filter on its frames, whose per-bin noise history the stream carries as well.
POSTFILTER_MODEL = FLOOR_MODEL.with_postfilter()
# And with a drift high-pass first, whose filter state the stream carries too.
HIGHPASS_MODEL = POSTFILTER_MODEL.with_highpass(5.0)


def stream_in_chunks(stream: StreamingDenoiser, x: np.ndarray, sizes) -> tuple[np.ndarray, list[int]]:
    """Feed ``x`` (last axis = time) in chunks of the given sizes (cycled); return the output and the counts."""
    outputs, counts, start, index = [], [], 0, 0
    while start < x.shape[-1]:
        size = sizes[index % len(sizes)]
        index += 1
        outputs.append(stream.process(x[..., start : start + size]))
        start += size
        counts.append(stream.samples_out)
        if stream._buffers is not None:  # None until the first sample arrives
            assert all(b.shape[1] == 2 * stream.window for b in stream._buffers)  # O(window), whatever the chunks
            assert stream._filled < stream.window and stream._overlap.shape[1] == stream.latency
    outputs.append(stream.flush())
    return np.concatenate(outputs, axis=-1), counts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    length=st.integers(1, 2500),
    log_amplitude=st.floats(-3, 6),
    offset=st.floats(-1, 1),
    sizes=st.lists(st.integers(0, 700), min_size=1, max_size=8).filter(any),
    hop=st.sampled_from([16, 64, 128, 256]),
    channels=st.sampled_from([None, 1, 3]),
    dtype=st.sampled_from([np.float64, np.float32]),
    model=st.sampled_from([MODEL, FLOOR_MODEL, POSTFILTER_MODEL, HIGHPASS_MODEL]),
    seed=st.integers(0, 2**31),
)
def test_any_chunking_equals_offline(length, log_amplitude, offset, sizes, hop, channels, dtype, model, seed):
    amplitude = 10.0**log_amplitude
    shape = (length,) if channels is None else (channels, length)
    rng = np.random.default_rng(seed)
    envelope = np.exp(3 * np.sin(np.linspace(0, 7, length)))  # loud and quiet stretches: the floor moves
    x = (amplitude * envelope * (rng.standard_normal(shape) + offset)).astype(dtype)
    expected = model.denoise(x, hop=hop)
    stream = model.stream(hop=hop)
    got, counts = stream_in_chunks(stream, x, sizes)
    assert got.shape == x.shape and got.dtype == x.dtype
    # The network runs in float32 at the input's level, so its rounding scales with the input, not the output
    # (which the post-filter makes much smaller).
    tolerance = 1e-6 * max(float(np.abs(expected).max()), float(np.abs(x).max()), np.finfo(dtype).tiny)
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)
    fed = np.cumsum([sizes[i % len(sizes)] for i in range(len(counts))]).clip(max=length)
    np.testing.assert_array_equal(counts, np.maximum(0, hop * (fed // hop) - stream.latency))


def test_identity_model_returns_every_sample_once_in_order():
    x = np.arange(1500, dtype=np.float64)
    for sizes in ([1], [7, 0, 300], [64], [1500]):
        got, _ = stream_in_chunks(identity_denoiser().stream(), x, sizes)
        np.testing.assert_allclose(got, x, rtol=0, atol=1e-3)  # float32 network; samples are 1 apart


def test_latency_is_window_minus_hop_and_one_sample_chunks_work():
    stream = MODEL.stream(hop=32)
    assert stream.latency == WINDOW - 32
    x = np.random.default_rng(1).standard_normal(600)
    outputs = [stream.process(x[i : i + 1]) for i in range(600)]
    first = next(i for i, out in enumerate(outputs) if out.size)
    assert first == WINDOW - 1  # the first sample leaves after window - 1 more samples: the worst case
    assert outputs[first].size == 32
    got = np.concatenate(outputs + [stream.flush()])
    expected = MODEL.denoise(x, hop=32)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * np.abs(got).max())


def test_a_million_samples_in_one_chunk():
    x = np.random.default_rng(2).standard_normal(1_000_000).astype(np.float32)
    stream = MODEL.stream(hop=WINDOW)
    first = stream.process(x)
    assert first.size == 1_000_000 - 1_000_000 % WINDOW
    got = np.concatenate([first, stream.flush()])
    expected = MODEL.denoise(x, hop=WINDOW)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6 * np.abs(got).max())


def test_channels_are_batched_into_one_network_call(monkeypatch):
    calls = []
    original = pydenoise.ops.ddae_overlap_add
    monkeypatch.setattr(pydenoise.ops, "ddae_overlap_add", lambda *a: calls.append(a[0].shape) or original(*a))
    stream = MODEL.stream()
    stream.process(np.zeros((5, 1000)))
    assert calls == [(5, 1000 + stream.latency)]  # every ready frame of the 5 channels in one call


def test_torch_chunks_come_back_as_tensors():
    x = torch.randn(2, 700, dtype=torch.float64)
    stream = MODEL.stream()
    parts = [stream.process(x[:, :350]), stream.process(x[:, 350:]), stream.flush()]
    assert all(isinstance(p, torch.Tensor) for p in parts)
    expected = MODEL.denoise(x)
    torch.testing.assert_close(torch.cat(parts, 1), expected, rtol=0, atol=1e-9)


def test_flush_resets_and_an_empty_stream_flushes_to_nothing():
    stream = MODEL.stream()
    assert stream.flush().shape == (0,)
    stream.process(np.ones(10))
    assert stream.flush().shape == (10,)
    assert stream.samples_in == 0 and stream.process(np.ones((2, 5), np.float32)).shape == (2, 0)


@pytest.mark.parametrize(
    "second, message",
    [
        (np.zeros(10, np.float32), "float32"),
        (np.zeros((2, 10)), "2 channels"),
        (torch.zeros(10, dtype=torch.float64), "torch"),
    ],
)
def test_chunks_must_match_the_stream(second, message):
    stream = MODEL.stream()
    stream.process(np.zeros(10))
    with pytest.raises(ValueError, match=message):
        stream.process(second)


@pytest.mark.parametrize(
    "chunk, error, message",
    [
        (np.array([1.0, np.nan]), ValueError, "NaN"),
        (np.zeros(10, np.int32), TypeError, "float32 or float64"),
        (np.zeros((1, 2, 3)), ValueError, "1-D"),
        ([1.0, 2.0], TypeError, "numpy array"),
    ],
)
@pytest.mark.parametrize("after_a_good_chunk", [False, True])  # later chunks take the cheaper checks
def test_bad_chunks_are_rejected(chunk, error, message, after_a_good_chunk):
    stream = MODEL.stream()
    if after_a_good_chunk:
        stream.process(np.zeros(300))
    with pytest.raises(error, match=message):
        stream.process(chunk)


def test_bad_hop_and_denoiser():
    with pytest.raises(ValueError, match="hop"):
        MODEL.stream(hop=100)
    with pytest.raises(TypeError, match="Denoiser"):
        StreamingDenoiser(MODEL.module)


def test_reset_picks_up_a_changed_model():
    model = random_denoiser(seed=3)
    x = np.random.default_rng(3).standard_normal(1000)
    stream = model.stream()
    stream.process(x[:500])
    with torch.no_grad():
        model.module.load_state_dict(random_denoiser(seed=4).module.state_dict())
    stream.reset()
    parts = [stream.process(x[:500]), stream.process(x[500:])]
    offset = stream.offset
    got = np.concatenate(parts + [stream.flush()])
    np.testing.assert_allclose(got, model.denoise(x, offset=offset), rtol=0, atol=1e-9)


# ------------------------------------------------------------------------------------ long-period streams


def long_period_pair(directory) -> pydenoise.Denoiser:
    """Random networks: a 30 Hz model whose long-period path runs a 10 Hz one below 2 Hz, after a drift high-pass."""
    from pydenoise.core.nn import save_model

    torch.manual_seed(5)
    path = directory / "long.safetensors"
    save_model(
        pydenoise.nn.DDAE(residual=True),
        path,
        {"sample_rate": 10.0, "hop": 32, "domain": "test", "noise_floor_s": 30.0},
    )
    short = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 30.0, "hop": 64, "domain": "test"})
    return short.with_long_period(path, crossover_hz=2.0).with_highpass(0.1)


@pytest.fixture(scope="module")
def long_period_models(tmp_path_factory):
    return {"shipped": pydenoise.load("seismic"), "random": long_period_pair(tmp_path_factory.mktemp("models"))}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    length=st.integers(1, 9000),
    sizes=st.lists(st.integers(0, 3000), min_size=1, max_size=6).filter(any),
    channels=st.sampled_from([None, 2]),
    dtype=st.sampled_from([np.float64, np.float32]),
    which=st.sampled_from(["shipped", "random"]),
    seed=st.integers(0, 2**31),
)
def test_long_period_streams_equal_offline(long_period_models, length, sizes, channels, dtype, which, seed):
    model = long_period_models[which]
    rng = np.random.default_rng(seed)
    shape = (length,) if channels is None else (channels, length)
    x = (rng.standard_normal(shape).cumsum(axis=-1) * 0.1 + rng.standard_normal(shape) + 5.0).astype(dtype)
    stream = model.stream()
    outputs, start, index = [], 0, 0
    while start < length:
        size = sizes[index % len(sizes)]
        outputs.append(stream.process(x[..., start : start + size]))
        start, index = start + size, index + 1
        assert stream.samples_out >= min(start, length) - stream.latency  # the delay stays within its bound
    got = np.concatenate(outputs + [stream.flush()], axis=-1)
    expected = model.denoise(x)
    assert got.shape == x.shape and got.dtype == x.dtype
    tolerance = 1e-6 * max(float(np.abs(expected).max()), float(np.abs(x).max()))
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)


def test_long_period_stream_latency_and_layouts():
    model = pydenoise.load("seismic")
    stream = model.stream()
    assert stream.latency == 2407 and "LongPeriodStream" in repr(stream)  # 24 s at 100 Hz
    x = torch.randn(3, 5000, dtype=torch.float64)
    parts = [stream.process(x[:, :4000]), stream.process(x[:, 4000:]), stream.flush()]
    assert all(isinstance(p, torch.Tensor) for p in parts) and stream.samples_in == 0  # flushed: reset
    expected = model.denoise(x)
    torch.testing.assert_close(torch.cat(parts, 1), expected, rtol=0, atol=1e-9)
    assert stream.process(np.zeros((2, 0))).shape == (2, 0) and stream.flush().shape == (2, 0)
    with pytest.raises(ValueError, match="2 channels"):
        stream.process(np.zeros(10))
        stream.process(np.zeros((2, 10)))
