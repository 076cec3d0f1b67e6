"""Training and fine-tuning of trace DDAE models, with noise drawn on the fly.

Each step draws fresh clean traces (synthetic earthquakes from :mod:`pydenoise.seismic.synth`, or windows cut from the
user's event recordings), fresh noise (a mixture of real noise recordings and the generators of
:mod:`pydenoise.core.noise`), mixes them at a random SNR, cuts ``window``-sample windows at random positions and
normalises each *noisy* window exactly as inference does (:func:`pydenoise.core.frames.normalise_frames`); the
target is scaled by the same numbers. DAE mode learns the clean window, noise-learning (nlDAE) mode the noise.
 The batches come from :mod:`pydenoise.seismic.training_data`. Adam with a cosine learning-rate decay, MSE loss, a fixed
validation set (drawn from held-out parts of the recordings), the best model kept (a safetensors file loadable by
:func:`pydenoise.load`), early stopping, a CSV log, a loss-curve PNG, and a checkpoint to resume from. Data for step
``k`` comes from the seed ``(seed, k)``,
so a resumed run draws what the uninterrupted run would have.

Examples
--------
>>> from pydenoise.seismic.train import TrainConfig, train
>>> result = train(TrainConfig(output="tiny.safetensors", epochs=1, steps_per_epoch=2, batch=16,
...                            validation_windows=32))          # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pydenoise.core.denoiser import load
from pydenoise.core.nn import DDAE, DEFAULT_WIDTHS, save_model
from pydenoise.seismic.noise import obspy_noise
from pydenoise.seismic.training_data import (
    NoiseMixture,
    RecordedSignals,
    SyntheticSignals,
    make_windows,
    network_pair,
    read_recordings,
    split_recordings,
)

__all__ = ["TrainConfig", "TrainResult", "train", "command_line"]


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on (recorded in the model file).

    Attributes
    ----------
    output : str
        The model file written (best validation loss so far); the log ``<stem>.csv``, the loss curve
        ``<stem>.png`` and the checkpoint ``<stem>.ckpt`` go beside it.
    mode : str
        ``"dae"`` (learn the clean window) or ``"nldae"`` (learn the noise; clean = x − f(x)).
    init : str or None
        Start from this model (a shipped name or a path): fine-tuning. Its widths, mode and rate are kept, and
        it competes as epoch 0: the output is never worse on the validation windows than the start.
    signal_files, noise_files : list of str
        Event recordings (clean windows are cut from them) and quiet recordings (noise). Without signal
        files the clean traces are synthetic; without noise files the noise recording is ObsPy's ref_STS2.
    snr_db : (float, float)
        Range of the SNR (dB) each training trace is mixed at, uniform.
    event_window_share : float
        Share of the training windows placed where the clean trace has energy (the rest: uniform offsets).
    noise_floor_s : float or None
        Train a noise-floor model (see :func:`pydenoise.core.frames.normalise_frames`): each window is divided by
        ``sqrt(RMS · floor)``, the floor being the smallest RMS of the windows ``hop`` apart over the preceding
        ``noise_floor_s`` seconds of its trace, as a stream tracks it. None: each window is divided by its RMS.
    trace_samples : int or None
        Length of the traces windows are cut from. None: 1024, or for a noise-floor model two floor histories
        (so that most windows have a whole history behind them), whichever is longer.
    drift_share : float
        Share of the training traces whose noise also gets a sensor drift: an offset and a linear trend across
        the trace, each up to 30 times the rest of the noise's RMS. A network trained without it has never
        seen a window far off zero and fails on one (a trace whose level wanders by a few noise RMS); with it,
        the noise-learning network removes drift as noise.
    """

    output: str
    mode: str = "nldae"
    widths: tuple = DEFAULT_WIDTHS
    init: str | None = None
    sample_rate: float = 100.0
    hop: int = 32
    signal_files: list = dataclasses.field(default_factory=list)
    noise_files: list = dataclasses.field(default_factory=list)
    snr_db: tuple = (-10.0, 40.0)
    trace_samples: int | None = None
    windows_per_trace: int = 8
    event_window_share: float = 0.5
    noise_floor_s: float | None = None
    drift_share: float = 0.0
    batch: int = 256
    epochs: int = 40
    steps_per_epoch: int = 250
    lr: float = 1e-3
    lr_final: float = 2e-5
    patience: int = 8
    validation_windows: int = 4096
    seed: int = 0
    device: str = "cpu"
    resume: bool = False
    progress: bool = True
    command: str = ""

    def __post_init__(self):
        if self.trace_samples is None:
            span = 0 if self.noise_floor_s is None else 2 * math.ceil(self.noise_floor_s * self.sample_rate)
            self.trace_samples = max(1024, span)

    def check(self) -> None:
        """Raise ``ValueError`` naming the first invalid setting."""
        if self.mode not in ("dae", "nldae"):
            raise ValueError(f"mode must be 'dae' or 'nldae', got {self.mode!r}")
        if not self.sample_rate > 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        low, high = self.snr_db
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(f"snr_db must be a finite (low, high) range, got {self.snr_db}")
        for name in ("batch", "epochs", "steps_per_epoch", "windows_per_trace", "validation_windows", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch % self.windows_per_trace:
            raise ValueError(f"batch ({self.batch}) must be a multiple of windows_per_trace ({self.windows_per_trace})")
        for name in ("event_window_share", "drift_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.noise_floor_s is not None and not self.noise_floor_s > 0:
            raise ValueError(f"noise_floor_s must be > 0 seconds, got {self.noise_floor_s}")
        if not 0 < self.lr_final <= self.lr:
            raise ValueError(f"need 0 < lr_final <= lr, got lr={self.lr}, lr_final={self.lr_final}")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the model file, the best validation loss and where it was reached."""

    model_path: str
    best_validation_loss: float
    best_epoch: int
    epochs_run: int
    log_path: str
    plot_path: str


def _sources(config: TrainConfig, window: int, announce):
    """Training and validation (signals, noises), with recordings split in time between the two."""
    rate = config.sample_rate
    minimum = max(config.trace_samples, window)
    if config.noise_files:
        noise_records, noise_names = read_recordings(config.noise_files, rate, announce), list(config.noise_files)
    else:
        noise_records, noise_names = [obspy_noise("ref_STS2", rate)], ["ObsPy ref_STS2"]
    events = read_recordings(config.signal_files, rate, announce) if config.signal_files else None
    sources = {}
    for part in ("train", "validation"):
        noises = NoiseMixture(
            split_recordings(noise_records, "noise", part, minimum, rate, announce), noise_names, rate
        )
        if events is None:
            signals = SyntheticSignals(rate)
        else:
            signals = RecordedSignals(
                split_recordings(events, "signal", part, minimum, rate, announce), list(config.signal_files)
            )
        sources[part] = (signals, noises)
    return sources


def _initial_module(config: TrainConfig) -> tuple[DDAE, dict]:
    if config.init is None:
        return DDAE(config.widths, residual=config.mode == "nldae"), {}
    base = load(config.init)
    if base.sample_rate is not None and base.sample_rate != config.sample_rate:
        raise ValueError(
            f"init model {config.init!r} is trained at {base.sample_rate} Hz but sample_rate is {config.sample_rate} Hz"
        )
    if base.noise_floor_s != config.noise_floor_s:
        raise ValueError(
            f"init model {config.init!r} has noise floor {base.noise_floor_s} s but noise_floor_s is "
            f"{config.noise_floor_s}"
        )
    if base.residual != (config.mode == "nldae"):
        raise ValueError(
            f"init model {config.init!r} is {'nldae' if base.residual else 'dae'} but mode is {config.mode!r}"
        )
    module = DDAE(base.module.widths, residual=base.residual)
    module.load_state_dict(base.module.state_dict())
    return module, base.config


def _paths(output: str) -> dict[str, Path]:
    stem = Path(output).with_suffix("")
    return {
        "model": Path(output),
        "log": stem.with_suffix(".csv"),
        "plot": stem.with_suffix(".png"),
        "checkpoint": stem.with_suffix(".ckpt"),
    }


def _validation_set(sources, config, window, residual, device):
    signals, noises = sources["validation"]
    rng = np.random.default_rng([config.seed, 2**31 - 1])  # a stream the training steps never use
    batches = []
    for _ in range(math.ceil(config.validation_windows / config.batch)):
        batches.append(
            network_pair(*make_windows(signals, noises, config, window, rng), residual=residual, device=device)
        )
    return batches


@torch.no_grad()
def _validation_loss(module: DDAE, batches) -> float:
    module.eval()
    total = sum(float(torch.nn.functional.mse_loss(module(x), y)) for x, y in batches)
    module.train()
    return total / len(batches)


def _plot_losses(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [r["epoch"] for r in rows]
    ax.semilogy(epochs, [r["train_loss"] for r in rows], label="training")
    ax.semilogy(epochs, [r["validation_loss"] for r in rows], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (normalised windows)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _metadata(config, module, base_config, sources, state) -> dict:
    signals, noises = sources["train"]
    # an --init model's settings carry over (its post-filter too), not its notes on its own measurements
    meta = {
        k: v
        for k, v in base_config.items()
        if k not in ("kind", "widths", "residual", "training") and not k.endswith("_after_training")
    }
    meta.update(
        sample_rate=config.sample_rate,
        hop=config.hop,
        window=module.window,
        domain=meta.get("domain", "seismic"),
        normalisation="channel mean removed; each window divided by "
        + ("its RMS" if config.noise_floor_s is None else "sqrt(RMS x noise floor)"),
    )
    if config.noise_floor_s is not None:  # an --init model's floor equals it (checked)
        meta["noise_floor_s"] = config.noise_floor_s
    training = {
        "command": config.command,
        "mode": config.mode,
        "seed": config.seed,
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "steps_per_epoch": config.steps_per_epoch,
        "batch": config.batch,
        "lr": config.lr,
        "snr_db": list(config.snr_db),
        "trace_samples": config.trace_samples,
        "event_window_share": config.event_window_share,
        "drift_share": config.drift_share,
        "validation_loss": state["best_loss"],
        "data": f"{signals.describe()}; {noises.describe()}",
    }
    if config.init is not None:
        training["fine_tuned_from"] = {
            "model": config.init,
            "training": base_config.get("training"),
            "validation_loss": state.get("init_validation_loss"),  # on this run's validation set
        }
    meta["training"] = training
    return meta


def train(config: TrainConfig, announce=print) -> TrainResult:
    """Train (or fine-tune, or resume) a trace model as ``config`` says; returns the best model's path.

    See the module docstring for the procedure. Raises ``ValueError`` for invalid settings or unreadable
    recordings.
    """
    config.check()
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    module, base_config = _initial_module(config)
    module = module.to(device).train()
    window = module.window
    paths = _paths(config.output)
    paths["model"].parent.mkdir(parents=True, exist_ok=True)
    sources = _sources(config, window, announce)
    validation = _validation_set(sources, config, window, module.residual, device)
    optimiser = torch.optim.Adam(module.parameters(), lr=config.lr)
    total_steps = config.epochs * config.steps_per_epoch
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, total_steps, eta_min=config.lr_final)
    state = {"epoch": 0, "best_loss": math.inf, "best_epoch": 0, "bad_epochs": 0, "rows": []}
    if config.resume and paths["checkpoint"].exists():
        state = _restore(paths["checkpoint"], config, module, optimiser, schedule)
        announce(f"resuming {paths['checkpoint']} after epoch {state['epoch']}")
    if config.init is not None and state["epoch"] == 0:  # the start competes as epoch 0, on the same windows
        state["init_validation_loss"] = state["best_loss"] = _validation_loss(module, validation)
        save_model(module, paths["model"], _metadata(config, module, base_config, sources, state))
        announce(f"validation {state['init_validation_loss']:.5f} before fine-tuning (the --init model)")
    signals, noises = sources["train"]
    from tqdm import tqdm

    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["bad_epochs"] >= config.patience:
            announce(f"early stop: no validation improvement in {config.patience} epochs")
            break
        started = time.perf_counter()
        losses = []
        bar = tqdm(
            range(config.steps_per_epoch),
            desc=f"epoch {epoch}/{config.epochs}",
            leave=False,
            disable=not config.progress,
            file=sys.stderr,
        )
        for step_in_epoch in bar:
            step = (epoch - 1) * config.steps_per_epoch + step_in_epoch
            rng = np.random.default_rng([config.seed, step])
            x, y = network_pair(
                *make_windows(signals, noises, config, window, rng), residual=module.residual, device=device
            )
            loss = torch.nn.functional.mse_loss(module(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        validation_loss = _validation_loss(module, validation)
        row = {
            "epoch": epoch,
            "step": epoch * config.steps_per_epoch,
            "train_loss": float(np.mean(losses)),
            "validation_loss": validation_loss,
            "lr": schedule.get_last_lr()[0],
            "seconds": time.perf_counter() - started,
        }
        state["rows"].append(row)
        state["epoch"] = epoch
        if validation_loss < state["best_loss"]:
            state.update(best_loss=validation_loss, best_epoch=epoch, bad_epochs=0)
            meta = _metadata(config, module, base_config, sources, state)
            save_model(module, paths["model"], meta)
        else:
            state["bad_epochs"] += 1
        _write_log(state["rows"], paths["log"])
        _plot_losses(state["rows"], paths["plot"])
        _save_checkpoint(paths["checkpoint"], config, module, optimiser, schedule, state)
        announce(
            f"epoch {epoch}: train {row['train_loss']:.5f}  validation {validation_loss:.5f}  "
            f"best {state['best_loss']:.5f} (epoch {state['best_epoch']})  {row['seconds']:.0f} s"
        )
    if config.init is not None and state["best_epoch"] == 0:
        announce("no epoch beat the --init model on validation: the output holds its weights")
    _record_epochs_run(paths["model"], state["epoch"])
    return TrainResult(
        str(paths["model"]),
        state["best_loss"],
        state["best_epoch"],
        state["epoch"],
        str(paths["log"]),
        str(paths["plot"]),
    )


def _record_epochs_run(model_path: Path, epochs_run: int) -> None:
    """Write the number of epochs actually run into the best model's metadata (it was saved mid-run)."""
    from pydenoise.core.nn import load_model

    if not model_path.exists():
        return
    module, meta = load_model(model_path)
    meta["training"]["epochs"] = epochs_run
    save_model(module, model_path, {k: v for k, v in meta.items() if k not in ("kind", "widths", "residual")})


def _write_log(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _comparable(config: TrainConfig) -> str:
    """The settings a resumed run must share with the checkpoint (not the bookkeeping ones)."""
    fields = dataclasses.asdict(config)
    for name in ("resume", "progress", "command", "device", "patience"):
        fields.pop(name)
    return json.dumps(fields, sort_keys=True, default=list)


def _save_checkpoint(path: Path, config, module, optimiser, schedule, state) -> None:
    temporary = path.with_suffix(".ckpt.tmp")
    torch.save(
        {
            "config": _comparable(config),
            "module": module.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "state": json.dumps(state),
        },
        temporary,
    )
    os.replace(temporary, path)  # never leave a half-written checkpoint


def _restore(path: Path, config, module, optimiser, schedule) -> dict:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["config"] != _comparable(config):
        raise ValueError(
            f"checkpoint {str(path)!r} was written by a run with other settings; delete it or train without resume"
        )
    module.load_state_dict(saved["module"])
    optimiser.load_state_dict(saved["optimiser"])
    schedule.load_state_dict(saved["schedule"])
    return json.loads(saved["state"])


def command_line(argv: list[str]) -> str:
    """``pydenoise`` followed by ``argv``, shell-quoted: the command recorded in the model metadata."""
    return " ".join(shlex.quote(a) for a in ["pydenoise", *argv])
