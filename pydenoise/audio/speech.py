"""Synthetic clean speech for the ``speech`` model: text-to-speech utterances in a cached corpus.

Clean speech comes from two Debian speech synthesisers run as subprocesses, ``espeak-ng`` (formant synthesis,
every English dialect it ships × voice variants × speeds × pitches) and ``flite`` (the CMU statistical voices,
with random duration and pitch settings), speaking sentences drawn from a built-in vocabulary. Everything is
resampled to 16 kHz (soxr, very high quality) and cached in one ``.npz`` file.

Examples
--------
>>> from pydenoise.audio import speech
>>> corpus = speech.prepare_corpus("build/speech_corpus.npz", utterances=400)      # doctest: +SKIP
>>> train, validation = corpus.split(0.1)                                         # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "SAMPLE_RATE",
    "sentences",
    "espeak_voices",
    "Utterance",
    "plan_utterances",
    "synthesize",
    "SpeechCorpus",
    "prepare_corpus",
]

#: Rate of the speech model and of its training data (Hz): a 256-sample window is 16 ms.
SAMPLE_RATE = 16000


_SUBJECTS = (
    "the old farmer",
    "a young pilot",
    "my neighbour",
    "the small child",
    "our teacher",
    "the tired doctor",
    "a quiet student",
    "the new manager",
    "his brother",
    "her sister",
    "the baker",
    "a nervous driver",
    "the captain",
    "every visitor",
    "the gardener",
    "a clever engineer",
    "the painter",
    "the musician",
    "nobody",
    "the whole family",
    "two sailors",
    "the grey cat",
    "a large dog",
    "the committee",
)


_VERBS = (
    "found",
    "carried",
    "painted",
    "borrowed",
    "repaired",
    "opened",
    "watched",
    "described",
    "ordered",
    "forgot",
    "cleaned",
    "measured",
    "packed",
    "noticed",
    "collected",
    "delivered",
    "sold",
    "lifted",
    "followed",
    "counted",
    "dropped",
    "wrapped",
    "checked",
    "moved",
)


_OBJECTS = (
    "a wooden box",
    "the broken window",
    "seven red apples",
    "an empty bottle",
    "the heavy suitcase",
    "a bright lamp",
    "the morning paper",
    "three silver coins",
    "the narrow bridge",
    "a warm blanket",
    "the kitchen table",
    "a strange letter",
    "the garden gate",
    "forty yellow pencils",
    "a cup of coffee",
    "the long river",
    "a paper kite",
    "the village clock",
    "an old map",
    "the fresh bread",
    "a green jacket",
    "the station bell",
    "twelve glass jars",
    "the mountain path",
)


_PLACES = (
    "near the harbour",
    "behind the school",
    "in the evening",
    "before lunch",
    "after the storm",
    "at the market",
    "under the stairs",
    "on Tuesday",
    "by the lake",
    "during the winter",
    "across the street",
    "in the attic",
    "without a word",
    "with great care",
    "at dawn",
    "next to the church",
    "in a hurry",
    "last September",
    "beside the fire",
    "far from home",
)


_CLAUSES = (
    "because it was raining",
    "while the radio played",
    "although nobody asked",
    "so the work could start",
    "when the bus arrived",
    "until the lights went out",
    "as the sun went down",
    "before anyone noticed",
    "since the door was locked",
    "once the music stopped",
)


_QUESTIONS = ("why did", "when did", "how often did", "where did")


_NUMBERS = ("one", "two", "three", "four", "five", "six", "eight", "nine", "ten", "eleven", "twenty", "ninety")


def sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` random English sentences built from a small grammar (statements, questions, numbers).

    Examples
    --------
    >>> len(sentences(3)), sentences(2, seed=1) == sentences(2, seed=1)
    (3, True)
    """
    rng = np.random.default_rng(seed)
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    out = []
    for _ in range(count):
        kind = rng.integers(4)
        if kind == 0:
            text = f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)} {pick(_PLACES)}."
        elif kind == 1:
            text = f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)} {pick(_CLAUSES)}, and then {pick(_PLACES)}."
        elif kind == 2:
            text = f"{pick(_QUESTIONS)} {pick(_SUBJECTS)} say that {pick(_OBJECTS)} was {pick(_PLACES)}?"
        else:
            text = (
                f"{pick(_NUMBERS)} or {pick(_NUMBERS)} times {pick(_PLACES)}, {pick(_SUBJECTS)} "
                f"{pick(_VERBS)} {pick(_OBJECTS)}."
            )
        out.append(text[0].upper() + text[1:])
    return out


