"""Training data for the ``speech`` model: audio noises, mixes and batches of windows or whole segments.

Noise rows (unit RMS) are white, pink, babble (several other synthetic utterances summed), mains hum (50 or
60 Hz with random harmonics, buzz and drift) or fan-like (coloured broadband noise, a blade-pass tone and slow
amplitude modulation). :class:`SpeechSignals` and :class:`SpeechNoises` have the ``sample(count, samples,
rng)`` / ``describe()`` interface of the signal and noise sources of :mod:`pydenoise.seismic.training_data`.

Examples
--------
>>> from pydenoise.audio import speech, training_data
>>> train, validation = speech.prepare_corpus("build/speech_corpus.npz").split(0.1)        # doctest: +SKIP
>>> noisy, clean = training_data.training_batch(train, training_data.SpeechNoises(train), 512, rng)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from pydenoise.audio.speech import SAMPLE_RATE, SpeechCorpus
from pydenoise.core.noise import unit_rms
from pydenoise.core.noise import white as white_noise
from pydenoise.core.noise_floor import window_floors

__all__ = [
    "white",
    "pink",
    "brown",
    "hum",
    "fan",
    "babble",
    "SpeechSignals",
    "SpeechNoises",
    "mix",
    "training_batch",
    "training_segments",
]


def white(count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, samples)`` Gaussian white noise, unit RMS per row."""
    return unit_rms(white_noise((count, samples), rng))  # the same draws as rng.standard_normal


def pink(count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, samples)`` pink (1/f power) noise, unit RMS per row, shaped in the frequency domain."""
    return _power_law(count, samples, rng, 1.0)


def brown(count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, samples)`` brown (1/f² power) noise, unit RMS per row, shaped in the frequency domain."""
    return _power_law(count, samples, rng, 2.0)


