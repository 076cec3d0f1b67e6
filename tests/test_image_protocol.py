"""The frozen image protocol (benchmarks/image_manifests): intact on this installation, disjoint from training."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
protocol = pytest.importorskip("eval_image_protocol")
STANDARD = all((protocol.DATA / name).is_dir() for name in protocol.STANDARD_SETS)


@pytest.mark.skipif(not STANDARD, reason=f"Set12/BSD68 not at {protocol.DATA} (set $PYDENOISE_IMAGE_DATA)")
def test_manifests_match_every_file_and_no_test_image_was_seen():
    assert protocol.verify() == []


def test_packaged_test_images_are_intact_and_unseen():
    assert protocol.verify(standard=False) == []


def test_the_manifest_holds_gray_and_colour_pictures_from_two_packages():
    manifest = protocol.load_manifest("test")
    assert [len(manifest[name]) for name in ("Set12", "BSD68")] == [12, 68]
    packaged = manifest["packaged"]
    assert {e["package"] for e in packaged} == {"skimage", "matplotlib"}
    assert {e["colour"] for e in packaged} == {True, False}
    assert all(len(e["sha256"]) == 64 for entries in manifest.values() for e in entries)


def test_the_shipped_models_training_and_tuning_images_are_the_manifests_seen_images():
    from pydenoise.image.train import BUNDLED

    seen = {e["name"].split("[")[0] for e in protocol.load_manifest("train")["seen"]}
    assert seen == set(BUNDLED) | set(protocol.TUNING_IMAGES)


def test_a_changed_file_is_reported(monkeypatch):
    monkeypatch.setattr(protocol, "sha256_bytes", lambda data: "0" * 64)
    assert any("sha256 changed" in problem for problem in protocol.verify(standard=False))


def test_a_seen_image_in_the_test_set_is_reported(monkeypatch):
    monkeypatch.setattr(protocol, "PACKAGED", (*protocol.PACKAGED, ("coffee", "skimage", "data/coffee.png", True)))
    problems = protocol.verify(standard=False)
    assert any("coffee" in problem and "by name" in problem for problem in problems)


def test_a_rescaled_copy_is_a_near_duplicate():
    camera = dict(protocol.test_images("packaged"))["camera"]
    half = camera.reshape(256, 2, 256, 2).mean(axis=(1, 3))
    noisy = np.clip(half + np.random.default_rng(0).normal(0, 5, half.shape), 0, 255)
    assert [pair[:2] for pair in protocol.near_duplicates({"copy": noisy}, {"camera": camera})] == [("copy", "camera")]
    unrelated = dict(protocol.test_images("packaged"))["mri"]
    assert protocol.near_duplicates({"mri": unrelated}, {"camera": camera}) == []


def test_colour_pictures_come_in_rgb_and_as_luma():
    gray, colour = dict(protocol.test_images("packaged")), dict(protocol.test_images("packaged", colour=True))
    assert sorted(colour) == ["astronaut", "grace_hopper"] and all(p.shape[-1] == 3 for p in colour.values())
    assert all(p.ndim == 2 and p.dtype == np.uint8 for p in gray.values()) and len(gray) == 4
    assert np.array_equal(gray["astronaut"], protocol.luma(colour["astronaut"]))
    with pytest.raises(ValueError, match="gray set"):
        protocol.test_images("Set12", colour=True)
