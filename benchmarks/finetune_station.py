"""Fine-tuning on one's own station (issue #23): `pydenoise train --init seismic` on a held-out station's own
noise, and the gain on that station's own event before and after, beside the band-passes.

Stations: BW.UH1, BW.UH2 and BW.UH3 of the frozen test manifest (``seismic_manifests/test.json``: never used
for training or any choice of setting), 230 s at 50 Hz each, one regional event (onset near 29.6 s, back to
the background by about 45 s) and a second, small one near 212 s. A station here has a single event, so the
fine-tuning signal is the CLI's default (synthetic earthquakes) and only the noise is the station's own. Each
record is split in time (:data:`SPLIT_S`, seconds from its first sample), so no sample of the evaluation is
ever seen in fine-tuning:

* ``0-60 s`` evaluation clip: the clean reference (30 s before the onset, the event, its coda);
* ``60-130 s`` evaluation noise: each mix takes a random 60 s of it (the heldout protocol's ``real_noise``);
* ``130-205 s`` fine-tuning noise, written at the station's own rate (50 Hz) to a miniSEED file that
  ``pydenoise train --noise`` reads, resamples to 100 Hz and splits itself 80/20 into training and validation;
* ``205-230 s`` unused (the second event).

Both noise stretches are checked to be free of events (no STA/LTA trigger, the protocol's own detector).
The station's noise, scaled, is mixed into the clip at input SNR -5, 0 and 5 dB (``DRAWS`` mixes each), and
the shipped ``seismic`` model, the same model fine-tuned on that station, ``seismic_mask`` and the heldout
evaluation's peers (oracle and fixed 1-20 Hz band-pass, wavelet, spectral Wiener) all run on the same mixes.

    python benchmarks/finetune_station.py              # 4 fine-tuning runs (~1.5 min each on 1 thread), then the scores
    make demo-finetune
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import eval_seismic_heldout as heldout  # noqa: E402
import seismic_protocol as protocol  # noqa: E402
from eval_seismic import scores  # noqa: E402
from results import markdown_table, write_record  # noqa: E402

import pydenoise  # noqa: E402
from pydenoise.core.noise import mix  # noqa: E402

NAME, TITLE = "finetune_station", "Fine-tuning on one's own station (finetune_station.py)"
STATIONS = ("UH1", "UH2", "UH3")
SPLIT_S = {"clip": (0.0, 60.0), "evaluation noise": (60.0, 130.0), "fine-tuning noise": (130.0, 205.0)}
SNRS_DB = (-5.0, 0.0, 5.0)
DRAWS = 3
RATE = protocol.MODEL_RATE
ROOT = HERE.parent
OUTPUT_DIR = Path("build") / "finetune_station"  # under ROOT, where the fine-tuning runs (short recorded paths)
TUNED = "seismic fine-tuned"
#: The control: the same fine-tuning run on the CLI's default noise (ref_STS2, train split) instead of the
#: station's, so the table separates what the station's own noise brings from what the run's settings bring.
CONTROL = "seismic tuned on ref_STS2"
METHODS = (
    "seismic",
    TUNED,
    CONTROL,
    "seismic_mask",
    "oracle band-pass",
    "band-pass 1-20 Hz",
    "wavelet",
    "spectral Wiener",
)


def station_entry(station: str) -> dict:
    entry = next((e for e in protocol.load_manifest("test") if e["station"] == station), None)
    if entry is None or not entry["reference"]:
        raise ValueError(f"station {station!r} is not a clean reference of the test manifest")
    return entry


def stretch(data: np.ndarray, name: str) -> np.ndarray:
    start, end = SPLIT_S[name]
    return data[int(start * RATE) : int(end * RATE)]


def check_event_free(station: str, data: np.ndarray) -> None:
    """A noise stretch that holds an event would train (or score) the network on it: refuse."""
    for name in ("evaluation noise", "fine-tuning noise"):
        onset = protocol.onset_index(protocol.band(stretch(data, name)))
        if onset is not None:
            raise ValueError(f"{station}: the {name} stretch {SPLIT_S[name]} s triggers at +{onset / RATE:.1f} s")


def write_fine_tuning_noise(entry: dict, path: Path) -> None:
    """The fine-tuning stretch at the station's own rate, as a user would pass a quiet recording."""
    import obspy

    trace = obspy.read(str(protocol.obspy_root() / entry["path"])).select(id=entry["trace_id"])[0]
    start, end = SPLIT_S["fine-tuning noise"]
    part = trace.slice(trace.stats.starttime + start, trace.stats.starttime + end)
    part.data = part.data.astype(np.int32)  # the counts as recorded (SLIST reads them as int64, miniSEED wants 32)
    part.write(str(path), format="MSEED")


