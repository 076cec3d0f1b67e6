"""The frozen seismic protocol (benchmarks/seismic_manifests): intact on this installation, split by station."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
protocol = pytest.importorskip("seismic_protocol")


def test_manifests_match_the_installed_files_and_no_station_straddles_two_splits():
    assert protocol.verify() == []


def test_test_references_are_clean_and_cover_several_rates():
    references = [e for e in protocol.load_manifest("test") if e["reference"]]
    assert len(references) >= 5
    assert all(e["own_snr_db"] >= protocol.REFERENCE_SNR_DB for e in references)
    assert len({e["rate_hz"] for e in references}) >= 3


def test_the_shipped_models_training_noise_is_not_in_test():
    test_stations = {e["station"] for e in protocol.load_manifest("test")}
    assert not test_stations & set(protocol.TRAINING_STATIONS)


def test_kfold_holds_every_reference_station_out_once():
    references = {e["station"] for name in protocol.SPLITS for e in protocol.load_manifest(name) if e["reference"]}
    held = [s for fold in protocol.load_manifest("kfold") for s in fold["test_stations"]]
    assert sorted(held) == sorted(references)


def test_a_changed_file_is_reported(monkeypatch):
    monkeypatch.setattr(protocol, "sha256", lambda relative: "0" * 64)
    assert any("changed" in problem for problem in protocol.verify())


def test_measure_finds_the_onset_and_own_snr_of_a_real_record():
    entry = protocol.measure("signal/tests/data/BW.UH1._.SHZ.D.2010.147.cut.slist.gz", "BW.UH1..SHZ")
    frozen = next(e for e in protocol.load_manifest("test") if e["station"] == "UH1")
    assert entry["onset_s"] == frozen["onset_s"] and entry["own_snr_db"] == frozen["own_snr_db"]
