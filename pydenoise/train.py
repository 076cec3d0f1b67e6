"""Training and fine-tuning of trace DDAE models, with noise drawn on the fly.

Each step draws fresh clean traces (synthetic earthquakes from :mod:`pydenoise.synth`, or windows cut from the
user's event recordings), fresh noise (a mixture of real noise recordings and the generators of
:mod:`pydenoise.noise`), mixes them at a random SNR, cuts ``window``-sample windows at random positions and
normalises each *noisy* window exactly as inference does (:func:`pydenoise.denoiser.normalise_frames`); the
target is scaled by the same numbers. DAE mode learns the clean window, noise-learning (nlDAE) mode the noise.

Adam with a cosine learning-rate decay, MSE loss, a fixed validation set (drawn from held-out parts of the
recordings), the best model kept (a safetensors file loadable by :func:`pydenoise.load`), early stopping, a CSV
log, a loss-curve PNG, and a checkpoint to resume from. Data for step ``k`` comes from the seed ``(seed, k)``,
so a resumed run draws what the uninterrupted run would have.

Examples
--------
>>> from pydenoise.train import TrainConfig, train
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

from pydenoise import noise as noise_gen
from pydenoise import synth
from pydenoise.denoiser import floor_history, load, normalise_frames, window_floors
from pydenoise.nn import DEFAULT_WIDTHS, DDAE, save_model

__all__ = ["TrainConfig", "TrainResult", "SyntheticSignals", "RecordedSignals", "NoiseMixture", "train",
           "read_recordings", "make_windows", "network_pair", "command_line"]

#: Share of the held-out tail of each recording kept for validation.
VALIDATION_SHARE = 0.2


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
        Start from this model (a shipped name or a path): fine-tuning. Its widths, mode and rate are kept.
    signal_files, noise_files : list of str
        Event recordings (clean windows are cut from them) and quiet recordings (noise). Without signal
        files the clean traces are synthetic; without noise files the noise recording is ObsPy's ref_STS2.
    snr_db : (float, float)
        Range of the SNR (dB) each training trace is mixed at, uniform.
    event_window_share : float
        Share of the training windows placed where the clean trace has energy (the rest: uniform offsets).
    noise_floor_s : float or None
        Train a noise-floor model (see :func:`pydenoise.denoiser.normalise_frames`): each window is divided by
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


def read_recordings(paths, sample_rate: float, announce=print) -> list[np.ndarray]:
    """Every trace of every ObsPy-readable file in ``paths`` as float64 samples at ``sample_rate``.

    Traces at another rate are resampled explicitly (and ``announce`` says so); masked gaps split a trace into
    its contiguous segments.
    """
    import obspy

    segments = []
    for path in paths:
        try:
            stream = obspy.read(os.fspath(path))
        except Exception as error:  # ObsPy raises many types for unreadable files
            raise ValueError(f"recording {path!r} is not readable by ObsPy: {error}") from None
        for trace in stream.split():
            trace.data = trace.data.astype(np.float64)
            if trace.stats.sampling_rate != sample_rate:
                announce(f"resampling {trace.id} from {trace.stats.sampling_rate:g} Hz to {sample_rate:g} Hz")
                trace.resample(sample_rate)
            segments.append(trace.data - trace.data.mean())
    return segments


def _split(recordings: list[np.ndarray], kind: str, part: str, minimum: int, announce) -> list[np.ndarray]:
    """The training head or the validation tail of each recording (time split, so no sample is shared); parts
    shorter than ``minimum`` samples are left out, and ``announce`` says how many."""
    pieces = []
    for data in recordings:
        cut = int(round(data.size * (1 - VALIDATION_SHARE)))
        pieces.append(data[:cut] if part == "train" else data[cut:])
    kept = [piece for piece in pieces if piece.size >= minimum]
    hint = f"of >= {minimum} samples (--trace-samples; by default two noise-floor histories)"
    if not kept:
        raise ValueError(f"no {kind} recording has a {part} part {hint}")
    if len(kept) < len(pieces):
        announce(f"left out {len(pieces) - len(kept)} of {len(pieces)} {kind} segments: {part} part not {hint}")
    return kept


class SyntheticSignals:
    """Clean traces from :func:`pydenoise.synth.earthquakes`."""

    def __init__(self, sample_rate: float):
        self.sample_rate = sample_rate

    def describe(self) -> str:
        """One line for the model metadata."""
        return "synthetic earthquakes (pydenoise.synth)"

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` clean traces; event-free rows are zeros."""
        return synth.earthquakes(count, samples, self.sample_rate, rng).traces


