"""The frozen speech protocol (benchmarks/eval_audio_protocol.py): speaker- and recording-disjoint splits, and
every file's checksum when the data is fetched (`make eval-audio-data`)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import eval_audio_protocol as protocol  # noqa: E402


def test_test_speakers_and_recordings_are_in_no_other_split():
    test = protocol.manifest("test")
    for split in ("validation", "train"):
        other = protocol.manifest(split)
        assert {c["speaker"] for c in test["speech"]}.isdisjoint(c["speaker"] for c in other["speech"])
        assert {c["sha256"] for c in test["speech"]}.isdisjoint(c["sha256"] for c in other["speech"])
        assert {n["sha256"] for n in test["noise"]}.isdisjoint(n["sha256"] for n in other["noise"])
    validation, train = protocol.manifest("validation"), protocol.manifest("train")
    assert {c["speaker"] for c in validation["speech"]}.isdisjoint(c["speaker"] for c in train["speech"])


def test_test_set_has_several_speakers_of_both_sexes():
    speech = protocol.manifest("test")["speech"]
    assert len({c["speaker"] for c in speech}) >= 4
    assert {c["sex"] for c in speech} == {"female", "male"}
    assert all(c["seconds"] >= 0.8 for c in speech)


def test_unknown_split_is_named():
    with pytest.raises(ValueError, match="'tset'"):
        protocol.manifest("tset")


@pytest.mark.skipif(protocol.data_missing() is not None, reason=str(protocol.data_missing()))
@pytest.mark.parametrize("split", protocol.SPLITS)
def test_every_file_matches_its_checksum(split):
    content = protocol.manifest(split)
    for entry in content["speech"] + content["noise"]:
        assert protocol.sha256(protocol.read_bytes(entry)) == entry["sha256"], entry["name"]


def test_a_changed_file_is_refused(tmp_path):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"not the frozen bytes")
    entry = {"name": "x", "source": "debian", "root": str(tmp_path), "member": "clip.wav", "sha256": "0" * 64}
    with pytest.raises(ValueError, match="differs from the manifest"):
        protocol.load(entry)


@pytest.mark.skipif(protocol.data_missing() is not None, reason=str(protocol.data_missing()))
@pytest.mark.parametrize("split", protocol.SPLITS)
def test_g722_clips_decode_at_full_scale_one(split):
    """PyAV's 16-bit integers are scaled like soundfile's floats (RNNoise clips at 16-bit scale)."""
    pytest.importorskip("av", reason="PyAV decodes G.722: pip install -e '.[peers]'")
    entry = next(e for e in protocol.manifest(split)["speech"] if e["member"].endswith(".g722"))
    clip = protocol.load(entry)
    assert 0.1 < np.abs(clip).max() <= 1.0, entry["name"]
