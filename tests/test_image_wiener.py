"""The patch denoiser's second stage: block-DCT empirical Wiener filtering with a pilot estimate."""

import numpy as np
import pytest
import torch
from scipy.fft import dct
from skimage import data

from pydenoise import image
from pydenoise.image import wiener
from pydenoise.image.wiener import dct_matrix, empirical_wiener


def test_dct_matrix_is_scipys_orthonormal_dct():
    x = np.random.default_rng(0).normal(size=12)
    matrix = dct_matrix(12)
    assert np.allclose(matrix.numpy() @ x, dct(x, norm="ortho"))
    assert torch.allclose(matrix @ matrix.T, torch.eye(12, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("shape", [(1, 12, 12), (2, 37, 29), (3, 5, 40)])
def test_a_noiseless_pilot_keeps_every_coefficient(shape):
    noisy = torch.rand(shape, dtype=torch.float64) * 100
    assert torch.allclose(empirical_wiener(noisy, noisy, 1e-6), noisy, atol=1e-3)


def test_a_zero_pilot_removes_everything():
    noisy = torch.randn(1, 30, 30)
    assert torch.count_nonzero(empirical_wiener(noisy, torch.zeros_like(noisy), 1.0)) == 0


def test_bands_do_not_change_the_result(monkeypatch):
    noisy, pilot = torch.randn(2, 50, 41), torch.randn(2, 50, 41)
    whole = empirical_wiener(noisy, pilot, 0.5)
    monkeypatch.setattr(wiener, "BAND_BLOCKS", 20)
    assert torch.allclose(empirical_wiener(noisy, pilot, 0.5), whole, atol=1e-5)


def test_the_second_stage_improves_the_patch_dae_on_an_unseen_picture():
    clean = data.camera()[100:292, 150:342].astype(np.float64)
    noisy = clean + np.random.default_rng(1).normal(0, 25, clean.shape)

    def psnr(estimate):
        return 10 * np.log10(255.0**2 / np.mean((estimate - clean) ** 2))

    first = image.denoise(noisy, sigma=25, data_range=255, wiener=False)
    both = image.denoise(noisy, sigma=25, data_range=255)
    assert psnr(both) > psnr(first) + 0.1


def test_refusals():
    x = torch.zeros(1, 20, 20)
    with pytest.raises(ValueError, match="both be"):
        empirical_wiener(x, x[:, :10], 1.0)
    with pytest.raises(ValueError, match="positive"):
        empirical_wiener(x, x, 0.0)
    with pytest.raises(ValueError, match="stride"):
        empirical_wiener(x, x, 1.0, stride=13)