class RecordedSignals:
    """Clean traces cut at random from event recordings, at random amplitudes (for fine-tuning)."""

    def __init__(self, recordings: list[np.ndarray], names: list[str]):
        self.recordings = recordings
        self.names = names

    def describe(self) -> str:
        """One line for the model metadata."""
        return "event recordings: " + ", ".join(self.names)

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` windows of the recordings, each scaled to a log-uniform RMS."""
        pick = rng.integers(0, len(self.recordings), count)
        rows = [noise_gen.from_recording(self.recordings[i], samples, rng) for i in pick]
        return np.stack(rows) * np.exp(rng.uniform(np.log(1e-2), np.log(1e2), (count, 1)))


class NoiseMixture:
    """Noise for training: real recordings and synthetic colours, with occasional spikes.

    Each row is, with the given weights, a segment of a recording, pink, brown, band-limited (random band
    inside 0.1 Hz – Nyquist) or white noise; ``spike_share`` of the rows also get impulsive spikes.
    """

    KINDS = ("recorded", "pink", "brown", "band", "white")

    def __init__(self, recordings: list[np.ndarray], names: list[str], sample_rate: float,
                 weights=(0.6, 0.15, 0.0, 0.15, 0.1), spike_share: float = 0.1):
        self.recordings = recordings
        self.names = names
        self.sample_rate = sample_rate
        weights = np.asarray(weights, dtype=float)
        self.weights = weights / weights.sum()
        self.spike_share = spike_share

    def describe(self) -> str:
        """One line for the model metadata."""
        shares = ", ".join(f"{k} {w:.2f}" for k, w in zip(self.KINDS, self.weights))
        return f"noise: {shares} (recordings: {', '.join(self.names)}); spikes on {self.spike_share:.2f} of rows"

    def sample(self, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(count, samples)`` noise rows with unit RMS (before spikes)."""
        kinds = rng.choice(len(self.KINDS), size=count, p=self.weights)
        out = np.empty((count, samples))
        for kind in np.unique(kinds):
            rows = np.flatnonzero(kinds == kind)
            out[rows] = self._kind(self.KINDS[kind], rows.size, samples, rng)
        spiky = rng.random(count) < self.spike_share
        if spiky.any():
            rate = rng.uniform(0.001, 0.01, (int(spiky.sum()), 1))
            height = rng.uniform(2.0, 20.0, (int(spiky.sum()), 1))
            out[spiky] += height * noise_gen.spikes((int(spiky.sum()), samples), 1.0, rng) * (
                rng.random((int(spiky.sum()), samples)) < rate)
        return out

    def _kind(self, kind: str, count: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        if kind == "recorded":
            pick = rng.integers(0, len(self.recordings), count)
            return np.stack([noise_gen.from_recording(self.recordings[i], samples, rng) for i in pick])
        if kind == "pink":
            return noise_gen.pink((count, samples), rng)
        if kind == "brown":
            return noise_gen.brown((count, samples), rng)
        if kind == "white":
            return noise_gen.white((count, samples), rng)
        nyquist = self.sample_rate / 2
        low = math.exp(rng.uniform(math.log(0.1), math.log(0.5 * nyquist)))
        high = min(nyquist, low * math.exp(rng.uniform(math.log(2.0), math.log(50.0))))
        return noise_gen.band_limited((count, samples), low, high, self.sample_rate, rng)


def make_windows(signals, noises, config: TrainConfig, window: int, rng: np.random.Generator):
    """One batch: ``(noisy, clean, floor)``: windows ``(config.batch, window)``, float64, not yet normalised,
    and each noisy window's noise floor ``(config.batch, 1)`` (None unless ``config.noise_floor_s``).

    Traces of ``config.trace_samples`` are mixed at an SNR drawn uniformly from ``config.snr_db`` (event-free
    traces get noise alone), then ``config.windows_per_trace`` windows are cut from each at random offsets.
    """
    traces = config.batch // config.windows_per_trace
    length = max(config.trace_samples, window)
    clean = signals.sample(traces, length, rng)
    noise = noises.sample(traces, length, rng)
    # By energy, not by non-zero samples: a coda decayed to ~1e-170 is non-zero, yet its square underflows to 0.
    has_signal = np.sum(clean**2, axis=1) > 0
    noisy = noise * np.exp(rng.uniform(np.log(1e-2), np.log(1e2), (traces, 1)))  # event-free: any scale
    snr = rng.uniform(*config.snr_db, int(has_signal.sum()))
    if has_signal.any():
        noisy[has_signal] = noise_gen.mix(clean[has_signal], noise[has_signal], snr)
    if config.drift_share:  # (no draw otherwise: recorded commands keep their batches)
        noisy += _drift(noisy - clean, config.drift_share, rng)
    starts = _window_starts(clean, window, config.windows_per_trace, config.event_window_share, rng)
    floor = None
    if config.noise_floor_s is not None:
        history = floor_history(config.noise_floor_s, config.sample_rate, config.hop)
        floor = window_floors(noisy, starts, window, config.hop, history).reshape(-1, 1)
    starts = starts[:, :, None] + np.arange(window)
    rows = np.arange(traces)[:, None, None]
    return noisy[rows, starts].reshape(-1, window), clean[rows, starts].reshape(-1, window), floor


def _drift(noise: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor drift for a ``share`` of the noise rows: offset + linear trend, each uniform in ±A, with A
    log-uniform in 0.1–30 times the row's noise RMS; zero elsewhere."""
    rows, samples = noise.shape
    drifting = rng.random(rows) < share
    size = np.exp(rng.uniform(np.log(0.1), np.log(30.0), rows)) * np.sqrt(np.mean(noise**2, axis=1))
    offset, slope = rng.uniform(-1.0, 1.0, (2, rows))
    ramp = np.linspace(-1.0, 1.0, samples)
    return np.where(drifting, size, 0.0)[:, None] * (offset[:, None] + slope[:, None] * ramp)


def _window_starts(clean: np.ndarray, window: int, count: int, event_share: float, rng) -> np.ndarray:
    """``(traces, count)`` window offsets: a share placed where the clean trace has energy, the rest uniform.

    Uniform offsets alone would mostly land before the onset or in the faded coda (noise-only windows), while
    what matters most is denoising the event itself without distorting it.
    """
    positions = clean.shape[1] - window + 1
    starts = rng.integers(0, positions, (clean.shape[0], count))
    energy = np.cumsum(np.pad(clean**2, ((0, 0), (1, 0))), axis=1)
    in_window = energy[:, window:] - energy[:, :positions]  # energy of the window starting at each offset
    total = in_window.sum(axis=1, keepdims=True)
    cdf = np.cumsum(in_window, axis=1) / np.where(total > 0, total, 1.0)
    by_energy = (rng.random((clean.shape[0], count)) < event_share) & (total > 0)
    drawn = np.array([np.searchsorted(row, rng.random(count)) for row in cdf]).clip(0, positions - 1)
    return np.where(by_energy, drawn, starts)


def network_pair(noisy: np.ndarray, clean: np.ndarray, floor: np.ndarray | None, residual: bool,
                 device) -> tuple[torch.Tensor, torch.Tensor]:
    """Network input and target (float32 on ``device``) for a batch of windows.

    Each noisy window is normalised by :func:`~pydenoise.denoiser.normalise_frames` (with its noise ``floor``
    ``(B, 1)`` for a noise-floor model), exactly as inference does, and the clean window is divided by the
    same scale. The target is that clean window (DAE), or the noise ``input - clean`` (nlDAE,
    ``residual=True``).
    """
    floor = None if floor is None else torch.from_numpy(floor)
    normalised, scale = normalise_frames(torch.from_numpy(noisy), floor)
    clean_target = torch.from_numpy(clean) / torch.where(scale > 0, scale, torch.ones_like(scale))
    target = normalised - clean_target if residual else clean_target
    return normalised.to(device, torch.float32), target.to(device, torch.float32)


def _sources(config: TrainConfig, window: int, announce):
    """Training and validation (signals, noises), with recordings split in time between the two."""
    rate = config.sample_rate
    minimum = max(config.trace_samples, window)
    if config.noise_files:
        noise_records, noise_names = read_recordings(config.noise_files, rate, announce), list(config.noise_files)
    else:
        noise_records, noise_names = [noise_gen.obspy_noise("ref_STS2", rate)], ["ObsPy ref_STS2"]
    events = read_recordings(config.signal_files, rate, announce) if config.signal_files else None
    sources = {}
    for part in ("train", "validation"):
        noises = NoiseMixture(_split(noise_records, "noise", part, minimum, announce), noise_names, rate)
        if events is None:
            signals = SyntheticSignals(rate)
        else:
            signals = RecordedSignals(_split(events, "signal", part, minimum, announce), list(config.signal_files))
        sources[part] = (signals, noises)
    return sources


def _initial_module(config: TrainConfig) -> tuple[DDAE, dict]:
    if config.init is None:
        return DDAE(config.widths, residual=config.mode == "nldae"), {}
    base = load(config.init)
    if base.sample_rate is not None and base.sample_rate != config.sample_rate:
        raise ValueError(f"init model {config.init!r} is trained at {base.sample_rate} Hz but sample_rate is "
                         f"{config.sample_rate} Hz")
    if base.noise_floor_s != config.noise_floor_s:
        raise ValueError(f"init model {config.init!r} has noise floor {base.noise_floor_s} s but noise_floor_s is "
                         f"{config.noise_floor_s}")
    if base.residual != (config.mode == "nldae"):
        raise ValueError(f"init model {config.init!r} is {'nldae' if base.residual else 'dae'} but mode is "
                         f"{config.mode!r}")
    module = DDAE(base.module.widths, residual=base.residual)
    module.load_state_dict(base.module.state_dict())
    return module, base.config


def _paths(output: str) -> dict[str, Path]:
    stem = Path(output).with_suffix("")
    return {"model": Path(output), "log": stem.with_suffix(".csv"), "plot": stem.with_suffix(".png"),
            "checkpoint": stem.with_suffix(".ckpt")}


def _validation_set(sources, config, window, residual, device):
    signals, noises = sources["validation"]
    rng = np.random.default_rng([config.seed, 2**31 - 1])  # a stream the training steps never use
    batches = []
    for _ in range(math.ceil(config.validation_windows / config.batch)):
        batches.append(network_pair(*make_windows(signals, noises, config, window, rng), residual=residual,
                                    device=device))
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


def _metadata(config, module, base_config, sources, best_loss, best_epoch, epochs_run) -> dict:
    signals, noises = sources["train"]
    # an --init model's settings carry over (its post-filter too), not its notes on its own measurements
    meta = {k: v for k, v in base_config.items()
            if k not in ("kind", "widths", "residual", "training") and not k.endswith("_after_training")}
    meta.update(sample_rate=config.sample_rate, hop=config.hop, window=module.window,
                domain=meta.get("domain", "seismic"),
                normalisation="channel mean removed; each window divided by " + (
                    "its RMS" if config.noise_floor_s is None else "sqrt(RMS x noise floor)"))
    if config.noise_floor_s is not None:  # an --init model's floor equals it (checked)
        meta["noise_floor_s"] = config.noise_floor_s
    training = {
        "command": config.command, "mode": config.mode, "seed": config.seed, "epochs": epochs_run,
        "best_epoch": best_epoch, "steps_per_epoch": config.steps_per_epoch, "batch": config.batch,
        "lr": config.lr, "snr_db": list(config.snr_db), "trace_samples": config.trace_samples,
        "event_window_share": config.event_window_share, "drift_share": config.drift_share,
        "validation_loss": best_loss,
        "data": f"{signals.describe()}; {noises.describe()}",
    }
    if config.init is not None:
        training["fine_tuned_from"] = {"model": config.init, "training": base_config.get("training")}
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
    signals, noises = sources["train"]
    from tqdm import tqdm

    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["bad_epochs"] >= config.patience:
            announce(f"early stop: no validation improvement in {config.patience} epochs")
            break
        started = time.perf_counter()
        losses = []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch}/{config.epochs}", leave=False,
                   disable=not config.progress, file=sys.stderr)
        for step_in_epoch in bar:
            step = (epoch - 1) * config.steps_per_epoch + step_in_epoch
            rng = np.random.default_rng([config.seed, step])
            x, y = network_pair(*make_windows(signals, noises, config, window, rng), residual=module.residual,
                                device=device)
            loss = torch.nn.functional.mse_loss(module(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        validation_loss = _validation_loss(module, validation)
        row = {"epoch": epoch, "step": epoch * config.steps_per_epoch, "train_loss": float(np.mean(losses)),
               "validation_loss": validation_loss, "lr": schedule.get_last_lr()[0],
               "seconds": time.perf_counter() - started}
        state["rows"].append(row)
        state["epoch"] = epoch
        if validation_loss < state["best_loss"]:
            state.update(best_loss=validation_loss, best_epoch=epoch, bad_epochs=0)
            meta = _metadata(config, module, base_config, sources, validation_loss, epoch, epoch)
            save_model(module, paths["model"], meta)
        else:
            state["bad_epochs"] += 1
        _write_log(state["rows"], paths["log"])
        _plot_losses(state["rows"], paths["plot"])
        _save_checkpoint(paths["checkpoint"], config, module, optimiser, schedule, state)
        announce(f"epoch {epoch}: train {row['train_loss']:.5f}  validation {validation_loss:.5f}  "
                 f"best {state['best_loss']:.5f} (epoch {state['best_epoch']})  {row['seconds']:.0f} s")
    _record_epochs_run(paths["model"], state["epoch"])
    return TrainResult(str(paths["model"]), state["best_loss"], state["best_epoch"], state["epoch"],
                       str(paths["log"]), str(paths["plot"]))


def _record_epochs_run(model_path: Path, epochs_run: int) -> None:
    """Write the number of epochs actually run into the best model's metadata (it was saved mid-run)."""
    from pydenoise.nn import load_model

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
    torch.save({"config": _comparable(config), "module": module.state_dict(), "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(), "state": json.dumps(state)}, temporary)
    os.replace(temporary, path)  # never leave a half-written checkpoint


def _restore(path: Path, config, module, optimiser, schedule) -> dict:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved["config"] != _comparable(config):
        raise ValueError(f"checkpoint {str(path)!r} was written by a run with other settings; "
                         "delete it or train without resume")
    module.load_state_dict(saved["module"])
    optimiser.load_state_dict(saved["optimiser"])
    schedule.load_state_dict(saved["schedule"])
    return json.loads(saved["state"])


def command_line(argv: list[str]) -> str:
    """``pydenoise`` followed by ``argv``, shell-quoted: the command recorded in the model metadata."""
    return " ".join(shlex.quote(a) for a in ["pydenoise", *argv])
