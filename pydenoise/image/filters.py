"""Image filters: the classical baselines (box, Gaussian, median, bilateral, small convolutions, sharpening).

Every function takes a numpy image, ``H×W`` (grayscale) or ``H×W×C`` with ``channel_axis`` naming the colour
axis, or a torch tensor ``N×C×H×W`` (on the CPU or a GPU: the work runs on the tensor's device). The result
has the input's type, shape and dtype: uint8 in, uint8 out (rounded to nearest, saturated); float in, float
out (float64 input is filtered in float32 arithmetic). NaN or Inf in the image raises ``ValueError``.

``border`` picks how pixels outside the image are read (for a row ``abcd``):

==============  ===============  =====================================  =================
``border``      pads as          OpenCV                                 scipy.ndimage
==============  ===============  =====================================  =================
``reflect101``  ``dcb|abcd|cba`` ``BORDER_DEFAULT`` (``REFLECT_101``)   ``mirror``
``reflect``     ``cba|abcd|dcb`` ``BORDER_REFLECT``                     ``reflect``
``replicate``   ``aaa|abcd|ddd`` ``BORDER_REPLICATE``                   ``nearest``
``wrap``        ``bcd|abcd|abc`` ``BORDER_WRAP``                        ``grid-wrap``
``constant``    ``vvv|abcd|vvv`` ``BORDER_CONSTANT`` (``cval`` = v)     ``constant``
==============  ===============  =====================================  =================
"""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
import torch

from pydenoise.core import filter_ops

__all__ = [
    "BORDERS",
    "SHARPEN_KERNEL",
    "box",
    "gaussian_kernel",
    "default_gaussian_size",
    "gaussian",
    "median",
    "bilateral",
    "convolve",
    "sharpen",
]

BORDERS = ("reflect101", "reflect", "replicate", "wrap", "constant")


#: The seeds' 3×3 sharpening kernel. It boosts high frequencies: white noise comes out with 29× the variance.
SHARPEN_KERNEL = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)


class Layout:
    """How an input image maps onto the (N, C, H, W) tensor the ops take, and back."""

    def __init__(self, is_numpy: bool, dtype: torch.dtype, ndim: int, channel_axis: int | None):
        self.is_numpy = is_numpy
        self.dtype = dtype  # the caller's dtype, as a torch dtype
        self.ndim = ndim
        self.channel_axis = channel_axis

    def restore(self, out: torch.Tensor):
        """The (N, C, H, W) result in the caller's type, layout and dtype."""
        if out.dtype != self.dtype:
            out = out.to(self.dtype)
        if not self.is_numpy:
            return out
        array = out.numpy()[0]  # numpy input ran on the CPU
        return array[0] if self.ndim == 2 else np.moveaxis(array, 0, self.channel_axis)


