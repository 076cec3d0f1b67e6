"""benchmarks/finetune_station.py: its time split of each station keeps evaluation and fine-tuning apart."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
finetune = pytest.importorskip("finetune_station")


def test_the_stretches_are_disjoint_and_the_clip_holds_each_onset():
    stretches = sorted(finetune.SPLIT_S.values())
    assert all(end <= next_start for (_, end), (next_start, _) in zip(stretches, stretches[1:]))
    clip_start, clip_end = finetune.SPLIT_S["clip"]
    for station in finetune.STATIONS:
        entry = finetune.station_entry(station)
        assert entry["split"] == "test" and clip_start < entry["onset_s"] < clip_end - 20


def test_the_noise_stretches_are_event_free_and_an_event_is_refused(monkeypatch):
    entry = finetune.station_entry("UH1")
    data, _ = finetune.protocol.read_record(entry["path"], entry["trace_id"])
    finetune.check_event_free("UH1", data)
    monkeypatch.setitem(finetune.SPLIT_S, "evaluation noise", (0.0, 60.0))  # the event's own stretch
    with pytest.raises(ValueError, match=r"UH1: the evaluation noise stretch \(0.0, 60.0\) s triggers at"):
        finetune.check_event_free("UH1", data)


def test_a_station_that_is_not_a_test_reference_is_refused():
    with pytest.raises(ValueError, match="'ANMO' is not a clean reference of the test manifest"):
        finetune.station_entry("ANMO")