def _power_law(count: int, samples: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise of power ``1 / f**exponent`` (f in bins), unit RMS per row."""
    spectrum = np.fft.rfft(rng.standard_normal((count, samples)), axis=1)
    frequency = np.arange(spectrum.shape[1], dtype=float)
    frequency[0] = 1.0  # no DC boost: the DC bin keeps the white level
    return unit_rms(np.fft.irfft(spectrum / frequency ** (exponent / 2), n=samples, axis=1))


def hum(count: int, samples: int, rng: np.random.Generator, rate: float = SAMPLE_RATE) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and its harmonics (random decay and phases, odd-harmonic buzz, slow drift).

    Each row's waveform is a periodic function of the mains phase, so it is tabulated over one period and
    read at the drifting phase. A faint white floor (-35 dB) keeps the row from being perfectly periodic.
    """
    t = np.arange(samples) / rate
    table_phase = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    out = np.empty((count, samples))
    for row in range(count):
        mains = rng.choice([50.0, 60.0]) * (1 + rng.uniform(-0.005, 0.005))
        drift = 1 + 0.002 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))
        phase = (2 * np.pi * mains * np.cumsum(drift) / rate) % (2 * np.pi)
        harmonics = np.arange(1, int(min(3000.0, rate / 2 - 100) // mains) + 1)
        gains = rng.uniform(0.2, 1.0, harmonics.size) * harmonics ** -rng.uniform(0.3, 2.0)
        if rng.random() < 0.4:  # rectifier buzz: odd harmonics dominate
            gains *= np.where(harmonics % 2 == 1, 1.0, 0.2)
        offsets = rng.uniform(0, 2 * np.pi, harmonics.size)
        spectrum = np.zeros(table_phase.size // 2 + 1, complex)
        spectrum[harmonics] = gains * np.exp(1j * (offsets - np.pi / 2)) * table_phase.size / 2
        table = np.fft.irfft(spectrum, n=table_phase.size)  # = sum of gains · sin(k·phase + offset)
        out[row] = np.interp(phase, table_phase, table, period=2 * np.pi)
    return unit_rms(unit_rms(out) + 10 ** (-35 / 20) * rng.standard_normal((count, samples)))


def fan(count: int, samples: int, rng: np.random.Generator, rate: float = SAMPLE_RATE) -> np.ndarray:
    """Fan-like noise: broadband noise with a random spectral tilt and low-pass corner, a blade-pass tone
    (80–400 Hz, a few harmonics) at -20…-5 dB, and a slow amplitude modulation (0.3–4 Hz, depth up to 30 %)."""
    spectrum = np.fft.rfft(rng.standard_normal((count, samples)), axis=1)
    frequency = np.fft.rfftfreq(samples, 1 / rate)
    tilt = rng.uniform(0.0, 1.5, (count, 1))
    corner = np.exp(rng.uniform(np.log(300.0), np.log(4000.0), (count, 1)))
    gain = np.maximum(frequency, 20.0) ** (-tilt / 2) / np.sqrt(1 + (frequency / corner) ** 4)
    broadband = unit_rms(np.fft.irfft(spectrum * gain, n=samples, axis=1))
    t = np.arange(samples) / rate
    blade = rng.uniform(80.0, 400.0, (count, 1))
    tone = sum(
        rng.uniform(0.3, 1.0, (count, 1)) / k * np.sin(2 * np.pi * k * blade * t + rng.uniform(0, 7, (count, 1)))
        for k in (1, 2, 3)
    )
    tone_level = 10 ** (rng.uniform(-20, -5, (count, 1)) / 20)
    modulation = 1 + rng.uniform(0, 0.3, (count, 1)) * np.sin(2 * np.pi * rng.uniform(0.3, 4, (count, 1)) * t)
    return unit_rms((broadband + tone_level * unit_rms(tone)) * modulation)


def babble(count: int, samples: int, rng: np.random.Generator, corpus: SpeechCorpus) -> np.ndarray:
    """Babble: 3–7 random stretches of other utterances of ``corpus`` summed at random levels, unit RMS."""
    out = np.zeros((count, samples))
    for row in range(count):
        for _ in range(rng.integers(3, 8)):
            out[row] += rng.uniform(0.5, 1.0) * unit_rms(_speech_stretch(corpus, samples, rng))
    return unit_rms(out)


def _speech_stretch(corpus: SpeechCorpus, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` consecutive samples of a random utterance (utterances shorter than that are tiled)."""
    audio = corpus.utterance(rng.integers(len(corpus)))
    if audio.size < samples:
        audio = np.tile(audio, -(-samples // audio.size))
    start = rng.integers(0, audio.size - samples + 1)
    return audio[start : start + samples].astype(np.float64)


class SpeechSignals:
    """Clean speech rows cut from a :class:`SpeechCorpus` (a signal source for training)."""

    def __init__(self, corpus: SpeechCorpus):
        self.corpus = corpus

    def describe(self) -> str:
        """One line for the model metadata."""
        return self.corpus.description

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` stretches of random utterances."""
        return np.stack([_speech_stretch(self.corpus, samples, rng) for _ in range(count)])


class SpeechNoises:
    """Noise rows of unit RMS for speech training: white, pink, babble, hum and fan, mixed by weight.

    Babble is made from ``corpus`` (use the training corpus for training and the validation one for
    validation, so no utterance leaks).
    """

    KINDS = ("white", "pink", "babble", "hum", "fan")

    def __init__(self, corpus: SpeechCorpus, weights=(0.2, 0.2, 0.25, 0.15, 0.2), rate: float = SAMPLE_RATE):
        self.corpus = corpus
        weights = np.asarray(weights, dtype=float)
        self.weights = weights / weights.sum()
        self.rate = rate

    def describe(self) -> str:
        """One line for the model metadata."""
        return "noise: " + ", ".join(f"{k} {w:.2f}" for k, w in zip(self.KINDS, self.weights))

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` noise rows, unit RMS each."""
        kinds = rng.choice(len(self.KINDS), size=count, p=self.weights)
        out = np.empty((count, samples))
        for kind in np.unique(kinds):
            rows = np.flatnonzero(kinds == kind)
            out[rows] = self._generate(self.KINDS[kind], rows.size, samples, rng)
        return out

    def _generate(self, kind: str, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        if kind == "babble":
            return babble(count, samples, rng, self.corpus)
        if kind == "hum":
            return hum(count, samples, rng, self.rate)
        if kind == "fan":
            return fan(count, samples, rng, self.rate)
        return white(count, samples, rng) if kind == "white" else pink(count, samples, rng)


def mix(clean: np.ndarray, noise: np.ndarray, snr_db) -> np.ndarray:
    """``clean + g·noise`` with ``g`` per row such that ``10·log10(Σclean² / Σ(g·noise)²) = snr_db``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s, n = rng.standard_normal((2, 1000))
    >>> from pydenoise.metrics import snr
    >>> round(snr(s, mix(s, n, 5.0)), 6)
    5.0
    """
    clean, noise = np.asarray(clean, dtype=float), np.asarray(noise, dtype=float)
    if clean.shape != noise.shape:
        raise ValueError(f"clean and noise shapes differ: {clean.shape} vs {noise.shape}")
    power_clean = np.mean(clean**2, axis=-1, keepdims=True)
    power_noise = np.mean(noise**2, axis=-1, keepdims=True)
    ratio = 10 ** (np.asarray(snr_db, dtype=float).reshape(power_clean.shape[:-1] + (-1,)) / 10)
    return clean + np.sqrt(power_clean / np.where(power_noise > 0, power_noise, 1.0) / ratio) * noise


def _unit_rms_mixes(signals, noises, count: int, samples: int, rng: np.random.Generator, snr_db):
    """``count`` (noisy, clean) rows mixed at an SNR drawn uniformly from ``snr_db`` (measured over the row, as
    an utterance-level SNR is), both scaled so the noisy row has unit RMS, each row's polarity random."""
    # Random polarity: a recording's sign is arbitrary, while each synthesiser's glottal pulses have one.
    clean = signals.sample(count, samples, rng) * rng.choice([-1.0, 1.0], (count, 1))
    noisy = mix(clean, noises.sample(count, samples, rng), rng.uniform(*snr_db, count))
    gain = 1.0 / np.sqrt(np.mean(noisy**2, axis=1, keepdims=True))  # unit-RMS segments: comparable windows
    return noisy * gain, clean * gain


def _cut(rows: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Windows ``(rows, count, window)`` cut from ``rows`` at ``starts`` ``(rows, count)``."""
    return rows[np.arange(rows.shape[0])[:, None, None], starts[..., None] + np.arange(window)]


def training_batch(
    signals,
    noises,
    batch: int,
    rng: np.random.Generator,
    window: int = 256,
    segment: int = SAMPLE_RATE,
    windows_per_segment: int = 16,
    snr_db=(-5.0, 20.0),
    floor_history: int | None = None,
    hop: int = 64,
):
    """One batch of ``(noisy, clean)`` windows ``(batch, window)``, float64, not yet normalised.

    ``batch // windows_per_segment`` one-second segments of speech are mixed with noise at an SNR drawn
    uniformly from ``snr_db`` (measured over the segment, as an utterance-level SNR is) and scaled to unit RMS,
    then windows are cut at random offsets, so quiet syllables and pauses get the low local SNR they have in
    real recordings, and a window's variance tells its share of the segment's energy. Each segment's polarity
    is random.

    With ``floor_history`` (frames at ``hop``, see :class:`pydenoise.core.noise_floor.NoiseFloor`) each segment is
    preceded by that much more audio, windows start on the hop grid after it, and a third array ``(batch, 1)``
    holds each window's noise floor as a stream of the segment would have tracked it.
    """
    if batch % windows_per_segment:
        raise ValueError(f"batch ({batch}) must be a multiple of windows_per_segment ({windows_per_segment})")
    segments = batch // windows_per_segment
    lead = 0 if floor_history is None else floor_history * hop
    noisy, clean = _unit_rms_mixes(signals, noises, segments, segment + lead, rng, snr_db)
    if floor_history is None:
        starts = rng.integers(0, segment - window + 1, (segments, windows_per_segment))
    else:  # on the hop grid, a whole history of frames after the segment's start
        frames = (segment + lead - window) // hop + 1
        starts = rng.integers(floor_history, frames, (segments, windows_per_segment)) * hop
    pair = _cut(noisy, starts, window).reshape(-1, window), _cut(clean, starts, window).reshape(-1, window)
    if floor_history is None:
        return pair
    return (*pair, window_floors(noisy, starts, window, hop, floor_history).reshape(-1, 1))


def training_segments(
    signals,
    noises,
    count: int,
    rng: np.random.Generator,
    segment: int = 2 * SAMPLE_RATE,
    window: int = 256,
    hop: int = 64,
    snr_db=(-5.0, 20.0),
    floor_history: int | None = None,
):
    """Whole segments framed as inference frames them, for a loss on the overlap-added output.

    Segments are mixed as in :func:`training_batch` (with ``floor_history`` frames of extra audio before each,
    for the noise floor). Every window on the ``hop`` grid after that history is returned, so the network's
    frames, weighted and overlap-added (:func:`pydenoise.core.frames.overlap_add`), give the output a listener
    hears, and a loss can score whole utterances.

    Returns
    -------
    noisy, clean : np.ndarray
        ``(count, frames, window)`` with ``frames = (segment - window) // hop + 1``.
    floors : np.ndarray or None
        ``(count, frames, 1)``: each window's noise floor (``None`` without ``floor_history``).
    clean_span : np.ndarray
        ``(count, (frames - 1) * hop + window)``: the clean audio under the overlap-added frames.
    """
    lead = 0 if floor_history is None else floor_history * hop
    noisy, clean = _unit_rms_mixes(signals, noises, count, segment + lead, rng, snr_db)
    frames = (segment - window) // hop + 1
    starts = np.tile(lead + hop * np.arange(frames), (count, 1))
    floors = None if floor_history is None else window_floors(noisy, starts, window, hop, floor_history)[..., None]
    span = clean[:, lead : lead + (frames - 1) * hop + window]
    return _cut(noisy, starts, window), _cut(clean, starts, window), floors, span
