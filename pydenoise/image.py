"""Image filters: the classical baselines (box, Gaussian, median, bilateral, small convolutions, sharpening).

Every function takes a numpy image, ``H×W`` (grayscale) or ``H×W×C`` with ``channel_axis`` naming the colour
axis, or a torch tensor ``N×C×H×W`` (on the CPU or a GPU: the work runs on the tensor's device). The result
has the input's type, shape and dtype: uint8 in, uint8 out (rounded to nearest, saturated); float in, float
out (float64 input is filtered in float32 arithmetic). NaN or Inf in the image raises ``ValueError``.

The patch denoiser (:func:`denoise`, with :func:`estimate_sigma`) runs the fused DDAE kernel on overlapping
16×16 patches (see :mod:`pydenoise.patches`); float images need an explicit ``data_range`` there.
:func:`interpolate` walks the latent space of a :class:`~pydenoise.nn.ConvDAE`.

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
import warnings

import numpy as np
import torch

from pydenoise import filter_ops
from pydenoise.patches import denormalise, map_patches, normalise

__all__ = [
    "box",
    "gaussian",
    "median",
    "bilateral",
    "convolve",
    "sharpen",
    "gaussian_kernel",
    "default_gaussian_size",
    "SHARPEN_KERNEL",
    "denoise",
    "estimate_sigma",
    "interpolate",
]

BORDERS = ("reflect101", "reflect", "replicate", "wrap", "constant")

#: The seeds' 3×3 sharpening kernel. It boosts high frequencies: white noise comes out with 29× the variance.
SHARPEN_KERNEL = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)


# ----------------------------------------------------------------------------------------------------------
# Shared input/output handling (also used by the patch denoiser): numpy/torch, uint8/float, channel_axis.


class _Layout:
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


def _as_nchw(img, channel_axis: int | None) -> tuple[torch.Tensor, _Layout]:
    """Convert ``img`` to a contiguous (N, C, H, W) float32 or uint8 tensor, and the layout to convert back.

    uint8 stays uint8; any float becomes float32; other dtypes are a ``TypeError``.
    """
    if isinstance(img, torch.Tensor):
        if img.dim() != 4:
            raise ValueError(f"img: a torch image must be 4-D (N, C, H, W), got shape {tuple(img.shape)}")
        if channel_axis not in (None, 1, -3):
            raise ValueError(f"img: torch images have their channels on axis 1, got channel_axis={channel_axis}")
        tensor = img
        layout = _Layout(False, img.dtype, 4, 1)
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
            raise ValueError(f"img: a numpy image must be H×W or H×W×C (3-D with channel_axis), got shape {array.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        layout = _Layout(True, tensor.dtype, ndim, None if channel_axis is None else channel_axis % 3)
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
    tensor, layout = _as_nchw(img, channel_axis)
    return layout.restore(run(tensor))


# ----------------------------------------------------------------------------------------------------------
# Filters


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
    return _filtered(img, channel_axis, lambda t: filter_ops.separable_filter(t, (1 / kh,) * kh, (1 / kw,) * kw, border, cval))


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


# ----------------------------------------------------------------------------------------------------------
# The patch denoiser (fused DDAE kernel on 16×16 patches), noise estimate, ConvDAE latent interpolation


#: Orthonormal colour transform (luma and two opponent axes): white noise stays white with the same σ.
_OPPONENT = torch.tensor(
    [
        [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
        [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
        [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)],
    ],
    dtype=torch.float64,
)

#: Gaussian consistency constant of the median absolute deviation (MAD / 0.6745 estimates σ).
_MAD_TO_SIGMA = 0.6744897501960817


def _patch_input(img, data_range, channel_axis) -> tuple[torch.Tensor, _Layout, float]:
    """``img`` as a finite float32 (N, C, H, W) tensor, its layout, and its data range (255 for uint8)."""
    tensor, layout = _as_nchw(img, channel_axis)
    tensor = tensor.float()  # the network works on floats, uint8 included
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError("img contains NaN or Inf pixels")
    if layout.dtype == torch.uint8:
        if data_range is not None and float(data_range) != 255.0:
            raise ValueError(f"data_range must be 255 (or None) for a uint8 image, got {data_range}")
        return tensor, layout, 255.0
    if data_range is None:
        raise ValueError("data_range is required for a float image (e.g. 1.0 for 0..1 images, 255.0)")
    if not float(data_range) > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return tensor, layout, float(data_range)


def _patch_output(out: torch.Tensor, layout: _Layout):
    """Back to the caller's form; uint8 rounded and saturated."""
    if layout.dtype == torch.uint8:
        out = out.round().clamp(0, 255)
    return layout.restore(out)


