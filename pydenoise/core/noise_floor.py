"""Causal noise-floor tracking: the smallest frame RMS of the last seconds (minimum statistics), per channel.

A model whose config has ``noise_floor_s`` divides each window by ``sqrt(rms · floor)`` instead of its RMS
(:func:`~pydenoise.core.frames.normalisation_scale`); :class:`NoiseFloor` tracks the floor of a stream frame by
frame, and :func:`window_floors` gives training windows cut at any offset the floors a stream would see.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["floor_history", "NoiseFloor", "window_floors"]


def floor_history(seconds: float, sample_rate: float, hop: int) -> int:
    """Frames at ``hop`` that span ``seconds`` of a :class:`NoiseFloor` history (at least one)."""
    return max(1, round(seconds * sample_rate / hop))


class NoiseFloor:
    """Causal noise-floor tracker: per channel, the smallest frame RMS over the last ``history`` frames.

    This is the minimum-statistics idea of classical speech enhancers (the quietest recent frame is noise), on
    whole frames. :meth:`update` takes the RMS of the next frames in order; feeding them in one call or in
    many gives the same floors, which is what lets a stream match offline processing. The first ``skip``
    frames (those holding the offline left padding, copies of one sample) are not counted, so they cannot
    pin the floor near zero; nor are all-zero frames (RMS 0: a gap filled with zeros, digital silence), which
    hold no noise to measure: counted, they made the floor 0, and the scale ``sqrt(rms · 0)`` zeroed the
    output for a whole history after them. A frame with no counted history gets its own RMS as floor.

    Examples
    --------
    >>> import torch
    >>> tracker = NoiseFloor(history=3)
    >>> tracker.update(torch.tensor([[5.0, 2.0, 4.0]])).tolist(), tracker.update(torch.tensor([[6.0, 7.0]])).tolist()
    ([[5.0, 2.0, 2.0]], [[2.0, 4.0]])
    """

    def __init__(self, history: int, skip: int = 0):
        if history < 1 or skip < 0:
            raise ValueError(f"history must be >= 1 and skip >= 0, got history={history}, skip={skip}")
        self.history, self.skip = int(history), int(skip)
        # An exact sliding minimum at O(1) per frame (van Herk / Gil-Werman): frames fall in blocks of
        # ``history``, so a frame's window is the tail of the previous block plus the head of its own. Keeping a
        # whole window per frame instead costs ``history`` times the memory traffic, which dominated the
        # post-filter's per-bin floors over thousands of channels.
        self._filled = 0  # frames of the current block so far
        self._head = None  # (channels, 1, ...) their minimum
        # (channels, history + 1, ...): the current block's values in [:_filled] (the suffix minima they replace
        # are no longer needed), the suffix minima of the previous block in [_filled:history], then +inf
        self._blocks = None

    def update(self, rms: torch.Tensor) -> torch.Tensor:
        """Floors ``(channels, K, ...)`` of the next ``K`` frames, given their RMS ``(channels, K, ...)`` (the
        trailing dimensions, such as frequency bins, are tracked independently)."""
        if self._blocks is None:
            channels, rest = rms.shape[0], rms.shape[2:]
            self._head = rms.new_full((channels, 1, *rest), float("inf"))
            self._blocks = rms.new_full((channels, self.history + 1, *rest), float("inf"))
        counted = torch.where(rms > 0, rms, float("inf"))
        if self.skip and rms.shape[1]:
            skipped = min(self.skip, rms.shape[1])
            counted = torch.cat([torch.full_like(rms[:, :skipped], float("inf")), counted[:, skipped:]], dim=1)
            self.skip -= skipped
        floors, done = [], 0
        while done < counted.shape[1]:
            start = self._filled
            segment = counted[:, done : done + self.history - start]
            stop = start + segment.shape[1]
            heads = running_minimum(segment, self._head)
            floors.append(torch.minimum(heads, self._blocks[:, start + 1 : stop + 1]))
            self._blocks[:, start:stop] = segment
            self._head, self._filled, done = heads[:, -1:], stop, done + segment.shape[1]
            if stop == self.history:  # the block is complete: its suffix minima serve the next one
                self._blocks[:, :stop] = running_minimum(self._blocks[:, :stop], self._blocks[:, stop:], reverse=True)
                self._head, self._filled = torch.full_like(self._head, float("inf")), 0
        return torch.minimum(torch.cat(floors, dim=1), rms) if floors else rms


def running_minimum(values: torch.Tensor, start: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """Inclusive running minimum of ``values`` along dim 1 (from the end if ``reverse``), seeded with ``start``
    (``values[:, :1]``'s shape).

    ``cummin`` costs 10-25 ns per element and a step of a Python loop a few µs: a loop over dim 1 wins once a
    step holds a few hundred elements (many channels or frequency bins).
    """
    if values[:, :1].numel() < 512:
        ordered = values.flip(1) if reverse else values
        minima = torch.minimum(ordered.cummin(dim=1).values, start)
        return minima.flip(1) if reverse else minima
    minima, previous = torch.empty_like(values), start[:, 0]
    for k in reversed(range(values.shape[1])) if reverse else range(values.shape[1]):
        previous = torch.minimum(previous, values[:, k], out=minima[:, k])
    return minima


def window_floors(signal: np.ndarray, starts: np.ndarray, window: int, hop: int, history: int) -> np.ndarray:
    """Noise floors of windows cut at ``starts`` ``(rows, count)`` from ``signal`` ``(rows, samples)``, as a
    :class:`NoiseFloor` over a stream of each row tracks them (for training windows at any offset).

    A window's floor is the smallest non-zero RMS of itself and the ``history - 1`` windows before it, ``hop``
    apart, that lie in the row (its own RMS if there is none); near the row's start the history is shorter, as
    at a stream's start.
    """
    energy = np.cumsum(np.pad(signal**2, ((0, 0), (1, 0))), axis=1)  # window energies in O(1) each
    positions = signal.shape[1] - window + 1
    rms = np.sqrt(np.maximum(energy[:, window:] - energy[:, :positions], 0.0) / window)
    earlier = starts[:, :, None] - hop * np.arange(history)  # (rows, count, history)
    candidates = rms[np.arange(signal.shape[0])[:, None, None], earlier.clip(0)]
    floors = np.where((earlier >= 0) & (candidates > 0), candidates, np.inf).min(axis=2)
    return np.minimum(floors, candidates[:, :, 0])
