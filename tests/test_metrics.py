"""pydenoise.core.metrics image metrics against scikit-image with the same settings."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from pydenoise.core import metrics


@pytest.fixture(scope="module")
def camera():
    return data.camera()[::4, ::4]  # 128×128 uint8


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(img.dtype)


def test_psnr_matches_skimage(camera):
    estimate = noisy(camera, 20)
    assert metrics.psnr(camera, estimate) == pytest.approx(peak_signal_noise_ratio(camera, estimate), abs=1e-9)
    ref, est = camera / 255.0, estimate / 255.0
    assert metrics.psnr(ref, est, data_range=1.0) == pytest.approx(
        peak_signal_noise_ratio(ref, est, data_range=1.0), abs=1e-9
    )


def test_psnr_of_unit_range_data_needs_the_unit_range(camera):
    # The seeds' mistake: MAX=255 on [0, 1] data inflates PSNR by 20·log10(255) = 48.13 dB.
    ref, est = camera / 255.0, noisy(camera, 20) / 255.0
    wrong = metrics.psnr(ref, est, data_range=255.0) - metrics.psnr(ref, est, data_range=1.0)
    assert wrong == pytest.approx(48.13, abs=0.01)
    with pytest.raises(ValueError, match="data_range is required"):
        metrics.psnr(ref, est)
    with pytest.raises(ValueError, match="data_range is required"):
        metrics.ssim(ref, est)


def test_ssim_matches_skimage_gray(camera):
    estimate = noisy(camera, 25)
    expected = structural_similarity(
        camera, estimate, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert metrics.ssim(camera, estimate) == pytest.approx(expected, abs=1e-9)
    ref, est = camera / 255.0, estimate / 255.0
    expected = structural_similarity(
        ref, est, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert metrics.ssim(ref, est, data_range=1.0) == pytest.approx(expected, abs=1e-9)


def test_ssim_matches_skimage_colour():
    astronaut = data.astronaut()[::8, ::8]
    estimate = noisy(astronaut, 15)
    expected = structural_similarity(
        astronaut,
        estimate,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    assert metrics.ssim(astronaut, estimate, channel_axis=-1) == pytest.approx(expected, abs=1e-9)


def test_identical_images(camera):
    assert metrics.psnr(camera, camera) == float("inf")
    assert metrics.ssim(camera, camera) == pytest.approx(1.0)


def test_metric_errors(camera):
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(camera, camera[1:])
    with pytest.raises(ValueError, match="data_range must be a positive"):
        metrics.psnr(camera, camera, data_range=0)
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(camera[:8, :8], camera[:8, :8])
    with pytest.raises(ValueError, match="finite"):
        metrics.psnr(np.full((4, 4), np.nan), np.zeros((4, 4)), data_range=1.0)
