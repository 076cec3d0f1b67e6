"""The local level of a trace: what is taken out of each channel before framing and added back after.

A sensor offset must not swamp the network, so each channel's level is removed first. The level is *local* and
*causal* so that the result of any sample depends on a bounded stretch of signal around it: a stream, an offline
call on the whole trace and an archive task that reads a day with some context from its neighbours all give the
same samples (the trace's mean, the previous definition, made a day's output depend on the whole year).

Definition, per channel, with blocks of ``block`` samples (the model's window) counted from the signal's first
sample and ``b_j`` the mean of block ``j``:

* ``L_0 = b_0`` (the mean of the first block; of the whole signal when it is shorter than a block), and for
  ``j >= 1`` ``L_j`` = the mean of the up to ``blocks`` complete blocks before block ``j`` (``b_max(0, j-blocks)``
  to ``b_{j-1}``): known when block ``j`` begins;
* within block ``j`` the level ramps linearly from ``L_{j-1}`` to ``L_j`` (``L_{-1} = L_0``), so it has no steps
  for the network to see: sample ``i`` of the block gets ``L_{j-1} + (L_j - L_{j-1}) · i / block``.

It is causal except for block 0, whose mean needs the first window: a stream waits for that window anyway
before any frame is complete. Every value is computed from the same samples in the same order whatever the
chunking (block sums over whole blocks, each ``L_j`` a sum over the same ``blocks`` values), so chunked and
whole-signal levels agree bit for bit. Two signals that share samples from block ``j - blocks - 1`` on (the
same block grid) share their level from block ``j`` on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_LEVEL_BLOCKS", "LocalLevel"]

#: Blocks (model windows) the level averages: 128 × 2.56 s ≈ 5.5 min for the 100 Hz seismic models, long enough
#: that the microseism (periods ≤ 20 s) stays in the signal the network sees, short enough to follow drift.
DEFAULT_LEVEL_BLOCKS = 128


class LocalLevel:
    """The local level (module docstring) of a ``(channels, samples)`` float signal fed in chunks of any size.

    ``process(chunk)`` returns the level of each of the chunk's samples, float64 ``(channels, samples)``. The
    first chunk must hold at least ``block`` samples unless it is the whole signal (block 0's mean).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12.0)[None]
    >>> whole = LocalLevel(4, 2).process(x)
    >>> level = LocalLevel(4, 2)
    >>> parts = np.concatenate([level.process(x[:, :5]), level.process(x[:, 5:7]), level.process(x[:, 7:])], axis=1)
    >>> bool((whole == parts).all()), whole[0].tolist()
    (True, [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 2.0, 2.5, 3.0])
    """

    def __init__(self, block: int, blocks: int = DEFAULT_LEVEL_BLOCKS):
        if block < 1 or blocks < 1:
            raise ValueError(f"block and blocks must be >= 1, got block={block}, blocks={blocks}")
        self.block, self.blocks = int(block), int(blocks)
        self._history = None  # (channels, blocks): the last block means, zeros before the signal's first block
        self._complete = 0  # complete blocks so far
        self._partial = None  # samples of the current, incomplete block
        self._previous = None  # L_{j-1} of the current block j
        self._current = None  # L_j of the current block j, once a chunk has been through the full computation

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float64)
        if self._history is None:
            self._begin(chunk)
        offset = self._partial.shape[1]  # where the chunk starts in the current block
        if self._current is not None and offset + chunk.shape[1] < self.block:
            return self._within_block(chunk, offset)
        joined = np.concatenate([self._partial, chunk], axis=1)
        whole = joined.shape[1] // self.block
        means = joined[:, : whole * self.block].reshape(joined.shape[0], whole, self.block).mean(axis=2)
        padded = np.concatenate([self._history, means], axis=1)
        sums = np.lib.stride_tricks.sliding_window_view(padded, self.blocks, axis=1)[:, : whole + 1].sum(axis=2)
        counts = np.minimum(self._complete + np.arange(whole + 1), self.blocks)
        levels = np.where(counts > 0, sums / np.maximum(counts, 1), self._previous[:, None])  # L_j, L_j+1, ...
        starts = np.concatenate([self._previous[:, None], levels[:, :-1]], axis=1)  # the L_{j-1} of each block
        position = np.arange(offset, joined.shape[1])
        index, within = position // self.block, (position % self.block) / self.block
        level = starts[:, index] + (levels[:, index] - starts[:, index]) * within
        self._history = padded[:, -self.blocks :]
        self._complete += whole
        self._partial = joined[:, whole * self.block :]
        self._previous = starts[:, whole]
        self._current = levels[:, whole]
        return level

    def _within_block(self, chunk: np.ndarray, offset: int) -> np.ndarray:
        """A chunk that completes no block (a stream's usual case): the current block's ramp, already known, with
        the same arithmetic as :meth:`process`'s (so the levels stay bit for bit those of any other chunking)."""
        within = np.arange(offset, offset + chunk.shape[1]) / self.block
        self._partial = np.concatenate([self._partial, chunk], axis=1)
        start = self._previous[:, None]
        return start + (self._current[:, None] - start) * within

    def _begin(self, chunk: np.ndarray) -> None:
        if chunk.ndim != 2 or chunk.shape[1] == 0:
            raise ValueError(f"the first chunk must be (channels, samples) with samples, got shape {chunk.shape}")
        self._history = np.zeros((chunk.shape[0], self.blocks))
        self._partial = chunk[:, :0]
        self._previous = chunk[:, : self.block].mean(axis=1)  # L_0 = L_{-1} = b_0