def as_nchw(img, channel_axis: int | None) -> tuple[torch.Tensor, Layout]:
    """Convert ``img`` to a contiguous (N, C, H, W) float32 or uint8 tensor, and the layout to convert back.

    uint8 stays uint8; any float becomes float32; other dtypes are a ``TypeError``.
    """
    if isinstance(img, torch.Tensor):
        if img.dim() != 4:
            raise ValueError(f"img: a torch image must be 4-D (N, C, H, W), got shape {tuple(img.shape)}")
        if channel_axis not in (None, 1, -3):
            raise ValueError(f"img: torch images have their channels on axis 1, got channel_axis={channel_axis}")
        tensor = img
        layout = Layout(False, img.dtype, 4, 1)
    else:
        array = np.asarray(img)
        if array.dtype != np.uint8 and array.dtype.kind != "f":
            raise TypeError(f"img: expected a uint8 or floating-point image, got {array.dtype}")
        ndim = array.ndim
        if array.ndim == 2:
            if channel_axis is not None:
                raise ValueError(f"img: a 2-D image has no channel axis, got channel_axis={channel_axis}")
            array = array[None, None]
        elif array.ndim == 3:
            if channel_axis is None:
                raise ValueError("img: a 3-D image needs channel_axis (e.g. channel_axis=-1 for H×W×C colour)")
            if not -3 <= channel_axis < 3:
                raise ValueError(f"img: channel_axis {channel_axis} is out of range for a 3-D image")
            array = np.moveaxis(array, channel_axis, 0)[None]
        else:
            raise ValueError(
                f"img: a numpy image must be H×W or H×W×C (3-D with channel_axis), got shape {array.shape}"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        layout = Layout(True, tensor.dtype, ndim, None if channel_axis is None else channel_axis % 3)
    if tensor.dtype.is_floating_point:
        tensor = tensor.float()
    elif tensor.dtype != torch.uint8:
        raise TypeError(f"img: expected a uint8 or floating-point image, got {tensor.dtype}")
    if tensor.shape[-1] == 0 or tensor.shape[-2] == 0:
        raise ValueError(f"img: the image is empty (shape {tuple(img.shape)})")
    return tensor.contiguous(), layout


def _is_uint8(img) -> bool:
    return img.dtype == torch.uint8 if isinstance(img, torch.Tensor) else np.asarray(img).dtype == np.uint8


def _check_border(border: str) -> str:
    if border not in BORDERS:
        raise ValueError(f"border must be one of {', '.join(repr(b) for b in BORDERS)}, got {border!r}")
    return border


def _odd_size(value, name: str) -> int:
    """A positive odd window size: an int, or a number that is one (not a bool, not 3.5)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {value}")
    return int(value)


def _size_pair(ksize, name: str = "ksize") -> tuple[int, int]:
    """(height, width) from an int or a pair of ints."""
    if isinstance(ksize, (tuple, list)):
        if len(ksize) != 2:
            raise ValueError(f"{name} must be an int or a (height, width) pair, got {ksize!r}")
        return _odd_size(ksize[0], f"{name}[0]"), _odd_size(ksize[1], f"{name}[1]")
    size = _odd_size(ksize, name)
    return size, size


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _pair(value, name: str) -> tuple[float, float]:
    """(y, x) sigmas from a number or a pair of numbers."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be a number or a (y, x) pair, got {value!r}")
        return _positive(value[0], f"{name}[0]"), _positive(value[1], f"{name}[1]")
    return _positive(value, name), _positive(value, name)


def _filtered(img, channel_axis, run):
    """Convert ``img``, run ``run(tensor)`` on the (N, C, H, W) tensor and convert the result back."""
    tensor, layout = as_nchw(img, channel_axis)
    return layout.restore(run(tensor))


def box(img, ksize, border: str = "reflect101", *, cval: float = 0.0, channel_axis: int | None = None):
    """Mean over a ``ksize`` window (a box filter, OpenCV's ``blur``).

    Parameters
    ----------
    img : numpy.ndarray or torch.Tensor
        ``H×W``, ``H×W×C`` (with ``channel_axis``) or a torch ``N×C×H×W`` tensor; uint8 or float.
    ksize : int or (int, int)
        Odd window height and width.
    border : str
        Outside pixels: ``reflect101`` (default), ``reflect``, ``replicate``, ``wrap``, ``constant``.
    cval : float
        The outside value for ``border="constant"``.
    channel_axis : int, optional
        The colour axis of a 3-D numpy image.

    Returns
    -------
    Same type, shape and dtype as ``img``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((5, 5), np.float32); img[2, 2] = 9
    >>> box(img, 3)[1:4, 1:4]
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]], dtype=float32)
    """
    kh, kw = _size_pair(ksize)
    border = _check_border(border)
    return _filtered(
        img, channel_axis, lambda t: filter_ops.separable_filter(t, (1 / kh,) * kh, (1 / kw,) * kw, border, cval)
    )


def gaussian_kernel(sigma: float, ksize: int) -> np.ndarray:
    """The normalised 1-D Gaussian ``exp(-x² / (2 sigma²))`` on ``ksize`` taps centred on 0 (float64).

    Examples
    --------
    >>> gaussian_kernel(1.0, 3).round(4)
    array([0.2741, 0.4519, 0.2741])
    """
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2
    weights = np.exp(-0.5 * (x / sigma) ** 2)
    return weights / weights.sum()


