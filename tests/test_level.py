"""The local level: chunk-invariant bit for bit, local (a late start shares it), and the same in every path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pydenoise
from pydenoise.core.level import LocalLevel

BLOCK, BLOCKS = 256, 4


def drifting(samples: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Noise on a large offset with a drift: the level must follow it."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, samples)
    return 5000.0 + 300.0 * ramp**2 + rng.standard_normal((channels, samples)) * 20.0


def test_definition_on_a_small_case():
    x = np.concatenate([np.full(4, 1.0), np.full(4, 3.0), np.full(4, 5.0), np.full(4, 7.0)])[None]
    level = LocalLevel(4, 2).process(x)[0]
    # L_0 = L_1 = 1, L_2 = mean(1, 3) = 2, L_3 = mean(3, 5) = 4; block j ramps from L_{j-1} to L_j
    expected = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5]
    np.testing.assert_array_equal(level, expected)


def test_any_chunking_gives_the_same_bits():
    x = drifting(20_000)
    whole = LocalLevel(BLOCK, BLOCKS).process(x)
    rng = np.random.default_rng(1)
    for _ in range(10):
        cuts = np.sort(rng.integers(BLOCK, x.shape[1], rng.integers(1, 20)))
        level = LocalLevel(BLOCK, BLOCKS)
        np.testing.assert_array_equal(np.concatenate([level.process(p) for p in np.split(x, cuts, axis=1)], 1), whole)


def test_chunks_shorter_than_a_block_give_the_same_bits():
    # most such chunks complete no block: process() then only extends the known ramp (its fast path)
    x = drifting(20_000)
    whole = LocalLevel(BLOCK, BLOCKS).process(x)
    rng = np.random.default_rng(2)
    cuts = np.cumsum(rng.integers(1, BLOCK, x.shape[1] // 8))
    cuts = BLOCK + cuts[BLOCK + cuts < x.shape[1]]
    level = LocalLevel(BLOCK, BLOCKS)
    np.testing.assert_array_equal(np.concatenate([level.process(p) for p in np.split(x, cuts, axis=1)], 1), whole)


def test_a_later_start_on_the_block_grid_shares_the_level_after_its_context():
    x = drifting(20_000)
    whole = LocalLevel(BLOCK, BLOCKS).process(x)
    start = 7 * BLOCK
    late = LocalLevel(BLOCK, BLOCKS).process(x[:, start:])
    context = (BLOCKS + 1) * BLOCK
    np.testing.assert_array_equal(late[:, context:], whole[:, start + context :])
    assert not np.array_equal(late[:, :BLOCK], whole[:, start : start + BLOCK])  # before that it does not


def test_the_level_follows_drift_where_the_mean_would_not():
    x = drifting(40_000, channels=1)
    level = LocalLevel(BLOCK, BLOCKS).process(x)[0]
    trend = 5000.0 + 300.0 * np.linspace(0.0, 1.0, x.shape[1]) ** 2
    assert np.abs(level - trend)[BLOCK * BLOCKS :].max() < 15.0
    assert np.abs(x.mean() - trend).max() > 150.0


def test_a_first_chunk_shorter_than_a_block_must_be_the_whole_signal():
    x = drifting(100)
    np.testing.assert_allclose(LocalLevel(BLOCK).process(x), np.repeat(x.mean(axis=1, keepdims=True), 100, axis=1))
    with pytest.raises(ValueError, match="block and blocks"):
        LocalLevel(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_and_offline_agree_over_many_blocks(dtype):
    torch.manual_seed(0)
    model = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0, "hop": 64, "level_blocks": BLOCKS})
    x = drifting(30_000, seed=2).astype(dtype)
    stream = model.stream()
    rng = np.random.default_rng(3)
    parts, start = [], 0
    while start < x.shape[1]:
        size = int(rng.integers(0, 3000))
        parts.append(stream.process(x[:, start : start + size]))
        start += size
    got = np.concatenate(parts + [stream.flush()], axis=1)
    expected = model.denoise(x)
    assert stream.offset is None
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 if dtype == np.float64 else 2e-2)


def test_level_blocks_is_checked():
    with pytest.raises(ValueError, match="level_blocks must be an integer >= 1, got 0"):
        pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"level_blocks": 0})
