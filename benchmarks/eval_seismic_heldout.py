"""Seismic quality on the frozen held-out test set (benchmarks/seismic_manifests/, see seismic_protocol.py).

For every clean reference of the TEST manifest (own SNR >= 20 dB, stations never used for training or any
choice of setting), five noise families are mixed in at input SNR -5, 0, 5, 10 and 20 dB over the whole record
(the 10 and 20 dB bins count only references whose own SNR is at least bin + 10 dB):

* ``ambient``: real recordings of test-split stations that are not references, a random stretch;
* ``microseism``: Gaussian noise shaped to the 0.1-0.5 Hz microseism peak over a 1/f^2 floor;
* ``cultural``: 5-30 Hz band noise with a slow (traffic-like) amplitude modulation and two machine tones;
* ``spikes``: sparse spikes and decaying glitches over a weak white floor;
* ``mixture``: the four above at equal energy.

Methods, all on the same mixes: the shipped models (``pydenoise.load(name)`` for each of ``MODELS``), the
spectral Wiener filter (the best non-learned method tried, :func:`spectral_wiener`), the oracle band-pass (the best
4-pole zero-phase Butterworth of a grid from 0.01 Hz to near Nyquist, chosen per mix with the clean record),
a fixed 1-20 Hz band-pass, wavelet thresholding, and the fixed band-pass followed by wavelet thresholding.
Metrics: SNR gain, correlation, P-pick shift (ObsPy's AIC picker around the manifest's onset, on clean and
estimate), relative peak-amplitude error. A k-fold figure repeats the <= 5 dB gains over leave-stations-out
folds of all references (``seismic`` was trained on synthetic events and ``ref_STS2`` noise only, so it runs
as shipped; ``seismic_mask`` runs each fold's own model, see :func:`kfold`).

    python benchmarks/eval_seismic_heldout.py            # a few minutes; writes the record
    make eval-seismic
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfiltfilt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import seismic_protocol as protocol  # noqa: E402
from eval_seismic import scores, wavelet_denoise  # noqa: E402
from results import markdown_table, write_record  # noqa: E402

import pydenoise  # noqa: E402
from pydenoise.core.metrics import snr  # noqa: E402
from pydenoise.core.spectral import SpectralMaskDenoiser  # noqa: E402

NAME, TITLE = "eval_seismic_heldout", "Seismic denoising on the frozen held-out test set (eval_seismic_heldout.py)"
MODELS = ("seismic_mask", "seismic_mask_low_latency", "seismic")  # the spectral-mask models, the time-domain nlDAE
#: The models trained on the train split's references: in the k-fold figure each fold runs its own, or none.
TRAINED_ON_REFERENCES = ("seismic_mask", "seismic_mask_low_latency")
SNRS_DB = (-5.0, 0.0, 5.0, 10.0, 20.0)
FAMILIES = ("ambient", "microseism", "cultural", "spikes", "mixture")
METHODS = (*MODELS, "oracle band-pass", "band-pass 1-20 Hz", "wavelet", "band-pass + wavelet", "spectral Wiener")
RATE = protocol.MODEL_RATE
FOLD_DIR = HERE.parent / "build" / "seismic_mask_folds"  # the k-fold models (train_seismic_mask.py --fold K)
MAX_SECONDS = 290.0
LOWS = (None, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 4.0)
HIGHS = (0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 20.0, 30.0, 40.0, None)


def butterworth(data: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    if low is None:
        sos = butter(4, high, "lowpass", fs=RATE, output="sos")
    elif high is None:
        sos = butter(4, low, "highpass", fs=RATE, output="sos")
    else:
        sos = butter(4, (low, high), "bandpass", fs=RATE, output="sos")
    return sosfiltfilt(sos, data)


def oracle_bandpass(noisy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    best, best_snr = noisy, snr(clean, noisy)
    for low in LOWS:
        for high in HIGHS:
            if (low is None and high is None) or (high is not None and (high >= 0.45 * RATE or (low or 0) >= high)):
                continue
            candidate = butterworth(noisy, low, high)
            value = snr(clean, candidate)
            if value > best_snr:
                best, best_snr = candidate, value
    return best


def spectral_wiener(noisy: np.ndarray, frame: int = 512, hop: int = 64, history_s: float = 60.0) -> np.ndarray:
    """The best non-learned method tried: a short-time Wiener filter (Ephraim-Malah decision-directed a priori
    SNR, smoothing 0.98, gain floor 0.05) whose noise power per bin is twice the median power over a centred
    ``history_s`` window over ln 2 (the median of an exponential variable is ln 2 times its mean). Settings
    chosen on the validation split. Offline: it looks ``history_s / 2`` ahead."""
    from scipy.ndimage import percentile_filter
    from scipy.signal import istft, stft

    _, _, spectra = stft(noisy, fs=RATE, nperseg=frame, noverlap=frame - hop, boundary="even", padded=True)
    power = np.abs(spectra) ** 2
    span = max(1, int(history_s * RATE / hop))
    noise = 2 * percentile_filter(power, 50, size=(1, span), mode="nearest") / np.log(2)
    posterior = power / np.maximum(noise, np.finfo(float).tiny)
    gains, previous = np.empty_like(power), np.zeros(power.shape[0])
    for k in range(power.shape[1]):
        prior = 0.98 * previous + 0.02 * np.maximum(posterior[:, k] - 1, 0)
        gains[:, k] = np.maximum(prior / (1 + prior), 0.05)
        previous = gains[:, k] ** 2 * posterior[:, k]
    _, out = istft(spectra * gains, fs=RATE, nperseg=frame, noverlap=frame - hop, boundary=True)
    return out[: noisy.size]


def coloured(rng, n: int, gain) -> np.ndarray:
    """Gaussian noise with the amplitude spectrum ``gain(frequency)``."""
    spectrum = np.fft.rfft(rng.standard_normal(n)) * gain(np.fft.rfftfreq(n, 1 / RATE))
    return np.fft.irfft(spectrum, n)


def synthetic_noise(family: str, n: int, rng) -> np.ndarray:
    t = np.arange(n) / RATE
    if family == "microseism":
        return coloured(rng, n, lambda f: np.exp(-0.5 * ((f - 0.2) / 0.08) ** 2) + 0.02 / np.maximum(f, 0.02))
    if family == "cultural":
        band = coloured(rng, n, lambda f: ((f > 5) & (f < 30)).astype(float))
        traffic = 1 + 0.8 * np.sin(2 * np.pi * t / rng.uniform(20, 60) + rng.uniform(0, 2 * np.pi))
        tones = sum(np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi)) for f0 in (12.5, 25.0))
        return band / band.std() * traffic + 0.5 * tones
    if family == "spikes":
        noise = 0.05 * rng.standard_normal(n)
        for start in rng.choice(n, size=max(1, n // 1500), replace=False):
            noise[start] += rng.standard_t(2) * 5
        for start in rng.choice(n, size=max(1, n // 6000), replace=False):
            length = min(n - start, int(2 * RATE))
            noise[start : start + length] += rng.normal(0, 3) * np.exp(-np.arange(length) / (0.3 * RATE))
        return noise
    raise ValueError(f"unknown synthetic family {family!r}")


def real_noise(sources: list[np.ndarray], n: int, rng) -> np.ndarray:
    long_enough = [s for s in sources if s.size >= n]
    if not long_enough:
        raise ValueError(f"no test noise recording holds {n / RATE:.0f} s")
    source = long_enough[rng.integers(len(long_enough))]
    start = rng.integers(source.size - n + 1)
    segment = source[start : start + n]
    return butterworth(segment - segment.mean(), 0.01, None)  # the recordings' DC drift is not part of the test


def noise_of(family: str, n: int, sources: list[np.ndarray], rng) -> np.ndarray:
    if family == "ambient":
        return real_noise(sources, n, rng)
    if family == "mixture":
        parts = [noise_of(f, n, sources, rng) for f in ("ambient", "microseism", "cultural", "spikes")]
        return sum(p / np.sqrt(np.mean(p**2)) for p in parts)
    return synthetic_noise(family, n, rng)


def estimates(noisy: np.ndarray, clean: np.ndarray, models: dict, only_models: bool = False) -> dict[str, np.ndarray]:
    ours = {name: model.denoise(noisy) for name, model in models.items()}
    if only_models:
        return ours
    fixed = butterworth(noisy, 1.0, 20.0)
    return ours | {
        "oracle band-pass": oracle_bandpass(noisy, clean),
        "band-pass 1-20 Hz": fixed,
        "wavelet": wavelet_denoise(noisy),
        "band-pass + wavelet": wavelet_denoise(fixed),
        "spectral Wiener": spectral_wiener(noisy),
    }


def band_limited(rows: np.ndarray, station_rate: float) -> np.ndarray:
    """``(count, samples)`` rows at :data:`RATE` as a ``station_rate`` station's trace reaches the models:
    resampled to the station's rate and back with :func:`scipy.signal.resample_poly`, as ``denoise_array``
    upsamples (nothing above the station's Nyquist frequency)."""
    ratio = Fraction(station_rate / RATE).limit_denominator(1000)
    down = resample_poly(rows, ratio.numerator, ratio.denominator, axis=1)
    return resample_poly(down, ratio.denominator, ratio.numerator, axis=1)[:, : rows.shape[1]]


def cropped(ref: dict, lead_s: float = 60.0) -> tuple[np.ndarray, float]:
    """The reference from ``lead_s`` before its onset, at most ``MAX_SECONDS`` long (the noise recordings'
    length), and its onset in that stretch (s)."""
    clean, _ = protocol.read_record(ref["path"], ref["trace_id"])
    start = max(0, int((ref["onset_s"] - lead_s) * RATE))
    return clean[start : start + int(MAX_SECONDS * RATE)], ref["onset_s"] - start / RATE


def evaluate(
    references: list[dict],
    sources: list[np.ndarray],
    models: dict,
    seed: int = 0,
    only_models: bool = False,
    station_rate: float | None = None,
    lead_s: float = 60.0,
) -> list[dict]:
    """One row per reference, family, input SNR and method (``models``: name -> model; only theirs if
    ``only_models``). ``station_rate``: every mix as a station at that rate records it (nothing above its
    Nyquist frequency); ``lead_s``: the seconds before the onset (a short clip); both for validation
    conditions (``choose_correction_limit.py``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for ref in references:
        clean, onset = cropped(ref, lead_s)
        for family in FAMILIES:
            for snr_db in SNRS_DB:
                if snr_db >= 10 and ref["own_snr_db"] < snr_db + 10:
                    continue  # the bin rule: the reference's own noise would dominate
                noise = noise_of(family, clean.size, sources, rng)
                if station_rate is not None:
                    clean, noise = band_limited(np.stack([cropped(ref, lead_s)[0], noise]), station_rate)
                noise *= np.sqrt(np.sum(clean**2) / np.sum(noise**2) / 10 ** (snr_db / 10))
                noisy = clean + noise
                for method, estimate in estimates(noisy, clean, models, only_models).items():
                    score = scores(clean, estimate, noisy, onset, RATE)
                    rows.append(
                        {"station": ref["station"], "family": family, "snr_in": snr_db, "method": method} | score
                    )
    return rows


def mean(rows, **where) -> float:
    values = [r["snr_gain"] for r in rows if all(r[k] == v if not callable(v) else v(r[k]) for k, v in where.items())]
    return float(np.mean(values)) if values else float("nan")


def gain_table(rows: list[dict]) -> str:
    body = []
    for family in FAMILIES:
        for snr_db in SNRS_DB:
            cells = [mean(rows, family=family, snr_in=snr_db, method=m) for m in METHODS]
            if not np.isnan(cells[0]):
                body.append([family, f"{snr_db:g}", *(f"{c:+.1f}" for c in cells)])
    return markdown_table(["noise", "input dB", *METHODS], body)


def target_lines(rows: list[dict], folds: list[dict], model: str) -> list[str]:
    low = [r for r in rows if r["snr_in"] <= 5]
    ours, oracle = mean(low, method=model), mean(low, method="oracle band-pass")
    families_above = [
        f for f in FAMILIES if mean(low, family=f, method=model) > mean(low, family=f, method="oracle band-pass")
    ]
    stations = sorted({r["station"] for r in rows})
    above_fixed = [
        s for s in stations if mean(rows, station=s, method=model) > mean(rows, station=s, method="band-pass 1-20 Hz")
    ]
    zero = [r for r in rows if r["snr_in"] == 0 and r["method"] == model]
    shifts = [abs(r["pick_shift"]) for r in rows if r["method"] == model and np.isfinite(r["pick_shift"])]
    harm = [r for r in rows if r["snr_in"] == 20 and r["method"] == model]
    fold_gains = [f[model] for f in folds if np.isfinite(f[model])]
    fold_oracle = [f["oracle band-pass"] for f in folds]
    return [
        f"`{model}`:",
        f"- mean SNR gain at input <= 5 dB: {ours:+.1f} dB, oracle band-pass {oracle:+.1f} dB "
        f"(target >= +8 dB and above the oracle in every family: above it in {len(families_above)}/{len(FAMILIES)}"
        f"{': ' + ', '.join(families_above) if families_above else ''})",
        f"- above the fixed 1-20 Hz band-pass (mean over all mixes) on {len(above_fixed)}/{len(stations)} test "
        "references",
        f"- correlation at 0 dB: {np.mean([r['correlation'] for r in zero]):.3f} (target >= 0.9); median P-pick "
        f"shift {np.median(shifts):.3f} s (target <= 0.05 s)",
        "- do no harm at 20 dB: "
        + (
            f"worst change {min(r['snr_gain'] for r in harm):+.2f} dB over {len(harm)} mixes"
            if harm
            else "no test reference has the own SNR >= 30 dB the 20 dB bin needs"
        ),
        f"- k-fold (leave-stations-out, {len(folds)} folds over all references; {len(fold_gains)} with a model), "
        + (
            f"mean gain at <= 5 dB: {np.mean(fold_gains):+.1f} ± {np.std(fold_gains):.1f} dB, oracle band-pass "
            f"{np.mean(fold_oracle):+.1f} ± {np.std(fold_oracle):.1f} dB"
            if fold_gains
            else "not run: no fold models are trained for it"
        ),
    ]


def summary_rows(rows: list[dict], references: int) -> list[dict]:
    """The README's seismic line: mean gain at input <= 5 dB, ours against the oracle and the fixed band-pass."""
    low = [r for r in rows if r["snr_in"] <= 5]
    gains = {m: mean(low, method=m) for m in (*MODELS, "oracle band-pass", "band-pass 1-20 Hz", "spectral Wiener")}
    return [
        {
            "domain": "seismic",
            "measure": f"mean SNR gain at input SNR <= 5 dB, frozen held-out test set ({references} records, "
            f"{len(FAMILIES)} noise families)",
            "ours": " / ".join(f"{gains[m]:+.1f} dB (`{m}`)" for m in MODELS),
            "peer": f"{gains['oracle band-pass']:+.1f} dB (oracle band-pass) / {gains['spectral Wiener']:+.1f} dB "
            f"(spectral Wiener) / {gains['band-pass 1-20 Hz']:+.1f} dB (fixed 1-20 Hz)",
            "note": "held out by station (benchmarks/seismic_manifests); the oracle knows the clean record; "
            "target +8 dB and above the oracle (#23) not met",
        }
    ]


def kfold(models: dict, sources: list[np.ndarray]) -> list[dict]:
    """Mean gains at input <= 5 dB per leave-stations-out fold. ``seismic`` saw no reference in training, so it
    runs as shipped; the mask models were trained on the train split's references, so each fold runs its own
    ``seismic_mask``, trained without the fold's stations (``train_seismic_mask.py --fold K``); a missing one,
    and every fold of the low-latency model (no fold models are trained for it), is NaN."""
    references = [e for name in protocol.SPLITS for e in protocol.load_manifest(name) if e["reference"]]
    folds = []
    for fold in protocol.load_manifest("kfold"):
        held = [e for e in references if e["station"] in fold["test_stations"]]
        path = FOLD_DIR / f"fold{fold['fold']}.safetensors"
        fold_models = {name: model for name, model in models.items() if name not in TRAINED_ON_REFERENCES}
        if path.is_file():  # with the shipped model's settings made after training (its correction limit)
            trained = pydenoise.load(str(path))
            limit = {"max_correction": models["seismic_mask"].settings.max_correction}
            fold_models["seismic_mask"] = SpectralMaskDenoiser(trained.module, trained.config | limit)
        rows = [r for r in evaluate(held, sources, fold_models, seed=100 + fold["fold"]) if r["snr_in"] <= 5]
        folds.append({"fold": fold["fold"], **{m: mean(rows, method=m) for m in METHODS}})  # NaN: not run
    return folds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only; write no record")
    args = parser.parse_args(argv)
    problems = protocol.verify()
    if problems:
        print("\n".join(problems))
        return 1
    test = protocol.load_manifest("test")
    references = [e for e in test if e["reference"]]
    sources = [protocol.read_record(e["path"], e["trace_id"])[0] for e in test if not e["reference"]]
    models = {name: pydenoise.load(name) for name in MODELS}
    rows = evaluate(references, sources, models)
    folds = kfold(models, sources)
    listing = ", ".join(f"{e['station']} ({e['rate_hz']:g} Hz, {e['frequency_class']})" for e in references)
    text = "\n".join(
        [
            f"Models {', '.join(f'`{m}`' for m in MODELS)}; {len(references)} test references: {listing}. Mean SNR "
            "gain (dB) per noise family and input SNR; the oracle band-pass knows the clean record.",
            "",
            gain_table(rows),
            "",
            "Latency of a stream (s, plus up to one hop of buffering): "
            + ", ".join(f"`{name}` {model.stream().latency / RATE:.2f}" for name, model in models.items()),
            "",
            *(line for model in MODELS for line in target_lines(rows, folds, model)),
        ]
    )
    print(text)
    if not args.no_write:
        write_record(
            NAME,
            TITLE,
            text,
            data={"rows": rows, "folds": folds},
            summary=summary_rows(rows, len(references)),
            argv=argv,
            packages=("obspy",),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
