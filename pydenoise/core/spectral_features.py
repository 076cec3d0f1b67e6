"""What a spectral-mask model computes per frame before its network: features, noise floor and prior gain.

:class:`FeatureTracker` turns consecutive frames' spectra into the network's input (each bin's smoothed power
against its noise floor, :func:`spectral_features`) and the classical gain the network corrects (a Wiener gain
with a decision-directed a priori SNR); :class:`RunningQuantile` is the floor. Both keep their state between
calls, so a stream's chunks give the values of one offline call (:mod:`pydenoise.core.spectral`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from pydenoise.core.spectral import MaskSettings

__all__ = [
    "FEATURE_RANGE",
    "MAX_POSTERIOR_SNR",
    "PRIOR_SMOOTHING",
    "spectral_features",
    "RunningQuantile",
    "FeatureTracker",
]

#: Features are clipped to this range (log power ratios): far below the floor is as good as silence.
FEATURE_RANGE = (-4.0, 16.0)
#: The a posteriori SNR (power over noise power) is capped here: 300 dB, where every gain is already 1 - 1e-9.
MAX_POSTERIOR_SNR = 1e30
#: The decision-directed prior's smoothing over frames (Ephraim and Malah's usual value).
PRIOR_SMOOTHING = 0.98


def spectral_features(power: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
    """The network's input: ``log(power / floor)`` per bin, clipped to :data:`FEATURE_RANGE`, float32."""
    tiny = torch.finfo(power.dtype).tiny
    ratio = torch.log(power.clamp_min(tiny)) - torch.log(floor.clamp_min(tiny))
    return ratio.clamp_(*FEATURE_RANGE).to(torch.float32)


#: Values sorted at once by :class:`RunningQuantile` (a bound on its copies: 64 MiB of float64).
WINDOW_VALUES_PER_BLOCK = 1 << 23