def estimate_sigma(img, data_range=None, channel_axis=None) -> float:
    """Estimate the standard deviation of additive white Gaussian noise in an image.

    The finest diagonal Haar detail ``(a - b - c + d) / 2`` of each 2×2 block holds almost only noise in
    natural images; its median absolute value divided by 0.6745 estimates σ (Donoho's robust estimator).
    Colour channels share one estimate (the median over the channels).

    Parameters
    ----------
    img : numpy.ndarray or torch.Tensor
        As for :func:`denoise`; at least 2×2 pixels.
    data_range : float, optional
        Required for float images (not used by the estimate itself, but checked as everywhere else).

    Returns
    -------
    float
        σ in the image's units (0..255 for uint8).

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import data
    >>> rng = np.random.default_rng(0)
    >>> noisy = data.camera() + rng.normal(0, 20, (512, 512))
    >>> 18 < estimate_sigma(noisy, data_range=255) < 23
    True
    """
    pixels = _patch_input(img, data_range, channel_axis)[0].to(torch.float64)
    height, width = pixels.shape[-2] // 2 * 2, pixels.shape[-1] // 2 * 2
    if height == 0 or width == 0:
        raise ValueError(f"img must be at least 2×2 pixels to estimate the noise, got {tuple(pixels.shape[-2:])}")
    blocks = pixels[..., :height, :width]
    detail = (blocks[..., 0::2, 0::2] - blocks[..., 0::2, 1::2] - blocks[..., 1::2, 0::2] + blocks[..., 1::2, 1::2]) / 2
    per_channel = detail.abs().flatten(2).median(dim=2).values / _MAD_TO_SIGMA
    return float(per_channel.median())


def _load_patch_model(model):
    from pydenoise.denoiser import load

    denoiser = load(model)
    patch = math.isqrt(denoiser.window)
    if patch * patch != denoiser.window:
        raise ValueError(f"model must be a patch model with a square window (e.g. 256 = 16×16), got window "
                         f"{denoiser.window}")
    return denoiser, patch


