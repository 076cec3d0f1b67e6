"""benchmarks/bench_archive.py's quick mode: every configuration runs, its figures add up, the tables render.

The quick mode is the full benchmark's code path (archive, I/O, the plain loop, LocalClusters of 1 and 2
workers, an explicit ``dask scheduler`` + ``dask worker``) on 10-minute day files; it writes no record.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # its imports: results, make_results
    spec = importlib.util.spec_from_file_location("bench_archive", BENCHMARKS / "bench_archive.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_quick_run_measures_every_configuration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYDENOISE_RECORDS", str(tmp_path / "records"))
    data = load_benchmark(monkeypatch).main(["--quick", "--build", str(tmp_path / "build")])
    (model,) = data["models"]
    runs = model["runs"]
    assert [run["workers"] for run in runs] == [1, 1, 2, 2]
    for run in runs:
        assert run["channel_days"] == 2 and run["samples"] == 2 * 600 * 100, run  # 1 channel, 2 days of 10 min
        assert run["rate"] == run["samples"] / run["seconds"] > 0 and run["rates"] == [run["rate"]]
        stages = run["stages"]
        assert stages["read"] > 0 and stages["denoise"] > 0 and stages["write"] > 0 and stages["checksums"] > 0
        assert sum(stages.values()) <= run["seconds"] * run["workers"], run
    assert model["dry_run_rate_per_worker"] > 0
    assert data["io"]["same_data"] in (True, None)  # None: pymseed is not installed
    assert all(op["obspy_s"] > 0 for op in data["io"]["operations"])
    out = capsys.readouterr().out
    for configuration in ("(a) plain loop", "(b) LocalCluster", "(c) LocalCluster", "(d) dask scheduler"):
        assert f"| seismic | {configuration}" in out
    assert "hours for 1e+12" in out and "quick run: no record written" in out
    assert not (tmp_path / "records").exists()