def _espeak_variants() -> list[str]:
    """espeak-ng voice variants (``m1`` … ``f5``, ``croak``, named voices), read from its data directory."""
    for data in (
        "/usr/lib/x86_64-linux-gnu/espeak-ng-data",
        "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
        "/usr/share/espeak-ng-data",
    ):
        folder = Path(data) / "voices" / "!v"
        if folder.is_dir():
            return sorted(p.name for p in folder.iterdir() if p.is_file())
    return []


def espeak_voices() -> list[str]:
    """The English espeak-ng dialects installed (``en-us``, ``en-gb-scotland``, …); MBROLA voices excluded.

    Raises ``RuntimeError`` when espeak-ng is not installed (Debian package ``espeak-ng``).
    """
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    listing = subprocess.run(["espeak-ng", "--voices=en"], capture_output=True, text=True, check=True).stdout
    voices = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5 and fields[4].startswith("gmw/"):  # mb/ voices need the separate MBROLA engine
            voices.add(fields[1])
    return sorted(voices)


@dataclass(frozen=True)
class Utterance:
    """One sentence for one synthetic speaker: the engine, voice, speed and pitch settings."""

    text: str
    engine: str  # "espeak-ng" or "flite"
    voice: str
    speed: float  # espeak-ng words per minute, or flite duration stretch
    pitch: float  # espeak-ng pitch 0-99, or flite mean F0 in Hz

    def command(self, path: str) -> list[str]:
        """The synthesiser command writing this utterance to ``path`` (a WAV file)."""
        if self.engine == "espeak-ng":
            return [
                "espeak-ng",
                "-v",
                self.voice,
                "-s",
                str(round(self.speed)),
                "-p",
                str(round(self.pitch)),
                "-w",
                path,
                self.text,
            ]
        return [
            "flite",
            "-voice",
            self.voice,
            "--setf",
            f"duration_stretch={self.speed:.2f}",
            "--setf",
            f"int_f0_target_mean={self.pitch:.0f}",
            "-t",
            self.text,
            "-o",
            path,
        ]


#: flite voices at 16 kHz (``kal`` is 8 kHz and would add band-limited speech only).
FLITE_VOICES = ("kal16", "awb", "rms", "slt")


#: Typical mean F0 (Hz) of each flite voice, the centre of the random pitch.
_FLITE_F0 = {"kal16": 105.0, "awb": 115.0, "rms": 105.0, "slt": 175.0}


def plan_utterances(count: int, seed: int = 0, flite_share: float = 0.35) -> list[Utterance]:
    """``count`` utterances with random sentences, engines, voices, speeds and pitches (reproducible).

    About ``flite_share`` of them use flite (if installed), the rest espeak-ng dialects with a random variant.
    """
    rng = np.random.default_rng([seed, 1])
    dialects = espeak_voices()
    variants = _espeak_variants()
    has_flite = shutil.which("flite") is not None
    plan = []
    for text in sentences(count, seed):
        if has_flite and rng.random() < flite_share:
            voice = FLITE_VOICES[rng.integers(len(FLITE_VOICES))]
            pitch = _FLITE_F0[voice] * np.exp(rng.uniform(-0.3, 0.3))
            plan.append(Utterance(text, "flite", voice, rng.uniform(0.8, 1.3), pitch))
        else:
            voice = dialects[rng.integers(len(dialects))]
            if variants:
                voice += "+" + variants[rng.integers(len(variants))]
            plan.append(Utterance(text, "espeak-ng", voice, rng.uniform(120, 230), rng.uniform(15, 85)))
    return plan


def _resample(x: np.ndarray, rate: float, target: float) -> np.ndarray:
    from pydenoise.audio.offline import resample

    return resample(x, rate, target)