@torch.no_grad()
def denoise(img, sigma=None, data_range=None, model="image", stride=None, channel_axis=None, device=None,
            ensemble=1):
    """Denoise an image with the patch DDAE: overlapping 16×16 patches through the fused kernel.

    Every ``stride`` pixels a 16×16 patch (16·16 = 256 values, the fused op's window) is taken, its mean
    removed and divided by the noise level σ; the noise-learning network estimates its noise, which is
    subtracted (a clean-output model's estimate is used as is); the denoised patches are scaled back,
    weighted by a Hann window and averaged where they overlap. Borders are reflect101. Colour images are
    turned into an orthonormal luma/opponent basis first (white noise stays white with the same σ), each
    channel denoised, and turned back.

    Parameters
    ----------
    img : numpy.ndarray or torch.Tensor
        ``(H, W)``, or ``(H, W, C)`` numpy array with ``channel_axis=-1``, or an ``(N, C, H, W)`` tensor;
        uint8, float32 or float64; any size.
    sigma : float, optional
        Noise standard deviation in the image's units (0..255 for uint8, 0..1 for a float image with
        ``data_range=1``). Default: :func:`estimate_sigma`.
    data_range : float, optional
        Span of valid values; implied for integer images, required for float images. The shipped model was
        trained for σ between 5/255 and 50/255 of it: far outside that range a ``RuntimeWarning`` is given.
    model : str, path or Denoiser
        A patch model: the shipped ``"image"`` (default), a ``.safetensors`` path, or a loaded one.
    stride : int, optional
        Pixels between patches, 1..16 (smaller: better and slower). Default: the model's (3).
    channel_axis : int, optional
        Channel axis of a 3-D numpy image (required for one, as in the image filters).
    device : str or torch.device, optional
        Where to compute. Default: the tensor's device, or the CPU for numpy input.
    ensemble : int
        Self-ensemble size, 1, 2, 4 or 8: the image is denoised in that many of its 8 flips and rotations
        (:data:`DIHEDRAL`, in that order) and the results, turned back, averaged. Each costs one more pass,
        for little: with the shipped model, 8 passes gain about 0.03 dB on Set12 at σ = 15, 25 and 50
        (σ = 25: 28.82 → 28.85 dB), the patches overlapping every 3 pixels already average most of what
        the transforms would. Hence the default of 1.

    Returns
    -------
    Same type, shape and dtype as ``img`` (uint8 rounded and clipped; float unclipped).

    Examples
    --------
    >>> import numpy as np, pydenoise
    >>> from skimage import data
    >>> rng = np.random.default_rng(0)
    >>> clean = data.camera().astype(float)
    >>> noisy = clean + rng.normal(0, 25, clean.shape)
    >>> out = pydenoise.image.denoise(noisy, sigma=25, data_range=255)
    >>> pydenoise.metrics.psnr(clean, out, data_range=255) > 28.5
    True
    """
    tensor, layout, data_range = _patch_input(img, data_range, channel_axis)
    denoiser, patch = _load_patch_model(model)
    stride = _check_stride(denoiser.config.get("stride", 3) if stride is None else stride, patch)
    transforms = DIHEDRAL[: _check_ensemble(ensemble)]
    sigma = estimate_sigma(img, data_range, channel_axis) if sigma is None else _check_sigma(sigma)
    _warn_outside_training(sigma, data_range, denoiser.config)
    if sigma == 0:
        return _patch_output(tensor, layout)
    pixels = tensor.to(torch.device(device) if device is not None else tensor.device)
    module = denoiser.module_on(pixels.device)

    def denoise_patches(patches: torch.Tensor) -> torch.Tensor:
        z, mean = normalise(patches, sigma)  # the same normalisation as in training
        return denormalise(module.clean(z), mean, sigma)

    out = torch.empty_like(pixels)
    for n in range(pixels.shape[0]):
        channels = _to_opponent(pixels[n]) if pixels.shape[1] == 3 else pixels[n]
        runs = (undo(map_patches(do(channels), denoise_patches, stride, patch)) for do, undo in transforms)
        denoised = sum(runs) / len(transforms)
        out[n] = _from_opponent(denoised) if pixels.shape[1] == 3 else denoised
    return _patch_output(out.to(tensor.device), layout)


def _dihedral(rotations: int, flip: bool):
    """``(forward, inverse)`` of: flip left-right (if ``flip``), then rotate by ``rotations`` quarter turns."""

    def forward(image: torch.Tensor) -> torch.Tensor:
        return torch.rot90(image.flip(-1) if flip else image, rotations, dims=(-2, -1))

    def inverse(image: torch.Tensor) -> torch.Tensor:
        image = torch.rot90(image, -rotations, dims=(-2, -1))
        return image.flip(-1) if flip else image

    return forward, inverse


#: The 8 symmetries of the square as ``(forward, inverse)`` pairs, in the order :func:`denoise` takes them for
#: its self-ensemble: identity, half turn, left-right flip, up-down flip, then the four that swap the axes.
#: Each prefix of 2 or 4 is a group, so the ensemble is symmetric: its result commutes with those transforms.
DIHEDRAL = tuple(_dihedral(rotations, flip) for rotations, flip in
                 ((0, False), (2, False), (0, True), (2, True), (1, False), (3, False), (1, True), (3, True)))

ENSEMBLE_SIZES = (1, 2, 4, 8)


def _check_ensemble(ensemble) -> int:
    if isinstance(ensemble, bool) or not isinstance(ensemble, (int, np.integer)):
        raise TypeError(f"ensemble must be an integer (1, 2, 4 or 8), got {type(ensemble).__name__}")
    if ensemble not in ENSEMBLE_SIZES:
        raise ValueError(f"ensemble must be 1, 2, 4 or 8 (flips and rotations averaged), got {ensemble}")
    return int(ensemble)


