"""Real seismic noise: the ambient-noise recordings bundled with ObsPy's test data, read in place."""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

__all__ = ["obspy_noise"]

_OBSPY_NOISE = {"ref_STS2": "signal/tests/data/ref_STS2", "ref_unknown": "signal/tests/data/ref_unknown"}


@lru_cache(maxsize=8)
def _read_obspy_noise(name: str, sample_rate: float) -> np.ndarray:
    import obspy

    path = os.path.join(os.path.dirname(obspy.__file__), _OBSPY_NOISE[name])
    trace = obspy.read(path)[0]
    trace.data = trace.data.astype(np.float64)
    trace.detrend("demean")
    if trace.stats.sampling_rate != sample_rate:
        # Explicit anti-aliased resampling (Fourier method with ObsPy's low-pass), as the caller asked.
        trace.resample(sample_rate)
    data = trace.data.astype(np.float64)
    data.setflags(write=False)
    return data


def obspy_noise(name: str = "ref_STS2", sample_rate: float = 100.0) -> np.ndarray:
    """An hour of real ambient seismic noise bundled with ObsPy, resampled to ``sample_rate``.

    ``"ref_STS2"`` (an STS-2 broadband seismometer) and ``"ref_unknown"`` (a co-located short-period sensor)
    are the 200 Hz vertical-component recordings of ObsPy's sensor-calibration tests, 2011-02-15 10:21-11:21.
    pydenoise trains its shipped model on ``ref_STS2`` and keeps ``ref_unknown`` for evaluation only.

    Returns
    -------
    numpy.ndarray
        Read-only float64 samples (counts), mean removed.

    Examples
    --------
    >>> obspy_noise("ref_STS2", 100.0).size       # doctest: +SKIP
    360000
    """
    if name not in _OBSPY_NOISE:
        raise ValueError(f"name must be one of {sorted(_OBSPY_NOISE)}, got {name!r}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return _read_obspy_noise(name, float(sample_rate))
