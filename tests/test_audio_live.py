"""The live path without sound hardware: streaming resampler, output buffer and the duplex callback driven
with synthetic blocks."""

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import identity_denoiser

import pydenoise
from pydenoise.audio import LiveProcessor, OutputBuffer, StreamResampler


def random_chunks(total, largest, seed=0):
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(0, largest + 1)))
    sizes[-1] -= sum(sizes) - total
    return sizes


def feed(resampler, x, sizes):
    parts, start = [], 0
    for size in sizes:
        parts.append(resampler.process(x[:, start : start + size]))
        start += size
    return np.concatenate(parts, axis=1)


# --- StreamResampler -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate, target", [(48000, 16000), (16000, 48000), (44100, 16000), (16000, 44100)])
def test_stream_resampler_any_chunking_gives_the_same_samples(rate, target):
    x = np.random.default_rng(1).standard_normal((2, rate // 10)).astype(np.float32)
    whole = StreamResampler(rate, target, channels=2).process(x)
    chunked = feed(StreamResampler(rate, target, channels=2), x, random_chunks(x.shape[1], 700))
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    up, down = target // np.gcd(rate, target), rate // np.gcd(rate, target)
    assert whole.shape == (2, (x.shape[1] * up - 1) // down + 1)  # every output whose input has arrived


@pytest.mark.parametrize("rate, target", [(48000, 16000), (16000, 48000), (44100, 16000)])
def test_stream_resampler_passes_speech_band_with_its_stated_delay(rate, target):
    resampler = StreamResampler(rate, target, channels=1)
    t = np.arange(rate // 5) / rate
    frequencies = (300.0, 1000.0, 3000.0, 6000.0)
    x = sum(np.sin(2 * np.pi * f * t) for f in frequencies)[None].astype(np.float32) / 4
    y = resampler.process(x)[0]
    t_out = np.arange(y.size) / target - resampler.delay
    expected = sum(np.sin(2 * np.pi * f * t_out) for f in frequencies) / 4
    assert resampler.delay <= 0.0016
    settled = slice(int(0.01 * target), None)
    assert np.abs(y - expected)[settled].max() < 3e-3


@pytest.mark.parametrize("rate, target, frequency", [(48000, 16000, 12000.0), (16000, 48000, 1000.0)])
def test_stream_resampler_rejects_aliases_and_images(rate, target, frequency):
    # Down: a 12 kHz tone would alias to 4 kHz. Up: a 1 kHz tone must not leave an image at 15 or 17 kHz.
    x = np.sin(2 * np.pi * frequency * np.arange(rate // 5) / rate)[None].astype(np.float32)
    y = StreamResampler(rate, target, channels=1).process(x)[0][target // 100 :]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) / (np.hanning(y.size).sum() / 2)
    bins = np.fft.rfftfreq(y.size, 1 / target)
    leak = spectrum[np.abs(bins - frequency) > 500].max() if frequency < target / 2 else spectrum.max()
    assert leak < 10 ** (-60 / 20)


def test_stream_resampler_checks_chunks():
    with pytest.raises(ValueError, match=r"chunk must be \(2, samples\)"):
        StreamResampler(48000, 16000, channels=2).process(np.zeros((1, 10), np.float32))


# --- OutputBuffer --------------------------------------------------------------------------------------------


def test_output_buffer_keeps_a_fixed_delay_through_wraparound_and_underruns():
    delay, channels = 5, 2
    buffer = OutputBuffer(channels, capacity=16, delay=delay)
    played = []
    produced = 0
    rng = np.random.default_rng(2)
    for step in range(300):
        if step % 37 != 0:  # every 37th callback the producer is late: nothing arrives
            n = int(rng.integers(0, 8))
            buffer.push(np.tile(np.arange(produced, produced + n, dtype=np.float32) + 1, (channels, 1)))
            produced += n
        out = np.empty((int(rng.integers(1, 8)), channels), np.float32)
        buffer.pop_into(out)
        played.append(out)
    played = np.concatenate(played)
    assert (played[:, 0] == played[:, 1]).all()
    time_index = np.arange(played.shape[0])
    real = played[:, 0] > 0
    # every real sample comes out exactly `delay` after its place in the produced sequence
    np.testing.assert_array_equal(played[real, 0] - 1, time_index[real] - delay)
    assert buffer.missing == (~real).sum() - delay
    assert buffer.missing > 0 and buffer.dropped == 0


def test_output_buffer_counts_overflow():
    buffer = OutputBuffer(1, capacity=8, delay=2)
    buffer.push(np.ones((1, 10), np.float32))
    assert len(buffer) == 8 and buffer.dropped == 4
    with pytest.raises(ValueError, match="delay"):
        OutputBuffer(1, capacity=4, delay=5)


# --- LiveProcessor: the callback ------------------------------------------------------------------------------


def run_callbacks(processor, x, sizes, status=None):
    outputs, start = [], 0
    for size in sizes:
        indata = np.ascontiguousarray(x[start : start + size])
        outdata = np.full_like(indata, np.nan)
        processor(indata, outdata, size, None, status)
        outputs.append(outdata)
        start += size
    return np.concatenate(outputs)


@pytest.mark.parametrize("blocksize", [0, 64, 100])
def test_callback_at_the_model_rate_delays_by_exactly_its_latency(blocksize):
    x = np.random.default_rng(3).standard_normal((8000, 2)).astype(np.float32)
    processor = LiveProcessor(identity_denoiser(), 16000, channels=2, blocksize=blocksize)
    sizes = random_chunks(x.shape[0], 300) if blocksize == 0 else [blocksize] * (x.shape[0] // blocksize)
    y = run_callbacks(processor, x, sizes)
    delay = round(processor.latency * 16000)
    assert delay <= 255  # at most window - 1 samples: 15.9 ms
    np.testing.assert_allclose(y[delay:], x[: y.shape[0] - delay], atol=1e-5)
    assert (y[:delay] == 0).all()
    summary = processor.summary()
    assert summary["late_frames"] == 0 and summary["frames"] == sum(sizes) and summary["callbacks"] == len(sizes)
    assert processor.stream.samples_in == sum(sizes)


@pytest.mark.parametrize("blocksize", [0, 64, 480])
def test_callback_with_device_resampling_passes_speech_band_with_its_latency(blocksize):
    rate = 48000
    t = np.arange(rate // 2) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)[:, None]
    processor = LiveProcessor(identity_denoiser(), rate, channels=1, blocksize=blocksize)
    sizes = random_chunks(x.shape[0], 512) if blocksize == 0 else [blocksize] * (x.shape[0] // blocksize)
    y = run_callbacks(processor, x, sizes)[:, 0]
    t_out = np.arange(y.size) / rate - processor.latency
    expected = 0.3 * np.sin(2 * np.pi * 440 * t_out) + 0.2 * np.sin(2 * np.pi * 2500 * t_out)
    settled = slice(int(0.03 * rate), None)
    assert np.abs(y - expected)[settled].max() < 5e-3
    assert processor.latency < 0.02 and processor.summary()["late_frames"] == 0
    assert abs(processor.stream.samples_in - sum(sizes) / 3) <= 1


def test_callback_counts_host_overflows_and_underflows():
    processor = LiveProcessor(identity_denoiser(), 16000, channels=1, blocksize=64)
    x = np.zeros((64 * 4, 1), np.float32)
    flagged = SimpleNamespace(input_overflow=True, output_underflow=False)  # truthy, like sounddevice's flags
    run_callbacks(processor, x[:128], [64, 64], flagged)
    flagged.input_overflow, flagged.output_underflow = False, True
    run_callbacks(processor, x[:64], [64], flagged)
    run_callbacks(processor, x[:64], [64], None)
    summary = processor.summary()
    assert (summary["input_overflows"], summary["output_underflows"], summary["callbacks"]) == (2, 1, 4)
    slowest = processor.cpu_times[:4].max() * 1e3  # the running maximum agrees with the recorded times
    assert 0 < summary["callback_cpu_ms_p50"] <= summary["callback_cpu_ms_p99"] <= summary["max_callback_cpu_ms"]
    assert summary["max_callback_cpu_ms"] == slowest and processor.cpu_times[4:].max() == 0


def test_callback_with_the_speech_model_stays_finite_and_in_range():
    rng = np.random.default_rng(4)
    x = (0.1 * rng.standard_normal((4800, 1))).astype(np.float32)
    processor = LiveProcessor(pydenoise.load("speech"), 48000, channels=1, blocksize=64)
    y = run_callbacks(processor, x, [64] * 75)
    assert np.isfinite(y).all() and np.abs(y).max() < 1.0
    assert processor.latency <= 0.020


def test_callback_work_is_even_from_the_first_period():
    """Sound cards carry no level to remove, so the live stream needs no first window to measure one: from the
    first 64-frame period on, no callback denoises more than the two frames its 21⅓ model samples can complete
    (waiting for a first window released 16 frames into one callback, an xrun at every start)."""
    processor = LiveProcessor(pydenoise.load("speech"), 48000, channels=1, blocksize=64)
    assert processor.stream.offset is not None  # and the network is bound: nothing is left to the callbacks
    x = (0.1 * np.random.default_rng(5).standard_normal((64 * 40, 1))).astype(np.float32)
    frames = []
    for start in range(0, x.shape[0], 64):
        before = processor.stream._frames
        processor(x[start : start + 64], np.empty((64, 1), np.float32), 64, None, None)
        frames.append(processor.stream._frames - before)
    assert max(frames) <= 2 and sum(frames) >= 50


def test_cli_live_lists_devices(capsys):
    try:
        import sounddevice
    except OSError as error:
        pytest.skip(f"PortAudio is missing (Debian: libportaudio2): {error}")
    from pydenoise.cli import main

    assert main(["live", "--list-devices"]) == 0
    assert capsys.readouterr().out.strip() == str(sounddevice.query_devices()).strip()