def _check_stride(stride, patch: int) -> int:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
        raise TypeError(f"stride must be an integer, got {type(stride).__name__}")
    if not 1 <= stride <= patch:
        raise ValueError(f"stride must lie in 1..{patch} (the patch side), got {stride}")
    return int(stride)


def _check_sigma(sigma) -> float:
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a finite, non-negative noise level, got {sigma}")
    return sigma


def _warn_outside_training(sigma: float, data_range: float, config: dict) -> None:
    low, high = config.get("sigma_range_255", (5.0, 50.0))
    relative = sigma / data_range * 255.0
    if sigma > 0 and not 0.5 * low <= relative <= 1.5 * high:
        warnings.warn(
            f"sigma = {sigma:g} is {relative:.3g}/255 of data_range {data_range:g}; the model was trained for "
            f"{low:g}..{high:g}/255: expect poorer results (is data_range right?)",
            RuntimeWarning,
            stacklevel=3,
        )


def _to_opponent(rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("oc,chw->ohw", _OPPONENT.to(rgb), rgb)


def _from_opponent(opponent: torch.Tensor) -> torch.Tensor:
    return torch.einsum("oc,ohw->chw", _OPPONENT.to(opponent), opponent)


@torch.no_grad()
def interpolate(a, b, steps: int, model, data_range=None, channel_axis=None):
    """Walk the latent space of a convolutional autoencoder from image ``a`` to image ``b``.

    Both images are encoded, their codes mixed linearly, ``(1 - t) z_a + t z_b`` for ``steps`` values of
    ``t`` from 0 to 1, and each mixture decoded: the seeds' latent-space interpolation.

    Parameters
    ----------
    a, b : numpy.ndarray or torch.Tensor
        Two images of the same shape and dtype, as for :func:`denoise` (one image each).
    steps : int
        Number of images along the path (at least 2; the first and last decode ``a`` and ``b``).
    model : pydenoise.nn.ConvDAE or str or path
        A trained ConvDAE (e.g. from ``pydenoise train --images DIR``) or its ``.safetensors`` file.
    data_range : float, optional
        Required for float images; pixels are divided by it to reach the network's [0, 1].

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(steps, *a.shape)`` in ``a``'s dtype.

    Examples
    --------
    >>> import torch
    >>> from skimage.data import lfw_subset
    >>> from pydenoise.nn import ConvDAE
    >>> faces = lfw_subset()
    >>> net = ConvDAE(variant="batchnorm", latent=16, size=(25, 25)).eval()
    >>> interpolate(faces[0], faces[1], 5, net, data_range=1.0).shape
    (5, 25, 25)
    """
    from pydenoise.nn import ConvDAE, load_model

    net = model if isinstance(model, ConvDAE) else load_model(model)[0]
    if not isinstance(net, ConvDAE):
        raise ValueError(f"model must be a ConvDAE or a ConvDAE file, got a {type(net).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    first, layout, scale = _patch_input(a, data_range, channel_axis)
    second, other, _ = _patch_input(b, data_range, channel_axis)
    if first.shape != second.shape or layout.dtype != other.dtype or first.shape[0] != 1:
        raise ValueError(f"a and b must be single images of the same shape and dtype, got "
                         f"{tuple(first.shape)} {layout.dtype} and {tuple(second.shape)} {other.dtype}")
    if first.shape[1] != net.config["channels"]:
        raise ValueError(f"the images have {first.shape[1]} channels, the model {net.config['channels']}")
    device = next(net.parameters()).device
    pair = torch.cat([first, second]).to(device) / scale
    net.eval()
    codes = net.encode(pair)
    t = torch.linspace(0, 1, steps, device=device).view(-1, *[1] * (codes.dim() - 1))
    path = net.decode((1 - t) * codes[:1] + t * codes[1:], pair.shape[-2:]) * scale
    frames = [_patch_output(image[None].to(first.device), layout) for image in path]
    return np.stack(frames) if layout.is_numpy else torch.cat(frames)
