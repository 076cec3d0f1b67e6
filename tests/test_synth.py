"""pydenoise.seismic.synth: synthetic earthquakes (seeded, onsets respected, energy in the seismic band)."""

import numpy as np
import pytest

from pydenoise.seismic import synth


def test_seeded_and_shaped():
    a = synth.earthquakes(6, 1000, 100.0, rng=5)
    b = synth.earthquakes(6, 1000, 100.0, rng=np.random.default_rng(5))
    assert a.traces.shape == (6, 1000)
    np.testing.assert_array_equal(a.traces, b.traces)
    assert not np.array_equal(a.traces, synth.earthquakes(6, 1000, 100.0, rng=6).traces)


def test_nothing_arrives_before_the_p_onset_and_s_follows_p():
    batch = synth.earthquakes(200, 2000, 100.0, rng=1, event_fraction=1.0)
    assert (batch.s_onset > batch.p_onset).all()
    for trace, onset in zip(batch.traces, batch.p_onset):
        if onset > 0:
            assert not trace[: int(np.floor(onset * 100.0))].any()
        if onset < 20.0:
            assert trace.any()


def test_event_free_share():
    batch = synth.earthquakes(400, 500, 100.0, rng=2, event_fraction=0.25)
    empty = ~batch.traces.any(axis=1)
    assert empty.mean() == pytest.approx(0.75, abs=0.07)
    assert np.isnan(batch.p_onset[empty]).all() and not np.isnan(batch.p_onset[~empty]).any()


def test_energy_sits_in_the_seismic_band():
    traces = synth.earthquakes(300, 4096, 100.0, rng=3, event_fraction=1.0).traces
    traces = traces / np.sqrt(np.sum(traces**2, axis=1, keepdims=True) + 1e-300)  # each event counts once
    power = np.sum(np.abs(np.fft.rfft(traces, axis=1)) ** 2, axis=0)
    frequency = np.fft.rfftfreq(4096, 0.01)
    assert power[(frequency >= 0.02) & (frequency <= 30.0)].sum() / power.sum() > 0.95
    assert power[(frequency >= 0.5) & (frequency <= 30.0)].sum() / power.sum() > 0.65  # most events are local


def test_amplitudes_and_durations_vary():
    traces = synth.earthquakes(300, 2000, 100.0, rng=4, event_fraction=1.0).traces
    peaks = np.abs(traces).max(axis=1)
    assert peaks[peaks > 0].max() / peaks[peaks > 0].min() > 100


@pytest.mark.parametrize("kwargs", [{"count": 0}, {"samples": 1}, {"sample_rate": 0.0}, {"event_fraction": 2.0}])
def test_rejects_bad_arguments(kwargs):
    arguments = {"count": 2, "samples": 100, "sample_rate": 100.0} | kwargs
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        synth.earthquakes(**arguments)
