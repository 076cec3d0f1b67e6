"""pydenoise.seismic.train and `pydenoise train`: tiny runs (a few steps) that check the pipeline, not the quality."""

import csv
from pathlib import Path

import numpy as np
import obspy
import pytest
import torch

import pydenoise
from pydenoise.cli import main
from pydenoise.core import noise
from pydenoise.core.frames import normalise_frames
from pydenoise.core.noise_floor import NoiseFloor, window_floors
from pydenoise.seismic import synth
from pydenoise.seismic.train import TrainConfig, train
from pydenoise.seismic.training_data import NoiseMixture, SyntheticSignals, make_windows, network_pair

TINY = {
    "widths": (256, 64, 32, 64, 256),
    "epochs": 2,
    "steps_per_epoch": 3,
    "batch": 32,
    "trace_samples": 512,
    "validation_windows": 32,
    "progress": False,
}


def _quiet(*_):
    pass


def _weights(path):
    return [t.clone() for t in pydenoise.load(str(path)).module.state_dict().values()]


def test_tiny_run_writes_model_log_plot_and_checkpoint(tmp_path):
    output = tmp_path / "m.safetensors"
    result = train(TrainConfig(output=str(output), command="pydenoise train -o m.safetensors", **TINY), _quiet)
    model = pydenoise.load(str(output))
    assert model.residual and model.sample_rate == 100.0 and model.hop == 32
    training = model.config["training"]
    assert training["command"] == "pydenoise train -o m.safetensors" and training["seed"] == 0
    assert training["epochs"] == 2 and np.isfinite(training["validation_loss"])
    assert model.config["domain"] == "seismic"
    rows = list(csv.DictReader(open(result.log_path)))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert (tmp_path / "m.png").stat().st_size > 1000 and (tmp_path / "m.ckpt").exists()
    assert result.best_validation_loss == min(float(r["validation_loss"]) for r in rows)


def test_same_seed_same_model_and_resume_continues_exactly(tmp_path):
    whole = train(TrainConfig(output=str(tmp_path / "a.safetensors"), **TINY), _quiet)

    class Interrupted(Exception):
        pass

    def stop_after_first_epoch(message):
        if message.startswith("epoch 1:"):
            raise Interrupted

    config = TrainConfig(output=str(tmp_path / "b.safetensors"), **TINY)
    with pytest.raises(Interrupted):
        train(config, stop_after_first_epoch)
    resumed = train(TrainConfig(output=str(tmp_path / "b.safetensors"), resume=True, **TINY), _quiet)
    assert resumed.best_validation_loss == whole.best_validation_loss
    for a, b in zip(_weights(whole.model_path), _weights(resumed.model_path)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="other settings"):
        train(TrainConfig(output=str(tmp_path / "b.safetensors"), resume=True, **(TINY | {"lr": 5e-4})), _quiet)


def test_targets_use_the_inference_normalisation():
    config = TrainConfig(output="unused", batch=32, trace_samples=512)
    rng = np.random.default_rng(0)
    noises = NoiseMixture([noise.white(5000, rng=1)], ["white"], 100.0)
    noisy, clean, floor = make_windows(SyntheticSignals(100.0), noises, config, 256, rng)
    assert floor is None
    x, target = network_pair(noisy, clean, floor, residual=False, device="cpu")
    normalised, scale = normalise_frames(torch.from_numpy(noisy))
    torch.testing.assert_close(x, normalised.float())
    torch.testing.assert_close((target.double() * scale).float(), torch.from_numpy(clean).float(), atol=1e-4, rtol=1e-4)
    x, noise_target = network_pair(noisy, clean, floor, residual=True, device="cpu")
    torch.testing.assert_close(noise_target, x - target, atol=1e-5, rtol=1e-5)


