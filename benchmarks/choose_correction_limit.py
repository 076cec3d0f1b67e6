"""Choose a seismic mask model's ``max_correction`` (how far its network may move a bin's gain logit from the
classical prior's) on the VALIDATION split alone; the test split is never read here.

Conditions, each the mean SNR gain at input <= 5 dB of eval_seismic_heldout.py's mixes on the validation
references and noise: the protocol's own (full band, 60 s before the onset), and short clips as 40 and 50 Hz
stations record them (nothing above their Nyquist frequency, 30 or 15 s before the onset). The limit with the
best mean over the conditions is printed last, and the table is recorded (``benchmarks/records``).

    python benchmarks/choose_correction_limit.py                  # seismic_mask
    python benchmarks/choose_correction_limit.py --model build/my_mask.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import eval_seismic_heldout as heldout  # noqa: E402
from results import markdown_table, write_record  # noqa: E402
from train_seismic_mask import validation_sources  # noqa: E402

import pydenoise  # noqa: E402
from pydenoise.core.spectral import SpectralMaskDenoiser  # noqa: E402

#: (seconds before the onset, station rate or None for the full band)
CONDITIONS = ((60.0, None), (30.0, 50.0), (30.0, 40.0), (15.0, 50.0))
LIMITS = (None, 8.0, 4.0, 2.0, 1.0, 0.0)
NAME, TITLE = "choose_correction_limit", "Seismic mask correction limit on validation (choose_correction_limit.py)"


def gains(model, references, sources) -> list[float]:
    """The mean gain at <= 5 dB in each of :data:`CONDITIONS`."""
    out = []
    for lead_s, station_rate in CONDITIONS:
        rows = heldout.evaluate(references, sources, {"m": model}, 7, True, station_rate=station_rate, lead_s=lead_s)
        out.append(heldout.mean([r for r in rows if r["snr_in"] <= 5], method="m"))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="seismic_mask", help="shipped name or .safetensors path")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    references, sources = validation_sources()
    base = pydenoise.load(args.model)
    rows, best = [], None
    for limit in LIMITS:
        model = SpectralMaskDenoiser(base.module, base.config | {"max_correction": limit})
        values = gains(model, references, sources)
        rows.append([str(limit)] + [f"{v:+.2f}" for v in values] + [f"{np.mean(values):+.3f}"])
        best = max(best or (np.mean(values), limit), (np.mean(values), limit), key=lambda item: item[0])
    header = [f"{lead:g} s, {f'{rate:g} Hz' if rate else 'full band'}" for lead, rate in CONDITIONS]
    text = (
        f"`{args.model}` on the VALIDATION split: mean SNR gain (dB) at input SNR <= 5 dB per condition (seconds "
        "of the clip before the onset, the station rate the mixes are band-limited to).\n\n"
        + markdown_table(["max_correction", *header, "mean"], rows)
        + f"\n\nBest mean: max_correction = {best[1]} ({best[0]:+.3f} dB)."
    )
    print(text)
    write_record(NAME, TITLE, text, data={"conditions": CONDITIONS, "rows": rows}, argv=argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
