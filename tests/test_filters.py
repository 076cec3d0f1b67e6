"""pydenoise.image filters against OpenCV, scipy.ndimage and a numpy reference, plus input handling and errors.

Exactness is checked on small images (the kernels' vector bodies, row ends and narrow rows are all hit by
widths like 37 and 45); CUDA results are compared with the CPU ones where a GPU is present.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from pydenoise import image
from pydenoise.core import filter_ops

CV_BORDERS = {
    "reflect101": cv2.BORDER_REFLECT_101,
    "reflect": cv2.BORDER_REFLECT,
    "replicate": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
}
SCIPY_MODES = {
    "reflect101": "mirror",
    "reflect": "reflect",
    "replicate": "nearest",
    "wrap": "wrap",
    "constant": "constant",
}
NUMPY_PAD = {
    "reflect101": "reflect",
    "reflect": "symmetric",
    "replicate": "edge",
    "wrap": "wrap",
    "constant": "constant",
}
BORDERS = list(SCIPY_MODES)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def gray(rng):
    return rng.random((37, 45), dtype=np.float32)


@pytest.fixture(scope="module")
def gray_u8(rng):
    return rng.integers(0, 256, (37, 45), dtype=np.uint8)


def windows(img: np.ndarray, kh: int, kw: int, border: str, cval: float = 0.0) -> np.ndarray:
    """(H, W, kh, kw) windows of a 2-D image padded by numpy: the reference for every border and size."""
    pad = ((kh // 2, kh // 2), (kw // 2, kw // 2))
    kwargs = {"constant_values": cval} if border == "constant" else {}
    padded = np.pad(img.astype(np.float64), pad, mode=NUMPY_PAD[border], **kwargs)
    return sliding_window_view(padded, (kh, kw))


def max_error(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# --------------------------------------------------------------------------------------------------------
# float32 exactness against OpenCV and scipy


@pytest.mark.parametrize("border", list(CV_BORDERS))
def test_box_gaussian_convolve_equal_opencv(gray, border, rng):
    cb = CV_BORDERS[border]
    assert max_error(image.box(gray, (3, 7), border), cv2.blur(gray, (7, 3), borderType=cb)) <= 1e-5
    assert (
        max_error(
            image.gaussian(gray, 1.7, ksize=11, border=border), cv2.GaussianBlur(gray, (11, 11), 1.7, borderType=cb)
        )
        <= 1e-5
    )
    assert (
        max_error(
            image.gaussian(gray, (0.8, 2.0), ksize=(5, 13), border=border),
            cv2.GaussianBlur(gray, (13, 5), sigmaX=2.0, sigmaY=0.8, borderType=cb),
        )
        <= 1e-5
    )
    kernel = rng.standard_normal((5, 3))
    assert (
        max_error(
            image.convolve(gray, kernel, border), cv2.filter2D(gray, -1, kernel.astype(np.float32), borderType=cb)
        )
        <= 1e-5
    )


def test_gaussian_default_size_is_opencvs(gray, gray_u8):
    for sigma in (0.6, 1.1, 2.0):
        assert max_error(image.gaussian(gray, sigma), cv2.GaussianBlur(gray, (0, 0), sigma)) <= 1e-5
        # uint8: OpenCV's smaller (±3 sigma) default window, and the same for torch input.
        assert max_error(image.gaussian(gray_u8, sigma), cv2.GaussianBlur(gray_u8, (0, 0), sigma)) <= 1
        expected = torch.from_numpy(image.gaussian(gray_u8, sigma))
        assert torch.equal(image.gaussian(torch.from_numpy(gray_u8)[None, None], sigma)[0, 0], expected)


@pytest.mark.parametrize("border", BORDERS)
def test_separable_and_convolve_equal_scipy(gray, border, rng):
    mode = SCIPY_MODES[border]
    assert (
        max_error(
            image.box(gray, 5, border, cval=0.3),
            ndimage.uniform_filter(gray.astype(np.float64), 5, mode=mode, cval=0.3),
        )
        <= 1e-5
    )
    ky, kx = image.gaussian_kernel(1.3, 9), image.gaussian_kernel(1.3, 7)
    expected = ndimage.correlate(gray.astype(np.float64), np.outer(ky, kx), mode=mode, cval=0.3)
    assert max_error(image.gaussian(gray, 1.3, ksize=(9, 7), border=border, cval=0.3), expected) <= 1e-5
    kernel = rng.standard_normal((3, 5))
    expected = ndimage.correlate(gray.astype(np.float64), kernel, mode=mode, cval=0.3)
    assert max_error(image.convolve(gray, kernel, border, cval=0.3), expected) <= 1e-5 * np.abs(kernel).sum()


# --------------------------------------------------------------------------------------------------------
# median


@pytest.mark.parametrize("ksize", [3, 5, 7])
def test_median_uint8_bit_exact_opencv(gray_u8, ksize):
    np.testing.assert_array_equal(image.median(gray_u8, ksize, "replicate"), cv2.medianBlur(gray_u8, ksize))


@pytest.mark.parametrize("ksize", [3, 5])
def test_median_float_bit_exact_opencv(gray, ksize):
    np.testing.assert_array_equal(image.median(gray, ksize, "replicate"), cv2.medianBlur(gray, ksize))


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("ksize", [3, 5, 7, 9])
def test_median_equals_scipy(gray, gray_u8, border, ksize):
    mode = SCIPY_MODES[border]
    np.testing.assert_array_equal(
        image.median(gray, ksize, border, cval=0.5), ndimage.median_filter(gray, ksize, mode=mode, cval=0.5)
    )
    np.testing.assert_array_equal(
        image.median(gray_u8, ksize, border), ndimage.median_filter(gray_u8, ksize, mode=mode)
    )


# --------------------------------------------------------------------------------------------------------
# bilateral


@pytest.mark.parametrize("border", ["reflect101", "reflect", "replicate"])
@pytest.mark.parametrize(("d", "sigma_color", "sigma_space"), [(5, 0.1, 2.0), (9, 0.3, 3.0), (7, 1.0, 1.0)])
def test_bilateral_equals_opencv(gray, border, d, sigma_color, sigma_space):
    expected = cv2.bilateralFilter(gray, d, sigma_color, sigma_space, borderType=CV_BORDERS[border])
    assert max_error(image.bilateral(gray, d, sigma_color, sigma_space, border), expected) <= 1e-3 * np.ptp(gray)


def test_bilateral_colour_is_l1_like_opencv(rng):
    colour = rng.random((29, 41, 3), dtype=np.float32)
    expected = cv2.bilateralFilter(colour, 5, 0.2, 2.0)
    assert max_error(image.bilateral(colour, 5, 0.2, 2.0, channel_axis=-1), expected) <= 1e-3


def test_bilateral_default_diameter_and_uint8(gray_u8, rng):
    # d=None is OpenCV's d <= 0 rule (radius round(1.5 sigma_space)); uint8 is within 1 level of OpenCV's.
    expected = cv2.bilateralFilter(gray_u8, -1, 30.0, 2.0)
    assert max_error(image.bilateral(gray_u8, None, 30.0, 2.0), expected) <= 1
    colour = rng.integers(0, 256, (29, 41, 3), dtype=np.uint8)
    assert (
        max_error(image.bilateral(colour, 5, 40.0, 2.0, channel_axis=-1), cv2.bilateralFilter(colour, 5, 40.0, 2.0))
        <= 1
    )


@pytest.mark.parametrize("border", BORDERS)
def test_bilateral_uint8_is_the_float_result_rounded(gray_u8, border):
    got = image.bilateral(gray_u8, 7, 30.0, 2.0, border, cval=40)
    expected = image.bilateral(gray_u8.astype(np.float32), 7, 30.0, 2.0, border, cval=40)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.clip(np.rint(expected), 0, 255))


# --------------------------------------------------------------------------------------------------------
# uint8, layouts, devices


@pytest.mark.parametrize("border", list(CV_BORDERS))
def test_uint8_box_bit_exact_opencv(gray_u8, border):
    # Exact integer window sums, rounded once: the same as OpenCV's, for every window shape.
    for ksize in [(5, 5), (3, 3), (3, 7), (1, 9), (15, 17)]:
        expected = cv2.blur(gray_u8, ksize[::-1], borderType=CV_BORDERS[border])
        np.testing.assert_array_equal(image.box(gray_u8, ksize, border), expected)


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape", [(1, 1), (2, 37), (4, 3), (23, 40)])
def test_uint8_box_equals_rounded_window_means(shape, border, rng):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    for ksize in [(7, 5), (3, 17)]:
        expected = np.rint(windows(img, *ksize, border, cval=77).mean(axis=(-2, -1)))
        np.testing.assert_array_equal(image.box(img, ksize, border, cval=77), expected)


def test_uint8_gaussian_sharpen_round_like_opencv(gray_u8):
    # OpenCV's uint8 paths are fixed-point; ours are float32 then rounded: at most one level apart.
    assert max_error(image.gaussian(gray_u8, 1.5, ksize=9), cv2.GaussianBlur(gray_u8, (9, 9), 1.5)) <= 1
    out = image.sharpen(gray_u8)
    assert out.dtype == np.uint8
    assert max_error(out, cv2.filter2D(gray_u8, -1, image.SHARPEN_KERNEL.astype(np.float32))) <= 1


def test_layouts_and_dtypes(rng):
    colour = rng.random((20, 30, 3))  # float64, H×W×C
    out = image.gaussian(colour, 1.0, channel_axis=-1)
    assert out.dtype == np.float64 and out.shape == colour.shape
    planes = [image.gaussian(colour[..., c], 1.0) for c in range(3)]
    assert max_error(out, np.stack(planes, axis=-1)) <= 1e-6
    first = np.moveaxis(colour, -1, 0).copy()
    assert max_error(image.gaussian(first, 1.0, channel_axis=0), np.moveaxis(out, -1, 0)) <= 1e-6
    batch = torch.from_numpy(rng.random((2, 3, 16, 24), dtype=np.float32))
    result = image.median(batch, 3)
    assert isinstance(result, torch.Tensor) and result.shape == batch.shape and result.dtype == torch.float32
    assert torch.equal(result[1, 2], torch.from_numpy(image.median(batch[1, 2].numpy(), 3)))


def test_sharpen_amplifies_white_noise_29_times(rng):
    noise = rng.standard_normal((256, 256)).astype(np.float32)
    ratio = image.sharpen(noise, "wrap").var() / noise.var()
    assert 27 < ratio < 31


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (4, 3), (2, 2)])
def test_windows_larger_than_the_image(shape, border, rng):
    img = rng.random(shape, dtype=np.float32)
    k = 7
    win = windows(img, k, k, border, cval=0.4)
    assert max_error(image.box(img, k, border, cval=0.4), win.mean(axis=(-2, -1))) <= 1e-5
    np.testing.assert_array_equal(
        image.median(img, k, border, cval=0.4), np.median(win, axis=(-2, -1)).astype(np.float32)
    )
    kernel = rng.standard_normal((k, 5))
    expected = (windows(img, k, 5, border, cval=0.4) * kernel).sum(axis=(-2, -1))
    assert max_error(image.convolve(img, kernel, border, cval=0.4), expected) <= 1e-5 * np.abs(kernel).sum()


def test_ops_pass_opcheck(rng):
    img = torch.from_numpy(rng.random((2, 1, 9, 13), dtype=np.float32))
    img_u8 = torch.from_numpy(rng.integers(0, 256, (1, 2, 9, 13), dtype=np.uint8))
    for x in (img, img_u8):
        torch.library.opcheck(
            torch.ops.pydenoise.separable_filter.default, (x, [0.25, 0.5, 0.25], [1.0], "reflect", 0.0)
        )
        torch.library.opcheck(torch.ops.pydenoise.correlate2d.default, (x, [1.0] * 9, [3, 3], "wrap", 0.0))
        torch.library.opcheck(torch.ops.pydenoise.median_filter.default, (x, 3, "replicate", 0.0))
    torch.library.opcheck(torch.ops.pydenoise.bilateral_filter.default, (img, 2, 0.5, 1.5, "reflect101", 0.0))
    torch.library.opcheck(torch.ops.pydenoise.bilateral_filter.default, (img_u8, 2, 30.0, 1.5, "wrap", 0.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("border", BORDERS)
def test_cuda_equals_cpu(dtype, border, rng):
    if dtype == torch.uint8:
        cpu = torch.from_numpy(rng.integers(0, 256, (2, 3, 45, 70), dtype=np.uint8))
    else:
        cpu = torch.from_numpy(rng.random((2, 3, 45, 70), dtype=np.float32))
    gpu = cpu.cuda()
    tol = 1 if dtype == torch.uint8 else 1e-5
    kernel = rng.standard_normal((3, 5))
    calls = [
        lambda x: image.box(x, (3, 5), border, cval=0.5),
        lambda x: image.gaussian(x, 1.5, border=border, cval=0.5),
        lambda x: image.convolve(x, kernel, border, cval=0.5),
        lambda x: image.median(x, 3, border),
        lambda x: image.median(x, 5, border),
        lambda x: image.median(x, 9, border),
        lambda x: image.bilateral(x, 7, 30.0 if dtype == torch.uint8 else 0.2, 2.0, border, cval=0.5),
    ]
    for call in calls:
        expected, got = call(cpu), call(gpu)
        assert got.device == gpu.device and got.dtype == dtype
        assert max_error(got.cpu().numpy(), expected.numpy()) <= tol * (np.abs(kernel).sum() if tol < 1 else 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_rejects_nan():
    img = torch.zeros(1, 1, 8, 8, device="cuda")
    img[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        image.gaussian(img, 1.0)


# --------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x: image.box(x, 4), ValueError, "ksize must be a positive odd"),
        (lambda x: image.box(x, -3), ValueError, "ksize must be a positive odd"),
        (lambda x: image.box(x, 0), ValueError, "ksize"),
        (lambda x: image.box(x, 3.0), TypeError, "ksize must be an integer"),
        (lambda x: image.median(x, (3, 3)), TypeError, "ksize must be an integer"),
        (lambda x: image.gaussian(x, 0.0), ValueError, "sigma must be a positive"),
        (lambda x: image.gaussian(x, -1.0), ValueError, "sigma must be a positive"),
        (lambda x: image.gaussian(x, 1.0, ksize=6), ValueError, "ksize"),
        (lambda x: image.bilateral(x, 5, 0.0, 1.0), ValueError, "sigma_color"),
        (lambda x: image.bilateral(x, 5, 1.0, -2.0), ValueError, "sigma_space"),
        (lambda x: image.bilateral(x, 4, 1.0, 1.0), ValueError, "d must be a positive odd"),
        (lambda x: image.convolve(x, np.ones((2, 3))), ValueError, "kernel.shape"),
        (lambda x: image.convolve(x, np.ones(3)), ValueError, "kernel must be 2-D"),
        (lambda x: image.box(x, 3, border="mirror"), ValueError, "border must be one of"),
        (lambda x: image.box(x[None], 3), ValueError, "channel_axis"),
        (lambda x: image.box(x[None, None], 3), ValueError, "H×W or H×W×C"),
        (lambda x: image.box(x.astype(np.int32), 3), TypeError, "uint8 or floating"),
        (lambda x: image.box(torch.from_numpy(x), 3), ValueError, "4-D"),
        (lambda x: image.median(x[:0], 3), ValueError, "empty"),
    ],
)
def test_bad_arguments_raise(gray, call, error, match):
    with pytest.raises(error, match=match):
        call(gray)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixels_raise(gray, bad):
    img = gray.copy()
    img[20, 40] = bad
    for call in (
        lambda x: image.box(x, 3),
        lambda x: image.gaussian(x, 1.0),
        lambda x: image.median(x, 3),
        lambda x: image.median(x, 9),
        lambda x: image.convolve(x, np.ones((3, 3))),
        lambda x: image.bilateral(x, 5, 0.1, 1.0),
    ):
        with pytest.raises(ValueError, match="NaN or Inf"):
            call(img)


def test_op_level_errors():
    img = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="4-D"):
        filter_ops.median_filter(img[0], 3)
    with pytest.raises(TypeError, match="float32 or uint8"):
        filter_ops.median_filter(img.double(), 3)
    with pytest.raises(ValueError, match="ksize must be a positive odd"):
        filter_ops.median_filter(img, 2)
    with pytest.raises(ValueError, match="channels"):
        filter_ops.bilateral_filter(torch.zeros(1, 5, 8, 8), 2, 1.0, 1.0)


def test_median_of_size_one_is_the_image():
    # found by tests/fuzz_cases.py: ksize=1 crashed the process (segmentation fault) in the median kernel
    from pydenoise import image

    for img in (np.arange(1, dtype=np.uint8).reshape(1, 1), np.random.default_rng(0).random((5, 7), np.float32)):
        assert np.array_equal(image.median(img, 1), img)
