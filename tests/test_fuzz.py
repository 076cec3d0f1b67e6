"""Fuzzing every public entry point (issue #27, item 2): each Hypothesis case ends in a valid result or a clear
error (see ``tests/fuzz_cases.py``). ``benchmarks/fuzz_entry_points.py`` runs the same checks at a larger size and
records the counts. Below the fuzz: regression tests for the bugs it found."""

import fuzz_cases
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pydenoise
from pydenoise import audio
from pydenoise.core.frames import SAMPLE_LIMITS
from pydenoise.core.noise_floor import NoiseFloor, window_floors

EXAMPLES = 100  # per entry point: about 40 s in all on one core


@pytest.fixture(scope="module")
def checks():
    corpus = fuzz_cases.FileCorpus()
    yield fuzz_cases.entry_points(fuzz_cases.shipped_models(), corpus)
    corpus.close()


@pytest.mark.parametrize("entry_point", fuzz_cases.ENTRY_POINTS)
def test_entry_point_gives_a_result_or_a_clear_error(checks, entry_point):
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.data())
    def run(data):
        checks[entry_point](data.draw)

    run()


# ---------------------------------------------------------------------------------------------------------------
# Regressions


def extreme_trace(limit: float, dtype) -> np.ndarray:
    """Two channels at the limit: a silent start, noise, a quiet stretch, a step to +limit and a -limit spike."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 3000)) * limit / 4).clip(-limit, limit)
    x[0, :700] = 0
    x[0, 1500:1800] *= 1e-3
    x[1, 1200:] = limit
    x[1, 2500] = -limit
    return x.astype(dtype)


@pytest.mark.parametrize("name", ["seismic", "seismic_dae", "seismic_mask", "speech", "image"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_samples_up_to_the_limit_give_finite_output_and_beyond_it_a_clear_error(name, dtype):
    """Finite samples of ~1e152 (float64) or ~1e18 (float32) overflowed the frame energies and came out as NaN
    or Inf (found by fuzzing audio.denoise); a long-period model's float32 path overflowed for float64 input
    beyond ~1e18 and reported "NaN or Inf samples" in an input that had none."""
    model = pydenoise.load(name)
    limit = SAMPLE_LIMITS[torch.float32] if getattr(model, "long_period", None) else SAMPLE_LIMITS[dtype]
    x = extreme_trace(limit, torch.empty(0, dtype=dtype).numpy().dtype)
    stream = model.stream()
    streamed = [stream.process(x[:, :1100]), stream.process(x[:, 1100:]), stream.flush()]
    for out in (model.denoise(x), np.concatenate([part for part in streamed if part.size], axis=1)):
        assert out.shape == x.shape and np.isfinite(out).all()
    with pytest.raises(ValueError, match=rf"magnitude 1\.01e\+{np.log10(limit):.0f}, beyond the limit of 1e\+"):
        model.denoise(x * x.dtype.type(1.01))
    with pytest.raises(ValueError, match="beyond the limit"):
        model.stream().process(x * x.dtype.type(1.01))


def test_audio_near_1e152_is_refused_naming_the_value_and_the_limit():
    loud = np.full(4000, 1e152)
    loud[::3] *= -0.5
    with pytest.raises(ValueError, match=r"magnitude 1e\+152, beyond the limit of 1e\+150"):
        audio.denoise(loud, 16000)
    assert np.isfinite(audio.denoise(loud / 100, 16000)).all()


def test_zero_frames_do_not_count_in_the_noise_floor():
    """A channel that starts with zeros (a gap filled with zeros, digital silence) had floor 0, so the scale
    sqrt(rms · floor) was 0 and the noise-floor models returned zeros for a whole floor history (120 s for
    ``seismic``) after it: a 2 Hz wave of amplitude 1 came out 44 dB down."""
    tracker = NoiseFloor(history=3, skip=1)
    assert tracker.update(torch.tensor([[9.0, 0.0, 0.0, 4.0, 5.0, 0.0, 6.0]])).tolist() == [
        [9.0, 0.0, 0.0, 4.0, 4.0, 0.0, 5.0]
    ]
    signal = np.concatenate([np.zeros(300), np.random.default_rng(1).standard_normal(500)])[None]
    starts = np.arange(0, 800 - 64 + 1, 16)[None]
    streamed = NoiseFloor(history=5).update(torch.from_numpy(window_floors(signal, starts, 64, 16, 1)[..., None]))
    assert np.allclose(window_floors(signal, starts, 64, 16, 5), streamed[..., 0].numpy())

    model = pydenoise.load("seismic").with_long_period(None)
    t = np.arange(6000) / model.sample_rate
    wave = np.sin(2 * np.pi * 2.0 * t) * (t % 10 < 3) + np.random.default_rng(0).standard_normal(t.size) * 0.1
    after_zeros = model.denoise(np.concatenate([np.zeros(6000), wave]))[6000:]
    alone = model.denoise(wave)
    first_10_s = slice(0, 1000)
    assert np.sqrt(np.mean(after_zeros[first_10_s] ** 2)) > 0.5 * np.sqrt(np.mean(alone[first_10_s] ** 2))


def test_spectral_mask_after_zeros_is_finite_and_refuses_non_float_dtypes():
    """A seismic_mask channel that started with zeros came out NaN (zero floor: posterior SNR inf, gain
    inf / inf); int data came back truncated (int8 wrapped) and complex lost its imaginary part, silently."""
    model = pydenoise.load("seismic_mask")
    x = np.random.default_rng(0).standard_normal(3000)
    x[:1000] = 0
    assert np.isfinite(model.denoise(x)).all()
    for bad in (np.arange(3000, dtype=np.int8), np.ones(3000, dtype=np.complex64), np.ones(3000, dtype=np.float16)):
        with pytest.raises(TypeError, match=f"got dtype {bad.dtype}"):
            model.denoise(bad)


def test_a_floor_from_a_few_tiny_samples_does_not_overflow_the_normalised_window():
    """Zeros with one sample of 1.0 and one of 1.3e-116: the second gave a floor 1e-116, the scale
    sqrt(rms · floor) made the normalised window overflow float32, and the stream output NaN."""
    x = np.zeros((3, 300))
    x[1, 40], x[2, 200] = 1.0, 1.2753e-116
    model = pydenoise.load("seismic")
    stream = model.stream()
    streamed = np.concatenate([stream.process(x), stream.flush()], axis=1)
    assert np.isfinite(streamed).all() and np.isfinite(model.denoise(x)).all()


def test_no_channels_and_unrepresentable_kernels_are_refused():
    """A (0, n) chunk reached the FFTs with an empty batch (MKL: "Inconsistent configuration parameters"); a
    kernel weight of 1e149 became Inf in the filters' float32 arithmetic and the image NaN."""
    for model in (pydenoise.load("seismic"), pydenoise.load("seismic_mask")):
        with pytest.raises(ValueError, match=r"no channels \(shape \(0, 1\)\)"):
            model.stream().process(np.zeros((0, 1), np.float32))
        with pytest.raises(ValueError, match="no channels"):
            model.denoise(np.zeros((0, 1)))
    with pytest.raises(ValueError, match=r"within ±3\.403e\+38 \(filtered in float32\), got 1e\+149"):
        pydenoise.image.convolve(np.zeros((4, 4), np.float32), [[1e149]])


def test_a_1x1_median_refuses_nan_as_every_ksize():
    """image.median(ksize=1) returned an image holding NaN (its shortcut skipped the kernels' check)."""
    img = np.ones((4, 4), np.float32)
    img[1, 2] = np.nan
    for ksize in (1, 3):
        with pytest.raises(ValueError, match="img contains NaN or Inf"):
            pydenoise.image.median(img, ksize)
