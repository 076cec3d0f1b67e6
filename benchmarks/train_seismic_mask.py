"""Train the seismic spectral-mask model on the held-out protocol's TRAIN split and pick its epoch on VALIDATION.

Signals: the train split's clean references plus synthetic earthquakes; noise: the train split's noise records
(those of at least one training trace) and synthetic colours (pydenoise.seismic.spectral_training). The epoch
kept is the one with the best mean SNR gain at input <= 5 dB on the validation references, scored as
eval_seismic_heldout.py scores the test set, with the validation split's own noise records (mirror-tiled to the
references' length: they are shorter). The test split is never read here.

    python benchmarks/train_seismic_mask.py                       # about 20 minutes on one core
    python benchmarks/train_seismic_mask.py -o /tmp/m.safetensors --epochs 2 --rows 400    # a quick try
    python benchmarks/train_seismic_mask.py --fold 0       # the k-fold model of fold 0 (FOLD_DIR, not shipped)
    python benchmarks/train_seismic_mask.py --low-latency  # the 2.5 s model, seismic_mask_low_latency

A fold's model is trained on every clean reference (of any split) whose station is not in the fold, for the
epoch with the lowest loss on held-out training mixes (not on validation: validation stations may be in the
fold), and is used only for the k-fold figure of eval_seismic_heldout.py.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import eval_seismic_heldout as heldout  # noqa: E402
import seismic_protocol as protocol  # noqa: E402

from pydenoise.seismic.spectral_training import DEFAULTS, LOW_LATENCY, train  # noqa: E402

WEIGHTS = HERE.parent / "pydenoise" / "weights" / "seismic_mask.safetensors"
LOW_LATENCY_WEIGHTS = WEIGHTS.with_name("seismic_mask_low_latency.safetensors")
FOLD_DIR = HERE.parent / "build" / "seismic_mask_folds"
TRACE_SAMPLES = 12000


def mirror_tiled(source: np.ndarray, samples: int) -> np.ndarray:
    """``source`` repeated forwards and backwards (no jumps at the joins) to at least ``samples``."""
    turns = [source if k % 2 == 0 else source[::-1] for k in range(samples // source.size + 2)]
    return np.concatenate(turns)


def split_records(name: str):
    entries = protocol.load_manifest(name)
    references = [e for e in entries if e["reference"]]
    noise = [e for e in entries if not e["reference"]]
    return references, noise


def validation_sources() -> tuple[list[dict], list[np.ndarray]]:
    """The VALIDATION references and its noise recordings, each tiled to the longest mix."""
    references, noise = split_records("validation")
    longest = int(heldout.MAX_SECONDS * heldout.RATE)
    return references, [mirror_tiled(protocol.read_record(e["path"], e["trace_id"])[0], longest) for e in noise]


def validation_scorer():
    references, sources = validation_sources()

    def score(denoiser) -> float:
        rows = heldout.evaluate(references, sources, {"candidate": denoiser}, seed=7, only_models=True)
        return heldout.mean([r for r in rows if r["snr_in"] <= 5], method="candidate")

    return score


def write_log(log: list[dict], csv_path: Path, plot_path: Path | None) -> None:
    """The training log as CSV and, for a shipped model, its loss curve."""
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)
    if plot_path is not None:
        plot_log(log, plot_path)


def plot_log(log: list[dict], path: Path) -> None:
    """The loss curve shipped with the model: held-out training-mix loss and the validation score per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, loss_axis = plt.subplots(figsize=(6, 3.5))
    epochs = [int(r["epoch"]) for r in log]
    loss_axis.plot(epochs, [float(r["held_loss"]) for r in log], "C0", label="held-out training mixes")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss: minus the mean output SNR (dB)")
    score_axis = loss_axis.twinx()
    score_axis.plot(epochs, [float(r["validation"]) for r in log], "C1", label="validation")
    score_axis.set_ylabel("validation: mean gain at <= 5 dB (dB)")
    fig.legend(loc="upper center", ncol=2, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", help=f"default: {WEIGHTS}, or FOLD_DIR/foldK.safetensors with --fold")
    parser.add_argument("--fold", type=int, help="train the k-fold model of this fold instead")
    parser.add_argument("--low-latency", action="store_true", help=f"the 2.5 s model: {LOW_LATENCY_WEIGHTS.name}")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rows", type=int, default=4000, help="training traces of 120 s")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--snr-db", type=float, nargs=2, default=(-10.0, 25.0), help="input SNR range of the mixes")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    references, noise = split_records("train")
    validate = validation_scorer()
    output = args.output or (LOW_LATENCY_WEIGHTS if args.low_latency else WEIGHTS)
    if args.fold is not None:
        held = next(f["test_stations"] for f in protocol.load_manifest("kfold") if f["fold"] == args.fold)
        every = [e for name in protocol.SPLITS for e in protocol.load_manifest(name) if e["reference"]]
        references, validate = [e for e in every if e["station"] not in held], None
        FOLD_DIR.mkdir(parents=True, exist_ok=True)
        output = args.output or FOLD_DIR / f"fold{args.fold}.safetensors"
    recordings = [
        (protocol.read_record(e["path"], e["trace_id"])[0], int(e["onset_s"] * protocol.MODEL_RATE)) for e in references
    ]
    noise_records = [(e, protocol.read_record(e["path"], e["trace_id"])[0]) for e in noise]
    noise_records = [(e, data) for e, data in noise_records if data.size >= TRACE_SAMPLES]
    _, metadata, log = train(
        recordings,
        [e["station"] for e in references],
        [data for _, data in noise_records],
        [e["station"] for e, _ in noise_records],
        output,
        epochs=args.epochs,
        rows=args.rows,
        samples=TRACE_SAMPLES,
        learning_rate=args.learning_rate,
        snr_db=tuple(args.snr_db),
        validate=validate,
        config=LOW_LATENCY if args.low_latency else DEFAULTS,
        argv=["python", "benchmarks/train_seismic_mask.py", *(argv if argv is not None else sys.argv[1:])],
    )
    stem = "seismic_mask_low_latency" if args.low_latency else "seismic_mask"
    shipped = args.fold is None and args.output is None  # a try elsewhere keeps its log beside its model
    log_path = HERE / f"{stem}_training_log.csv" if shipped else Path(output).with_suffix(".csv")
    write_log(log, log_path, HERE / f"{stem}_training_loss.png" if shipped else None)
    print(f"kept epoch {metadata['best_epoch']} (score {metadata['validation_score']:+.2f}); {output}, log {log_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