def test_training_floors_are_what_a_stream_tracks():
    """A window's training floor equals the NoiseFloor of inference over the frames of its trace on its grid."""
    rng = np.random.default_rng(5)
    noisy = rng.standard_normal((3, 3000)) * np.exp(rng.uniform(-3, 3, (3, 1))) * np.linspace(2, 0.5, 3000)
    starts = rng.integers(0, 3000 - 256 + 1, (3, 6))
    got = window_floors(noisy, starts, 256, 32, history=20)
    for trace, row in enumerate(starts):
        for column, start in enumerate(row):
            grid = torch.from_numpy(noisy[trace, start % 32 :]).unfold(0, 256, 32)
            floors = NoiseFloor(20).update(grid.square().mean(dim=1).sqrt()[None])[0]
            assert got[trace, column] == pytest.approx(float(floors[start // 32]), rel=1e-9)


def test_noise_floor_model_trains_and_loads_as_one(tmp_path):
    result = train(TrainConfig(output=str(tmp_path / "floor.safetensors"), noise_floor_s=3.0, **TINY), _quiet)
    model = pydenoise.load(result.model_path)
    assert TrainConfig(output="unused", noise_floor_s=20.0).trace_samples == 4000  # two 20 s histories at 100 Hz
    assert TrainConfig(output="unused").trace_samples == 1024
    assert model.noise_floor_s == 3.0 and "sqrt(RMS x noise floor)" in model.config["normalisation"]
    with pytest.raises(ValueError, match="noise_floor_s must be > 0"):
        train(TrainConfig(output=str(tmp_path / "bad.safetensors"), noise_floor_s=0.0, **TINY), _quiet)
    with pytest.raises(ValueError, match="noise floor"):
        train(TrainConfig(output=str(tmp_path / "tuned.safetensors"), init=result.model_path, **TINY), _quiet)


def test_windows_favour_the_event():
    config = TrainConfig(output="unused", batch=512, windows_per_trace=64, trace_samples=2048)
    rng = np.random.default_rng(1)
    noises = NoiseMixture([noise.white(5000, rng=1)], ["white"], 100.0)
    _, clean, _ = make_windows(SyntheticSignals(100.0), noises, config, 256, rng)
    assert (np.abs(clean).max(axis=1) > 0).mean() > 0.6


class _UnderflowingCoda:
    """Signals whose only event trace holds a coda decayed so far that its square underflows to 0."""

    def sample(self, count, samples, rng):
        traces = np.zeros((count, samples))
        traces[0, :] = 1e-170
        traces[1, :] = np.sin(np.arange(samples))
        return traces


def test_a_coda_too_faint_to_square_counts_as_event_free():
    config = TrainConfig(output="unused", batch=64, windows_per_trace=16, trace_samples=512)
    noises = NoiseMixture([noise.white(5000, rng=1)], ["white"], 100.0)
    noisy, clean, _ = make_windows(_UnderflowingCoda(), noises, config, 256, np.random.default_rng(0))
    assert np.all(np.isfinite(noisy)) and np.abs(clean[16:32]).max() > 0


def test_drift_is_added_to_the_noise_of_the_chosen_share_of_traces():
    noises = NoiseMixture([noise.white(5000, rng=1)], ["white"], 100.0)

    def off_zero(drift_share):  # share of noise windows whose mean lies beyond their own spread
        config = TrainConfig(output="unused", batch=512, trace_samples=1024, drift_share=drift_share)
        noisy, clean, _ = make_windows(SyntheticSignals(100.0), noises, config, 256, np.random.default_rng(2))
        added = noisy - clean
        return np.mean(np.abs(added.mean(axis=1)) > added.std(axis=1))

    assert off_zero(0.0) < 0.05 < 0.1 < off_zero(0.5) < off_zero(1.0) - 0.1


def _write(path, data, rate=100.0):
    obspy.Stream([obspy.Trace(data.astype(np.float32), header={"sampling_rate": rate})]).write(str(path), "MSEED")


def test_fine_tuning_on_recordings_via_the_cli(tmp_path, capsys):
    base = tmp_path / "base.safetensors"
    train(TrainConfig(output=str(base), **TINY), _quiet)
    events = synth.earthquakes(4, 3000, 50.0, rng=1, event_fraction=1.0).traces.ravel()
    _write(tmp_path / "events.mseed", events, rate=50.0)
    _write(tmp_path / "quiet.mseed", noise.pink(20000, rng=2))
    tuned = tmp_path / "tuned.safetensors"
    status = main(
        [
            "train",
            "-o",
            str(tuned),
            "--init",
            str(base),
            "--signal",
            str(tmp_path / "events.mseed"),
            "--noise",
            str(tmp_path / "quiet.mseed"),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch",
            "32",
            "--validation-windows",
            "32",
            "--no-progress",
        ]
    )
    assert status == 0
    out = capsys.readouterr().out
    assert "resampling" in out and "from 50 Hz to 100 Hz" in out and "best validation loss" in out
    model = pydenoise.load(str(tuned))
    training = model.config["training"]
    assert training["command"].startswith(f"pydenoise train -o {tuned} --init {base}")
    assert training["fine_tuned_from"]["model"] == str(base)
    assert "event recordings" in training["data"] and "quiet.mseed" in training["data"]
    assert model.module.widths == TINY["widths"]


def test_short_recordings_are_named_not_silently_dropped(tmp_path):
    _write(tmp_path / "long.mseed", noise.pink(5000, rng=2))
    _write(tmp_path / "short.mseed", noise.pink(300, rng=3))
    said = []
    config = TrainConfig(
        output=str(tmp_path / "t.safetensors"),
        noise_files=[str(tmp_path / "long.mseed"), str(tmp_path / "short.mseed")],
        **TINY,
    )
    train(config, said.append)
    assert any("left out 1 of 2 noise segments: train part not of >= 512 samples (--trace-samples" in m for m in said)
    config.noise_files = [str(tmp_path / "short.mseed")]
    with pytest.raises(ValueError, match="no noise recording has a train part of >= 512 samples") as error:
        train(config, _quiet)
    assert "the longest has 240 samples (2.4 s at 100 Hz; the train part is the first 80% of each" in str(error.value)


def test_fine_tuning_the_shipped_model_on_a_real_recording_at_its_own_rate(tmp_path, capsys):
    """What a user runs on their station (benchmarks/finetune_station.py, a few steps here): a bundled 50 Hz
    ObsPy record is resampled to the model's 100 Hz, said so, and the tuned model keeps the shipped one's
    long-period path and post-filter but not its weights."""
    recording = Path(obspy.__file__).parent / "signal/tests/data/BW.UH1._.SHZ.D.2010.147.cut.slist.gz"
    tuned = tmp_path / "station.safetensors"
    arguments = ["train", "--init", "seismic", "-o", str(tuned), "--noise", str(recording), "--epochs", "1"]
    arguments += ["--steps-per-epoch", "3", "--batch", "64", "--validation-windows", "64", "--trace-samples", "512"]
    assert main([*arguments, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resampling BW.UH1..SHZ from 50 Hz to 100 Hz" in out and "before fine-tuning (the --init model)" in out
    shipped, model = pydenoise.load("seismic"), pydenoise.load(str(tuned))
    start = model.config["training"]["fine_tuned_from"]
    assert start["model"] == "seismic" and start["validation_loss"] > 0
    assert recording.name in model.config["training"]["data"]
    assert model.config["long_period"] == shipped.config["long_period"]
    assert model.config["postfilter"] == shipped.config["postfilter"]
    assert model.noise_floor_s == shipped.noise_floor_s and model.sample_rate == 100.0
    before, after = shipped.module.state_dict(), model.module.state_dict()
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)


def test_fine_tuning_hands_back_the_init_model_when_no_epoch_beats_it(tmp_path):
    base = tmp_path / "base.safetensors"
    train(TrainConfig(output=str(base), **TINY), _quiet)
    said = []
    ruined = TrainConfig(output=str(tmp_path / "t.safetensors"), init=str(base), lr=1e4, lr_final=1e4, **TINY)
    result = train(ruined, said.append)  # a learning rate that wrecks every step
    assert result.best_epoch == 0 and result.epochs_run == TINY["epochs"]
    assert "no epoch beat the --init model on validation: the output holds its weights" in said
    assert all(torch.equal(a, b) for a, b in zip(_weights(base), _weights(result.model_path)))
    training = pydenoise.load(result.model_path).config["training"]
    assert training["best_epoch"] == 0 and training["validation_loss"] == training["fine_tuned_from"]["validation_loss"]


def test_cli_names_bad_recordings_without_a_traceback(tmp_path, capsys):
    _write(tmp_path / "short.mseed", noise.pink(300, rng=3))
    status = main(
        [
            "train",
            "-o",
            str(tmp_path / "t.safetensors"),
            "--noise",
            str(tmp_path / "short.mseed"),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--no-progress",
        ]
    )
    assert status == 2
    assert "pydenoise train: no noise recording has a train part of >= 1024 samples" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"mode": "vae"}, "mode"),
        ({"batch": 30}, "multiple"),
        ({"snr_db": (5.0, -5.0)}, "snr_db"),
        ({"epochs": 0}, "epochs"),
        ({"drift_share": 1.5}, "drift_share"),
    ],
)
def test_bad_settings_are_named(tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        train(TrainConfig(output=str(tmp_path / "x.safetensors"), **(TINY | change)), _quiet)


def test_mode_must_match_the_init_model(tmp_path):
    base = tmp_path / "base.safetensors"
    train(TrainConfig(output=str(base), **TINY), _quiet)
    with pytest.raises(ValueError, match="mode"):
        train(TrainConfig(output=str(tmp_path / "t.safetensors"), init=str(base), mode="dae", **TINY), _quiet)


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "example" in capsys.readouterr().out


def test_fine_tuning_keeps_the_post_filter_but_not_the_base_models_notes(tmp_path):
    from pydenoise.core.nn import load_model, save_model

    base = tmp_path / "base.safetensors"
    train(TrainConfig(output=str(base), **TINY), _quiet)
    module, config = load_model(base)
    save_model(module, base, {**config, "postfilter": {"history_s": 4.0}, "hop_after_training": "measured on base"})
    tuned = train(TrainConfig(output=str(tmp_path / "tuned.safetensors"), init=str(base), **TINY), _quiet)
    config = pydenoise.load(tuned.model_path).config
    assert config["postfilter"] == {"history_s": 4.0} and "hop_after_training" not in config