@functools.lru_cache(maxsize=64)
def _gaussian_taps(sigma: float, ksize: int) -> tuple[float, ...]:
    # Kernels repeat from call to call (video frames, batches): building one costs more than filtering 64².
    return tuple(gaussian_kernel(sigma, ksize).tolist())


def default_gaussian_size(sigma: float, uint8: bool = False) -> int:
    """OpenCV's window when none is given: ``round(8 sigma + 1)`` made odd (±4 sigma), ``round(6 sigma + 1)``
    (±3 sigma) for uint8 images, whose 8-bit results the farther taps hardly change.

    Examples
    --------
    >>> default_gaussian_size(1.0), default_gaussian_size(2.0), default_gaussian_size(1.1)
    (9, 17, 11)
    >>> default_gaussian_size(2.0, uint8=True)
    13
    """
    return int(round((6 if uint8 else 8) * sigma + 1)) | 1


def gaussian(
    img,
    sigma,
    ksize=None,
    border: str = "reflect101",
    *,
    cval: float = 0.0,
    channel_axis: int | None = None,
):
    """Gaussian blur (separable: a vertical then a horizontal pass), OpenCV's ``GaussianBlur``.

    Parameters
    ----------
    img : numpy.ndarray or torch.Tensor
        As for :func:`box`.
    sigma : float or (float, float)
        Standard deviation in pixels, one for both axes or ``(sigma_y, sigma_x)``; must be positive.
    ksize : int or (int, int), optional
        Odd window. Default: OpenCV's rule, ``round(8 sigma + 1)`` made odd (±4 sigma) for float images,
        ``round(6 sigma + 1)`` (±3 sigma) for uint8 ones (see :func:`default_gaussian_size`).
    border, cval, channel_axis
        As for :func:`box`.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((15, 15), np.float32); img[7, 7] = 1      # an impulse: the result is the kernel
    >>> out = gaussian(img, 1.0)
    >>> round(float(out.sum()), 5), bool(out[7, 7] == out.max())
    (1.0, True)
    """
    sigma_y, sigma_x = _pair(sigma, "sigma")
    if ksize is None:
        uint8 = _is_uint8(img)
        kh, kw = default_gaussian_size(sigma_y, uint8), default_gaussian_size(sigma_x, uint8)
    else:
        kh, kw = _size_pair(ksize)
    border = _check_border(border)
    ky, kx = _gaussian_taps(sigma_y, kh), _gaussian_taps(sigma_x, kw)
    return _filtered(img, channel_axis, lambda t: filter_ops.separable_filter(t, ky, kx, border, cval))


def _checked_copy(t):
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError("median_filter: img contains NaN or Inf")
    return t.clone()


def median(img, ksize: int, border: str = "reflect101", *, cval: float = 0.0, channel_axis: int | None = None):
    """Median over a square ``ksize × ksize`` window (OpenCV's ``medianBlur`` with ``border="replicate"``).

    Windows up to 7×7 run sorting networks over vectors of pixels; larger ones select per pixel (slower).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((5, 5), 10, np.uint8); img[2, 2] = 255     # salt noise
    >>> int(median(img, 3).max())
    10
    """
    size = _odd_size(ksize, "ksize")
    border = _check_border(border)
    if size == 1:  # a 1x1 median is the image itself, refused with NaN/Inf as every ksize (the clone skipped that)
        return _filtered(img, channel_axis, _checked_copy)
    return _filtered(img, channel_axis, lambda t: filter_ops.median_filter(t, size, border, cval))