def fine_tune(name: str, noise_file: Path | None, args) -> tuple[pydenoise.Denoiser, float]:
    """``pydenoise train --init seismic`` as a user runs it, in a subprocess on ``args.threads`` threads
    (``noise_file`` None: the CLI's default noise); the model it wrote and the seconds it took."""
    output = OUTPUT_DIR / f"{name}.safetensors"
    command = [
        *("train", "--init", "seismic", "-o", str(output)),
        *(() if noise_file is None else ("--noise", str(noise_file))),
        *("--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps_per_epoch), "--lr", str(args.lr)),
        *("--trace-samples", str(args.trace_samples), "--seed", "0", "--no-progress"),
    ]
    environment = os.environ | {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    print("pydenoise", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pydenoise.cli", *command], check=True, env=environment, cwd=ROOT)
    return pydenoise.load(str(ROOT / output)), time.perf_counter() - started


def runs_table(runs: dict) -> str:
    """Per fine-tuning run (``runs``: name -> (model, seconds, noise)): its noise, time, and validation loss (on
    the run's own validation windows) before and after."""
    body = []
    for name, (model, seconds, noise) in runs.items():
        training = model.config["training"]
        body.append(
            [
                name,
                noise,
                f"{seconds:.0f}",
                f"{training['fine_tuned_from']['validation_loss']:.4f}",
                f"{training['validation_loss']:.4f} ({training['best_epoch']})",
            ]
        )
    return markdown_table(["run", "noise recording", "s", "validation before", "best after (epoch)"], body)


def evaluate_station(entry: dict, data: np.ndarray, models: dict, seed: int) -> list[dict]:
    clean, noise_source = stretch(data, "clip"), stretch(data, "evaluation noise")
    rng = np.random.default_rng(seed)
    rows = []
    for snr_db in SNRS_DB:
        for _ in range(DRAWS):
            noisy = mix(clean, heldout.real_noise([noise_source], clean.size, rng), snr_db)
            for method, estimate in heldout.estimates(noisy, clean, models).items():
                if method in METHODS:
                    score = scores(clean, estimate, noisy, entry["onset_s"], RATE)
                    rows.append({"station": entry["station"], "snr_in": snr_db, "method": method} | score)
    return rows


def gain_table(rows: list[dict]) -> str:
    body = []
    for station in (*STATIONS, None):
        for snr_db in (*SNRS_DB, None):
            where = {"station": station} if station else {}
            where |= {"snr_in": snr_db} if snr_db is not None else {"snr_in": lambda s: s <= 5}
            cells = [heldout.mean(rows, method=m, **where) for m in METHODS]
            label = "all" if snr_db is None else f"{snr_db:g}"
            body.append([station or "mean", label, *(f"{c:+.1f}" for c in cells)])
    return markdown_table(["station", "input dB", *METHODS], body)


def correlation_table(rows: list[dict]) -> str:
    body = []
    for snr_db in SNRS_DB:
        values = [
            np.mean([r["correlation"] for r in rows if r["snr_in"] == snr_db and r["method"] == m]) for m in METHODS
        ]
        body.append([f"{snr_db:g}", *(f"{v:.3f}" for v in values)])
    return markdown_table(["input dB", *METHODS], body)


def summary_rows(rows: list[dict]) -> list[dict]:
    gains = {m: heldout.mean(rows, method=m) for m in METHODS}
    above = [
        s
        for s in STATIONS
        if heldout.mean(rows, station=s, method=TUNED) > heldout.mean(rows, station=s, method="oracle band-pass")
    ]
    return [
        {
            "domain": "seismic",
            "measure": f"fine-tuning on one's own station: mean SNR gain at input SNR -5/0/5 dB, {len(STATIONS)} "
            "held-out stations' own event in their own noise",
            "ours": f"{gains[TUNED]:+.1f} dB (`seismic` fine-tuned) / {gains['seismic']:+.1f} dB (as shipped)",
            "peer": f"{gains['spectral Wiener']:+.1f} dB (spectral Wiener) / {gains['oracle band-pass']:+.1f} dB "
            f"(oracle band-pass) / {gains['band-pass 1-20 Hz']:+.1f} dB (fixed 1-20 Hz)",
            "note": "`pydenoise train --init seismic --noise` on a disjoint stretch of each station's recording; "
            f"above the oracle band-pass on {len(above)}/{len(STATIONS)} stations",
        }
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int, default=250)
    parser.add_argument("--lr", type=float, default=3e-4, help="the shipped model's last stage used 3e-4")
    parser.add_argument(
        "--trace-samples",
        type=int,
        default=1500,
        help="training traces (100 Hz): the CLI validation part of the 75 s stretch",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each fine-tuning run")
    parser.add_argument("--no-write", action="store_true", help="print only; write no record")
    args = parser.parse_args(argv)
    problems = protocol.verify()
    if problems:
        print("\n".join(problems))
        return 1
    (ROOT / OUTPUT_DIR).mkdir(parents=True, exist_ok=True)
    shipped = {name: pydenoise.load(name) for name in ("seismic", "seismic_mask")}
    runs = {CONTROL: (*fine_tune("control_ref_STS2", None, args), "ObsPy ref_STS2 (the CLI's default)")}
    rows = []
    for index, station in enumerate(STATIONS):
        entry = station_entry(station)
        data, _ = protocol.read_record(entry["path"], entry["trace_id"])
        check_event_free(station, data)
        noise_file = OUTPUT_DIR / f"{station}_fine_tuning_noise.mseed"
        write_fine_tuning_noise(entry, ROOT / noise_file)
        runs[station] = (*fine_tune(station, noise_file, args), f"`{noise_file}`")
        models = shipped | {TUNED: runs[station][0], CONTROL: runs[CONTROL][0]}
        rows += evaluate_station(entry, data, models, seed=index)
    commands = {name: model.config["training"]["command"] for name, (model, *_) in runs.items()}
    split = "; ".join(f"{name} {start:g}-{end:g} s" for name, (start, end) in SPLIT_S.items())
    text = "\n".join(
        [
            f"Held-out test stations {', '.join('BW.' + s for s in STATIONS)} (50 Hz, one regional event each). "
            f"Each record split in time: {split} (the 25 s after that hold a second event and are unused). "
            "Fine-tuning: the station's own noise, the CLI's default synthetic events (a station has one event), "
            f"{args.epochs} x {args.steps_per_epoch} steps, lr {args.lr:g}, {args.threads} thread(s); the control "
            f"(`{CONTROL}`) is the same run on the CLI's default noise:",
            "",
            *(f"- `{command}`" for command in commands.values()),
            "",
            runs_table(runs),
            "",
            f"Mean SNR gain (dB) over {DRAWS} mixes per station and input SNR (each a random 60 s of the evaluation "
            "noise); the oracle band-pass knows the clean record.",
            "",
            gain_table(rows),
            "",
            "Mean correlation with the clean record, all stations:",
            "",
            correlation_table(rows),
        ]
    )
    print(text)
    if not args.no_write:
        write_record(
            NAME,
            TITLE,
            text,
            data={"rows": rows, "split_s": SPLIT_S, "commands": commands},
            summary=summary_rows(rows),
            argv=argv,
            packages=("obspy",),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