class RunningQuantile:
    """Per channel and bin, the ``quantile`` of the last ``history`` values fed (fewer at a stream's start; the
    first ``skip`` values, the offline left padding, are never counted). Chunk sizes do not change the result.
    With a ``stride`` above 1 the quantile is of every ``stride``-th of those values, the newest included: the
    same span of time for a ``stride``-th of the work (at 48 kHz, hundreds of frames a second).

    A low quantile of recent frames is the noise floor of a bin as long as a signal occupies it less than
    ``1 - quantile`` of the time (a median rises into a coda longer than half the window): robust where a
    minimum (minimum statistics) is biased low by a factor that varies with the power's spread.

    Examples
    --------
    >>> import torch
    >>> median = RunningQuantile(history=3)
    >>> median.update(torch.tensor([[[1.0], [9.0], [5.0], [7.0]]]))[0, :, 0].tolist()
    [1.0, 1.0, 5.0, 7.0]
    """

    def __init__(self, history: int, quantile: float = 0.5, skip: int = 0, stride: int = 1):
        if history < 1 or stride < 1 or skip < 0 or not 0 < quantile < 1:
            raise ValueError(
                f"need history and stride >= 1, 0 < quantile < 1 and skip >= 0, got history={history}, "
                f"stride={stride}, quantile={quantile}, skip={skip}"
            )
        self.history, self.quantile, self.skip, self.stride = int(history), float(quantile), int(skip), int(stride)
        self._recent = None  # (channels, history - 1, bins): the values before the next ones, NaN where none

    def update(self, values: torch.Tensor) -> torch.Tensor:
        """Quantiles ``(channels, K, bins)`` at the next ``K`` values ``(channels, K, bins)``."""
        if self._recent is None:
            shape = (values.shape[0], self.history - 1, *values.shape[2:])
            self._recent = values.new_full(shape, float("nan"))
        counted = values.clone()
        skipped = min(self.skip, values.shape[1])
        counted[:, :skipped] = float("nan")
        self.skip -= skipped
        joined = torch.cat([self._recent, counted], dim=1)
        self._recent = joined[:, joined.shape[1] - self.history + 1 :]
        floors = self._window_quantiles(joined.detach())
        return torch.where(floors.isnan(), values, floors)  # nothing counted yet: the value itself

    def _window_quantiles(self, joined: torch.Tensor) -> torch.Tensor:
        """The quantile of each window of ``joined`` ``(channels, T, bins)``, NaNs not counted: the values of
        ``torch.nanquantile`` (the lower middle value for the median, as ``torch.nanmedian``).

        The windows are sorted along a contiguous axis, by numpy on the CPU: its SIMD sort of short rows is
        about 12x as fast as ``nanquantile`` over ``unfold``'s strided windows, which took 85 % of a seismic
        mask model's time. Blocks of windows bound the sorted copies' memory (an hour at 16 kHz has 360,000).
        """
        series = joined.movedim(1, -1).contiguous()  # (channels, bins, T)
        windows = series.shape[-1] - self.history + 1
        block = max(1, WINDOW_VALUES_PER_BLOCK // (series.shape[0] * series.shape[1] * self.history))
        floors = [
            self._quantiles_of_sorted(self._sorted_windows(series[..., k : k + block + self.history - 1]))
            for k in range(0, windows, block)
        ]
        return torch.cat(floors, dim=-1).movedim(-1, 1) if floors else joined[:, :0]  # (channels, K, bins)

    def _sorted_windows(self, series: torch.Tensor) -> torch.Tensor:
        """``(channels, bins, K, n)``: the values each window takes, ascending, NaNs last."""
        newest_in_step = (self.history - 1) % self.stride  # the values taken: every stride-th, the newest included
        if series.device.type != "cpu":
            return series.unfold(-1, self.history, 1)[..., newest_in_step :: self.stride].sort(-1).values
        windows = np.lib.stride_tricks.sliding_window_view(series.numpy(), self.history, axis=-1)
        return torch.from_numpy(np.sort(windows[..., newest_in_step :: self.stride], axis=-1))

    def _quantiles_of_sorted(self, ordered: torch.Tensor) -> torch.Tensor:
        last = torch.full(
            (*ordered.shape[:-1], 1), ordered.shape[-1] - 1, device=ordered.device
        )  # index of the last counted value
        uncounted = ordered[..., -1].isnan()  # only at a stream's start: counting NaNs everywhere cost 3x the sort
        if uncounted.any():
            last[uncounted] = (last[uncounted] - ordered[uncounted].isnan().sum(-1, keepdim=True)).clamp_min(0)
        if self.quantile == 0.5:
            return ordered.gather(-1, last // 2).squeeze(-1)
        rank = self.quantile * last.to(ordered.dtype)
        below = rank.floor().long()
        lower, upper = ordered.gather(-1, below), ordered.gather(-1, (below + 1).clamp_max(last))
        return torch.lerp(lower, upper, rank - below).squeeze(-1)


class FeatureTracker:
    """What the network sees of consecutive frames of a stream, and the classical gain it corrects.

    Features: each bin's power, recursively smoothed over frames (``smoothing``), against its noise floor (a
    quantile of the smoothed power over the last ``history`` frames, :class:`RunningQuantile`). Prior gain: a
    Wiener gain with the decision-directed a priori SNR of Ephraim and Malah (``prior_smoothing``), the noise
    power being ``noise_scale`` times the floor, at least ``gain_floor``. The network adds its output to the
    prior gain's logit, so an untrained correction (zero) leaves the classical filter, and it learns what that
    filter gets wrong (event onsets, spikes, spectral shapes).
    """

    def __init__(
        self,
        history: int,
        smoothing: float,
        skip: int = 0,
        noise_scale: float = 2.0,
        prior_smoothing: float = PRIOR_SMOOTHING,
        gain_floor: float = 0.05,
        floor_quantile: float = 0.5,
        floor_stride: int = 1,
    ):
        if not (0 <= smoothing < 1 and 0 <= prior_smoothing < 1 and 0 < gain_floor < 1 and noise_scale > 0):
            raise ValueError(
                "need 0 <= smoothing < 1, 0 <= prior_smoothing < 1, 0 < gain_floor < 1 and noise_scale > 0, got "
                f"smoothing={smoothing}, prior_smoothing={prior_smoothing}, gain_floor={gain_floor}, "
                f"noise_scale={noise_scale}"
            )
        self.smoothing, self.noise_scale = smoothing, noise_scale
        self.prior_smoothing, self.gain_floor = prior_smoothing, gain_floor
        self._floor = RunningQuantile(history, floor_quantile, skip=skip, stride=floor_stride)
        self._smoothed = None  # (channels, bins) of the last frame
        self._clean_power = None  # (channels, bins) the last frame's estimated clean power over the noise power

    @classmethod
    def of(cls, settings: MaskSettings, skip: int) -> FeatureTracker:
        """The tracker of a model's settings; ``skip``: frames of left padding, not counted in the floor."""
        return cls(
            settings.history,
            settings.smoothing,
            skip,
            settings.noise_scale,
            floor_quantile=settings.floor_quantile,
            floor_stride=settings.floor_stride,
        )

    def update(self, spectra: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (float32) and prior gain logits (float64), ``(channels, K, bins)`` each, of the next ``K``
        frames' spectra."""
        power = spectra.real.square() + spectra.imag.square()
        smoothed = self._recursion(power)
        floor = self._floor.update(smoothed)
        return spectral_features(smoothed, floor), self._prior_logits(power, floor)

    # The two recursions run over frames in numpy, in place: per frame, a few operations on one row of bins,
    # where each torch call's overhead cost 2.7x as much (a seismic day has 10,000 frames, 48 kHz audio 750 a
    # second). ``a + w * (b - a)`` is torch.lerp's arithmetic: the values are those of the torch loops before.
    def _recursion(self, power: torch.Tensor) -> torch.Tensor:
        values = power.numpy()
        smoothed = np.empty_like(values)
        previous = values[:, 0] if self._smoothed is None else self._smoothed
        for k in range(values.shape[1]):
            out = smoothed[:, k]
            np.subtract(previous, values[:, k], out=out)
            out *= self.smoothing
            out += values[:, k]
            previous = out
        self._smoothed = previous.copy()
        return torch.from_numpy(smoothed)

    def _prior_logits(self, power: torch.Tensor, floor: torch.Tensor) -> torch.Tensor:
        # A zero floor (a channel that starts with zeros) must not make the posterior infinite: the prior would
        # then be inf and its gain inf / inf = NaN. Capped far above any SNR that changes a gain (1 - 1e-9 at most).
        posterior = (power / (self.noise_scale * floor).clamp_min(torch.finfo(power.dtype).tiny)).clamp_max_(
            MAX_POSTERIOR_SNR
        )
        posterior = posterior.numpy()
        excess = np.maximum(posterior - 1, 0)  # the maximum-likelihood SNR of each frame
        gains = np.empty_like(posterior)
        previous = np.zeros_like(posterior[:, 0]) if self._clean_power is None else self._clean_power
        for k in range(posterior.shape[1]):
            gain = gains[:, k]
            np.subtract(previous, excess[:, k], out=gain)  # the decision-directed prior, then its Wiener gain
            gain *= self.prior_smoothing
            gain += excess[:, k]
            np.divide(gain, gain + 1, out=gain)
            np.clip(gain, self.gain_floor, 1 - 1e-9, out=gain)
            previous = gain * gain * posterior[:, k]
        self._clean_power = previous
        return torch.logit(torch.from_numpy(gains))