def bilateral(
    img,
    d,
    sigma_color: float,
    sigma_space: float,
    border: str = "reflect101",
    *,
    cval: float = 0.0,
    channel_axis: int | None = None,
):
    """Edge-preserving bilateral filter, with OpenCV's ``bilateralFilter`` parameters and definition.

    A neighbour at offset (dy, dx) inside the disc ``dy² + dx² ≤ (d // 2)²`` weighs
    ``exp(-(dy² + dx²) / (2 sigma_space²)) · exp(-Δ² / (2 sigma_color²))``, where Δ is the colour distance:
    ``|difference|`` for grayscale, the L1 distance (sum over the channels) for colour images (up to 4
    channels). ``sigma_color`` is in the image's units (e.g. 0–255 for uint8).

    Parameters
    ----------
    img : numpy.ndarray or torch.Tensor
        As for :func:`box`; uint8 is filtered in float32 arithmetic and rounded.
    d : int or None
        Odd diameter of the disc (≥ 3), or None for OpenCV's ``d <= 0`` rule, radius ``round(1.5 sigma_space)``
        (at least 1).
    sigma_color, sigma_space : float
        Positive.
    border, cval, channel_axis
        As for :func:`box`.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((8, 8), np.float32); img[:, 4:] = 1.0           # a step edge ...
    >>> noisy = img + np.float32(0.01) * np.cos(np.arange(64, dtype=np.float32)).reshape(8, 8)
    >>> out = bilateral(noisy, 5, sigma_color=0.1, sigma_space=2.0)
    >>> bool(np.abs(out - img).max() < 0.02)                            # ... stays sharp
    True
    """
    sigma_color = _positive(sigma_color, "sigma_color")
    sigma_space = _positive(sigma_space, "sigma_space")
    if d is None:
        radius = max(int(round(1.5 * sigma_space)), 1)
    else:
        diameter = _odd_size(d, "d")
        if diameter < 3:
            raise ValueError(f"d must be an odd diameter of at least 3 (or None), got {d}")
        radius = diameter // 2
    border = _check_border(border)
    return _filtered(
        img,
        channel_axis,
        lambda t: filter_ops.bilateral_filter(t, radius, sigma_color, sigma_space, border, cval),
    )


def convolve(img, kernel, border: str = "reflect101", *, cval: float = 0.0, channel_axis: int | None = None):
    """Filter with a small 2-D kernel (odd height and width), as OpenCV's ``filter2D``.

    Like ``filter2D`` (and ``scipy.ndimage.correlate``) the kernel is applied as it is, not flipped: the result
    is a correlation, which equals the convolution for symmetric kernels.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> convolve(img, [[0, 0, 0], [0, 0, 1], [0, 0, 0]])[0]    # each pixel takes its right neighbour
    array([1., 2., 3., 2.], dtype=float32)
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D, got shape {kernel.shape}")
    _size_pair(kernel.shape, "kernel.shape")
    if not np.isfinite(kernel).all():
        raise ValueError("kernel must be finite (no NaN or Inf)")
    largest, limit = float(np.abs(kernel).max()), float(np.finfo(np.float32).max)
    if largest > limit:  # it would become Inf in the filters' float32 arithmetic, and the image NaN
        raise ValueError(f"kernel weights must be within ±{limit:.4g} (filtered in float32), got {largest:.4g}")
    border = _check_border(border)
    return _filtered(img, channel_axis, lambda t: filter_ops.correlate2d(t, kernel, border, cval))


def sharpen(img, border: str = "reflect101", *, cval: float = 0.0, channel_axis: int | None = None):
    """The seeds' 3×3 sharpening, ``[[0,-1,0],[-1,5,-1],[0,-1,0]]``: an enhancement, **not a denoiser**.

    It adds four times the Laplacian to the image: edges get crisper, and white noise comes out with 29 times
    its variance (5² + 4·1²), so sharpening a noisy image makes it noisier. uint8 results saturate at 0/255.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[10, 10, 10, 50, 50, 50]] * 3, np.uint8)
    >>> sharpen(img)[1]
    array([10, 10,  0, 90, 50, 50], dtype=uint8)
    """
    # Not through convolve: its kernel checks cost a quarter of a 512² call, and this kernel is known good.
    border = _check_border(border)
    return _filtered(img, channel_axis, lambda t: filter_ops.correlate2d(t, SHARPEN_KERNEL, border, cval))