def synthesize(utterance: Utterance) -> np.ndarray:
    """Speak one utterance; float32 mono at :data:`SAMPLE_RATE`, leading/trailing silence cut to 0.1 s."""
    import soundfile

    with tempfile.TemporaryDirectory(prefix="pydenoise-tts-") as folder:
        path = os.path.join(folder, "utterance.wav")
        subprocess.run(utterance.command(path), check=True, capture_output=True)
        audio, rate = soundfile.read(path, dtype="float64")
    audio = _resample(audio, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else audio
    return _trim_silence(audio).astype(np.float32)


def _trim_silence(audio: np.ndarray, keep: float = 0.1, threshold_db: float = -45.0) -> np.ndarray:
    """Cut leading/trailing stretches quieter than ``threshold_db`` below the peak, keeping ``keep`` s."""
    level = np.abs(audio)
    loud = np.flatnonzero(level > level.max() * 10 ** (threshold_db / 20))
    if loud.size == 0:
        return audio
    margin = int(keep * SAMPLE_RATE)
    return audio[max(0, loud[0] - margin) : loud[-1] + margin + 1]


@dataclass
class SpeechCorpus:
    """Clean utterances at :data:`SAMPLE_RATE`, concatenated: ``audio[starts[i] : starts[i] + lengths[i]]``."""

    audio: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    speakers: list[str]  # "engine:voice" per utterance
    description: str

    def __len__(self) -> int:
        return len(self.lengths)

    def utterance(self, i: int) -> np.ndarray:
        """Samples of utterance ``i``."""
        return self.audio[self.starts[i] : self.starts[i] + self.lengths[i]]

    def subset(self, indices) -> SpeechCorpus:
        """A corpus holding only the utterances ``indices``."""
        indices = np.asarray(indices)
        pieces = [self.utterance(i) for i in indices]
        lengths = np.array([p.size for p in pieces])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return SpeechCorpus(
            np.concatenate(pieces), starts, lengths, [self.speakers[i] for i in indices], self.description
        )

    def split(self, validation_share: float, seed: int = 0) -> tuple[SpeechCorpus, SpeechCorpus]:
        """Training and validation corpora with disjoint utterances (different sentences)."""
        order = np.random.default_rng([seed, 2]).permutation(len(self))
        cut = max(1, int(round(len(self) * validation_share)))
        return self.subset(np.sort(order[cut:])), self.subset(np.sort(order[:cut]))


def prepare_corpus(
    cache: str | os.PathLike, utterances: int = 400, seed: int = 0, workers: int = 2, progress: bool = True
) -> SpeechCorpus:
    """Synthesise the speech corpus, or load it from ``cache`` (an ``.npz``) if made with the same settings.

    Parameters
    ----------
    cache : path
        Where the corpus is stored (created with its parent folder).
    utterances : int
        Number of sentences to speak.
    seed : int
        Seed of the sentences and of the speaker settings.
    workers : int
        Synthesiser processes run at once.
    """
    description = (
        f"{utterances} synthetic utterances (seed {seed}): espeak-ng English dialects x variants "
        f"x speed 120-230 wpm x pitch 15-85, and flite {'/'.join(FLITE_VOICES)} with duration "
        f"stretch 0.8-1.3 and F0 x0.74-1.35; {SAMPLE_RATE} Hz"
    )
    cache = Path(cache)
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        if str(stored["description"]) == description:
            return SpeechCorpus(
                stored["audio"], stored["starts"], stored["lengths"], [str(s) for s in stored["speakers"]], description
            )
    plan = plan_utterances(utterances, seed)
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=workers) as pool:
        audio = list(
            tqdm(pool.map(synthesize, plan), total=len(plan), desc="synthesising speech", disable=not progress)
        )
    lengths = np.array([a.size for a in audio])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    speakers = [f"{u.engine}:{u.voice}" for u in plan]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        audio=np.concatenate(audio),
        starts=starts,
        lengths=lengths,
        speakers=np.array(speakers),
        description=np.array(description),
    )
    return SpeechCorpus(np.concatenate(audio), starts, lengths, speakers, description)
