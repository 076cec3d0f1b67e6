"""The synthetic speech training data: sentences, synthesisers, noises, mixing and batches."""

import shutil

import numpy as np
import pytest
import torch

from pydenoise.audio import speech, training_data
from pydenoise.core.frames import frame_weights, overlap_add
from pydenoise.core.metrics import snr


def test_sentences_are_reproducible_and_varied():
    first = speech.sentences(50, seed=3)
    assert first == speech.sentences(50, seed=3)
    assert len(set(first)) > 45 and all(s[0].isupper() and s[-1] in ".?" for s in first)
    assert first != speech.sentences(50, seed=4)


def test_mix_hits_the_requested_snr_per_row():
    rng = np.random.default_rng(0)
    clean, noise = rng.standard_normal((2, 3, 1000))
    noisy = training_data.mix(clean, 5 * noise, [-5.0, 0.0, 20.0])
    assert [round(snr(c, n), 9) for c, n in zip(clean, noisy)] == [-5.0, 0.0, 20.0]
    with pytest.raises(ValueError, match="shapes differ"):
        training_data.mix(clean, noise[:, :10], 0.0)


def _spectrum(x, rate=speech.SAMPLE_RATE):
    power = np.mean(np.abs(np.fft.rfft(x, axis=-1)) ** 2, axis=0)
    return np.fft.rfftfreq(x.shape[-1], 1 / rate), power


def _band(frequency, power, low, high):
    return power[(frequency >= low) & (frequency < high)].mean()


