"""The frozen held-out protocol for seismic quality figures (issue #23): which real records exist, which of
them are clean references, and how they are split.

Every record is a trace bundled with an installed package (ObsPy's test data): nothing is downloaded. Each is
read, resampled explicitly to the model rate (100 Hz) and measured:

* **onset**: the first time ObsPy's recursive STA/LTA (1 s / 10 s) of the band-passed trace exceeds 4;
  none: the record is noise only;
* **own SNR**: the energy of the event window (``EVENT_S`` seconds from the onset, shorter if the record ends)
  against an equally long window ending 1 s before the onset, both in the evaluation band ``BAND_HZ``;
* **frequency class**: the dominant frequency of the event window: local (> 5 Hz), regional (1-5 Hz),
  teleseismic (< 1 Hz) -- a stand-in for the distance, which the files do not carry.

A record is a **clean reference** when its own SNR is at least 20 dB. Records are split **by station**
(never by window): every station goes to train, validation or test by a hash of its code, so a station's
records never straddle two splits. Real test noise comes only from test-split stations that are not references
(noise-only records and records below the reference SNR, used whole); the shipped model's training noise is
``ref_STS2`` (train split). ``kfold.json`` holds leave-stations-out folds over all references.

    python benchmarks/seismic_protocol.py --write    # re-derives and writes benchmarks/seismic_manifests/
    python benchmarks/seismic_protocol.py            # prints the inventory and checks the frozen manifests

The manifests are frozen: rewriting them is a change of protocol and needs a reason in the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

MODEL_RATE = 100.0
BAND_HZ = (0.5, 25.0)
EVENT_S = 20.0
REFERENCE_SNR_DB = 20.0
MANIFEST_DIR = Path(__file__).resolve().parent / "seismic_manifests"
SPLITS = ("train", "validation", "test")
FOLDS = 4

#: (file relative to ObsPy's package, trace id): every real vertical (or single-component) seismometer
#: record of at least 30 s at 20-200 Hz among ObsPy's bundled data, one channel per station and file.
#: Left out: synthetic or engineered test files (libmseed's XX.TEST, endianness copies), infrasound
#: (IM.I59H1), lunar data (XA.S14/S15), one-minute snippets of FDSN examples already covered by longer ones.
CANDIDATES = (
    ("signal/tests/data/BW.UH1._.SHZ.D.2010.147.cut.slist.gz", "BW.UH1..SHZ"),
    ("signal/tests/data/BW.UH2._.SHZ.D.2010.147.cut.slist.gz", "BW.UH2..SHZ"),
    ("signal/tests/data/BW.UH3._.SHZ.D.2010.147.cut.slist.gz", "BW.UH3..SHZ"),
    ("signal/tests/data/BW.UH4._.EHZ.D.2010.147.cut.slist.gz", "BW.UH4..EHZ"),
    ("signal/tests/data/CRLZ.HHZ.10.NZ.SAC", "NZ.CRLZ.10.HHZ"),
    ("signal/tests/data/ref_STS2", "CA.STS2..EHZ"),
    ("signal/tests/data/ref_unknown", "CA.0438..EHZ"),
    ("signal/tests/data/timingquality.mseed", "BW.BGLD..EHE"),
    ("realtime/tests/data/II.TLY.BHZ.SAC", "II.TLY.00.BHZ"),
    ("clients/fdsn/tests/data/dataselect_example.mseed", "IU.ANMO.00.BHZ"),
    ("clients/fdsn/tests/data/dataselect_example_wildcards.mseed", "IU.ADK.00.BHZ"),
    ("clients/fdsn/tests/data/dataselect_example_wildcards.mseed", "IU.AFI.00.BHZ"),
    ("clients/fdsn/tests/data/dataselect_example_wildcards.mseed", "IU.ANTO.00.BHZ"),
    ("io/mseed/tests/data/test.mseed", "NL.HGN.00.BHZ"),
    ("io/mseed/tests/data/bizarre/mseed_no_blkt_1000.mseed", ".GRA1..BHZ"),
    ("io/mseed/tests/data/1T_MONN_00_EDH.mseed", "1T.MONN.00.EDH"),
    ("io/mseed/tests/data/wrong_blockette_numbers_specified.mseed", "SK.MODS..HHZ"),
    ("io/dmx/tests/data/131114_090600.dmx", "ETNA.EMFO..Z"),
    ("io/dmx/tests/data/131114_090600.dmx", "ETNA.EMPL..Z"),
    ("io/seisan/tests/data/2005-07-23-1452-04S.CER___030", ".CER..BHZ"),
    ("io/seisan/tests/data/D1360930.203", ".mart.1.cp"),
    ("io/seisan/tests/data/2011-09-06-1311-36S.A1032_001BH_Z", "XX.A1032..BHZ"),
    ("io/seisan/tests/data/90010319.1320J90", ".JMI..S Z"),
    ("io/seisan/tests/data/90010319.1320J90", ".JNW..S Z"),
    ("io/seisan/tests/data/90010319.1320J90", ".JNE..S Z"),
    ("io/seisan/tests/data/2001-01-13-1742-24S.KONO__004", ".KONO.0.B0Z"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBGA.J.SBZ"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBLG.J.S Z"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBRY.J.S Z"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBGE.J.SBZ"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBGH.J.SBZ"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBWH.J.S Z"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBBE.J.SBZ"),
    ("io/seisan/tests/data/9701-30-1048-54S.MVO_21_1", ".MBGB.J.SBZ"),
    ("io/gse2/tests/data/boa___00_07a.gse", "abcdef.BBOA..CPZ"),
    ("io/gse2/tests/data/loc_RJOB20050831023349.z", ".RJOB..Z"),
    ("io/gse2/tests/data/loc_RNON20040609200559.z", ".RNON..Z"),
    ("io/nied/tests/data/test.knet", "BO.AKT013..EW"),
    ("io/y/tests/data/YAYT_BHZ_20021223.124800", ".AYT..BHZ"),
    ("io/y/tests/data/YAZRSPE.20100119.060433", ".AZR.SP.E"),
    ("io/xseed/tests/data/arclink_full.seed", "GR.FUR..BHE"),
    (None, "BW.RJOB..EHZ"),  # obspy.read()'s example
)
#: The shipped model's training noise: its station is in train whatever the hash says.
TRAINING_STATIONS = ("STS2",)


def obspy_root() -> Path:
    import obspy

    return Path(obspy.__file__).parent


def sha256(relative: str | None) -> str:
    """Checksum of the bundled file (``obspy.read()``'s example: of ObsPy's own copy of it)."""
    path = obspy_root() / (relative or "core/data/example.npz")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_record(relative: str | None, trace_id: str) -> tuple[np.ndarray, float]:
    """The trace as float64 at the model rate (mean removed; resampled explicitly) and its original rate."""
    import obspy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some bundled headers trigger harmless ObsPy warnings
        stream = obspy.read() if relative is None else obspy.read(str(obspy_root() / relative))
    selected = stream.select(id=trace_id)
    if len(selected) == 0:
        raise ValueError(f"trace {trace_id!r} is not in {relative or 'obspy.read()'}")
    selected.merge(fill_value=None)
    trace = max(selected[0].split(), key=lambda t: t.stats.npts)  # the longest gap-free segment
    rate = float(trace.stats.sampling_rate)
    trace.data = trace.data.astype(np.float64)
    trace.detrend("demean")
    if rate != MODEL_RATE:
        trace.resample(MODEL_RATE)
    return np.asarray(trace.data), rate


def band(data: np.ndarray) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    return sosfiltfilt(butter(4, BAND_HZ, "bandpass", fs=MODEL_RATE, output="sos"), data)


def onset_index(filtered: np.ndarray) -> int | None:
    from obspy.signal.trigger import recursive_sta_lta

    sta, lta = int(1 * MODEL_RATE), int(10 * MODEL_RATE)
    if filtered.size < 2 * lta:
        return None
    ratio = recursive_sta_lta(filtered, sta, lta)
    ratio[:lta] = 0  # the LTA is still warming up
    above = np.flatnonzero(ratio > 4.0)
    return int(above[0]) if above.size else None


def measure(relative: str | None, trace_id: str) -> dict:
    """Rate, duration, onset, own SNR and frequency class of one candidate."""
    data, rate = read_record(relative, trace_id)
    filtered = band(data)
    entry = {
        "path": relative,
        "trace_id": trace_id,
        "station": trace_id.split(".")[1],
        "rate_hz": rate,
        "seconds": round(data.size / MODEL_RATE, 2),
        "sha256": sha256(relative),
    }
    onset = onset_index(filtered)
    pre_end = None if onset is None else onset - int(MODEL_RATE)
    if onset is None or pre_end < 5 * MODEL_RATE:
        return entry | {"onset_s": None, "own_snr_db": None, "frequency_class": "noise"}
    length = min(int(EVENT_S * MODEL_RATE), data.size - onset, pre_end)
    event, pre = filtered[onset : onset + length], filtered[pre_end - length : pre_end]
    spectrum = np.abs(np.fft.rfft(event * np.hanning(length))) ** 2
    dominant = float(np.fft.rfftfreq(length, 1 / MODEL_RATE)[np.argmax(spectrum)])
    kind = "local" if dominant > 5 else "regional" if dominant >= 1 else "teleseismic"
    own = 10 * np.log10(np.sum(event**2) / max(np.sum(pre**2), 1e-300))
    return entry | {
        "onset_s": round(onset / MODEL_RATE, 2),
        "own_snr_db": round(float(own), 1),
        "dominant_hz": round(dominant, 2),
        "frequency_class": kind,
    }


def split_of(station: str) -> str:
    if station in TRAINING_STATIONS:
        return "train"
    # Deterministic and blind to the records' content: a hash of the station code. 40 % test, 20 % validation.
    bucket = int(hashlib.sha256(station.encode()).hexdigest(), 16) % 10
    return "test" if bucket < 4 else "validation" if bucket < 6 else "train"


def is_reference(entry: dict) -> bool:
    return entry["own_snr_db"] is not None and entry["own_snr_db"] >= REFERENCE_SNR_DB


def derive() -> dict[str, list[dict]]:
    """The inventory, split: ``{"train": [...], "validation": [...], "test": [...]}`` plus ``"kfold"``."""
    entries = [measure(path, trace_id) for path, trace_id in CANDIDATES]
    for entry in entries:
        entry["split"] = split_of(entry["station"])
        entry["reference"] = is_reference(entry)
    manifests = {name: [e for e in entries if e["split"] == name] for name in SPLITS}
    stations = sorted({e["station"] for e in entries if e["reference"]})
    manifests["kfold"] = [
        {"fold": k, "test_stations": stations[k::FOLDS]} for k in range(FOLDS)
    ]  # every reference station held out once
    return manifests


def load_manifest(name: str) -> list[dict]:
    return json.loads((MANIFEST_DIR / f"{name}.json").read_text())


def verify() -> list[str]:
    """Problems with the frozen manifests on this installation (checksums, splits): empty when all is well."""
    problems, seen = [], {}
    for name in SPLITS:
        for entry in load_manifest(name):
            if sha256(entry["path"]) != entry["sha256"]:
                problems.append(f"{name}: {entry['path']} changed (sha256 differs from the manifest)")
            if seen.setdefault(entry["station"], name) != name:
                problems.append(f"station {entry['station']} is in both {seen[entry['station']]} and {name}")
    return problems


def print_inventory(manifests: dict) -> None:
    print(f"{'split':10} {'station':8} {'trace':18} {'rate':>6} {'s':>6} {'class':12} {'own SNR':>8} reference")
    for name in SPLITS:
        for e in manifests[name]:
            own = "-" if e["own_snr_db"] is None else f"{e['own_snr_db']:.1f}"
            ref = "yes" if e["reference"] else ""
            print(
                f"{name:10} {e['station']:8} {e['trace_id']:18} {e['rate_hz']:6g} {e['seconds']:6.0f} "
                f"{e['frequency_class']:12} {own:>8} {ref}"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="re-derive and write the manifests (a protocol change)")
    args = parser.parse_args(argv)
    if args.write:
        manifests = derive()
        MANIFEST_DIR.mkdir(exist_ok=True)
        for name, content in manifests.items():
            (MANIFEST_DIR / f"{name}.json").write_text(json.dumps(content, indent=1) + "\n")
    else:
        manifests = {name: load_manifest(name) for name in SPLITS}
    print_inventory(manifests)
    problems = verify()
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