def test_noise_colours():
    rng = np.random.default_rng(1)
    for name in ("white", "pink", "hum", "fan"):
        x = getattr(training_data, name)(4, 8000, rng)
        assert x.shape == (4, 8000)
        np.testing.assert_allclose(np.sqrt(np.mean(x**2, axis=1)), 1.0)
    f, white = _spectrum(training_data.white(8, 8000, rng))
    assert 0.8 < _band(f, white, 100, 400) / _band(f, white, 4000, 7000) < 1.25
    f, pink = _spectrum(training_data.pink(8, 8000, rng))  # 1/f: 3 dB per octave
    ratio = _band(f, pink, 200, 400) / _band(f, pink, 3200, 6400)
    assert 12 < ratio < 20
    f, hum = _spectrum(training_data.hum(1, 16000, rng))
    assert hum[f < 3100].sum() > 0.99 * hum.sum()  # harmonics up to 3 kHz over a -35 dB floor
    assert np.sort(hum)[-len(hum) // 50 :].sum() > 0.8 * hum.sum()  # a line spectrum


def test_babble_is_speech_from_the_corpus():
    rng = np.random.default_rng(2)
    t = np.arange(8000) / speech.SAMPLE_RATE  # longer than the rows: no tiling
    pieces = [np.sin(2 * np.pi * f * t).astype(np.float32) for f in (200.0, 400.0, 800.0)]  # on the FFT grid
    lengths = np.array([p.size for p in pieces])
    corpus = speech.SpeechCorpus(
        np.concatenate(pieces), np.array([0, 8000, 16000]), lengths, ["a", "b", "c"], "three tones"
    )
    x = training_data.babble(2, 6000, rng, corpus)
    f, power = _spectrum(x)
    tones = sum(power[np.isclose(f, tone, atol=3)].sum() for tone in (200, 400, 800))
    assert x.shape == (2, 6000) and tones > 0.9 * power.sum()


def test_corpus_split_is_disjoint_and_batches_are_shaped():
    rng = np.random.default_rng(3)
    audio = [rng.standard_normal(int(n)).astype(np.float32) for n in rng.integers(3000, 9000, 20)]
    lengths = np.array([a.size for a in audio])
    corpus = speech.SpeechCorpus(
        np.concatenate(audio),
        np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        lengths,
        [f"s{i}" for i in range(20)],
        "random",
    )
    train, validation = corpus.split(0.2)
    assert len(train) == 16 and len(validation) == 4
    assert not set(train.speakers) & set(validation.speakers)
    np.testing.assert_array_equal(validation.utterance(0), audio[int(validation.speakers[0][1:])])
    noisy, clean = training_data.training_batch(
        training_data.SpeechSignals(train),
        training_data.SpeechNoises(train),
        64,
        rng,
        segment=4000,
        windows_per_segment=16,
    )
    assert noisy.shape == clean.shape == (64, 256)
    with pytest.raises(ValueError, match="multiple of windows_per_segment"):
        training_data.training_batch(None, None, 10, rng, windows_per_segment=16)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (Debian: espeak-ng)")
def test_plan_and_synthesize_with_both_engines():
    plan = speech.plan_utterances(30, seed=0)
    engines = {u.engine for u in plan}
    assert "espeak-ng" in engines and len({u.voice for u in plan}) > 10
    if shutil.which("flite") is None:
        pytest.skip("flite is not installed (Debian: flite)")
    assert engines == {"espeak-ng", "flite"}
    for utterance in (next(u for u in plan if u.engine == engine) for engine in ("espeak-ng", "flite")):
        audio = speech.synthesize(utterance)
        assert audio.dtype == np.float32 and 0.5 < audio.size / speech.SAMPLE_RATE < 10
        assert np.sqrt(np.mean(audio**2)) > 0.01


class _Rising:
    """Signal rows of alternating sign under an exponential envelope (a frame's RMS grows by ``growth`` per hop)."""

    def __init__(self, growth_per_sample: float):
        self.growth = growth_per_sample

    def sample(self, count, samples, rng):
        return np.tile((-1.0) ** np.arange(samples) * np.exp(self.growth * np.arange(samples)), (count, 1))


class _Silence:
    def sample(self, count, samples, rng):
        return np.zeros((count, samples))


def test_training_windows_carry_the_floor_a_stream_would_track():
    """On a rising signal the quietest of the last ``history`` frames is the oldest, so every window's floor is
    its own RMS times the envelope's growth over ``history - 1`` hops."""
    rng = np.random.default_rng(4)
    growth, hop, history = 1e-4, 64, 10
    noisy, clean, floor = training_data.training_batch(
        _Rising(growth), _Silence(), 32, rng, segment=2000, windows_per_segment=16, floor_history=history, hop=hop
    )
    assert noisy.shape == clean.shape == (32, 256) and floor.shape == (32, 1)
    rms = np.sqrt(np.mean(noisy**2, axis=1, keepdims=True))
    np.testing.assert_allclose(floor / rms, np.exp(-growth * hop * (history - 1)), rtol=1e-9)


class _Gaussian:
    def sample(self, count, samples, rng):
        return rng.standard_normal((count, samples))


def test_training_segments_overlap_add_back_to_their_clean_span():
    """Segment windows lie on the hop grid, so weighted and overlap-added they give back the clean audio under
    them wherever every frame of the overlap covers it; each floor is at most its window's own RMS."""
    rng = np.random.default_rng(5)
    noisy, clean, floors, span = training_data.training_segments(
        _Gaussian(), _Gaussian(), 3, rng, segment=2000, hop=64, floor_history=10
    )
    frames = (2000 - 256) // 64 + 1
    assert noisy.shape == clean.shape == (3, frames, 256) and floors.shape == (3, frames, 1)
    assert span.shape == (3, (frames - 1) * 64 + 256)
    np.testing.assert_array_equal(clean[:, 1:, :192], clean[:, :-1, 64:])
    restored = overlap_add(torch.from_numpy(clean) * frame_weights(256, 64), 64).numpy()
    np.testing.assert_allclose(restored[:, 192:-192], span[:, 192:-192], rtol=1e-12, atol=1e-12)
    assert np.all(floors[..., 0] <= np.sqrt(np.mean(noisy**2, axis=-1)) * (1 + 1e-12))
    assert training_data.training_segments(_Gaussian(), _Gaussian(), 1, rng, segment=2000)[2] is None
