"""Learned image denoising: the patch DDAE on the fused kernel, noise-level estimation, and ConvDAE latent walks.

The patch denoiser (:func:`denoise`, with :func:`estimate_sigma`) runs the fused DDAE kernel on overlapping
16×16 patches (see :mod:`pydenoise.image.patches`); float images need an explicit ``data_range``. Images take
the layouts of :mod:`pydenoise.image.filters`. :func:`interpolate` walks the latent space of a
:class:`~pydenoise.core.nn.ConvDAE`.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch

from pydenoise.image.filters import Layout, as_nchw
from pydenoise.image.patches import denormalise, map_patches, normalise
from pydenoise.image.wiener import empirical_wiener

__all__ = ["estimate_sigma", "denoise", "interpolate"]

#: Orthonormal colour transform (luma and two opponent axes): white noise stays white with the same σ.
_OPPONENT = torch.tensor(
    [
        [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
        [1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)],
        [1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)],
    ],
    dtype=torch.float64,
)


#: Side of the patches of the noise-level estimate (:func:`estimate_sigma`) and the pixels between them.
_NOISE_PATCH, _NOISE_STRIDE = 7, 2
#: Rounds of weak-texture patch selection in :func:`estimate_sigma` (Liu et al. iterate 3 times).
_NOISE_ROUNDS = 3
#: Probability that a patch of pure noise passes the weak-texture test (Liu et al.'s 1 - 1e-6).
_NOISE_CONFIDENCE = 1 - 1e-6


def _patch_input(img, data_range, channel_axis) -> tuple[torch.Tensor, Layout, float]:
    """``img`` as a finite float32 (N, C, H, W) tensor, its layout, and its data range (255 for uint8)."""
    tensor, layout = as_nchw(img, channel_axis)
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


def _patch_output(out: torch.Tensor, layout: Layout):
    """Back to the caller's form; uint8 rounded and saturated."""
    if layout.dtype == torch.uint8:
        out = out.round().clamp(0, 255)
    return layout.restore(out)


def estimate_sigma(img, data_range=None, channel_axis=None) -> float:
    """Estimate the standard deviation of additive white Gaussian noise in an image.

    The weak-texture patch method of Liu, Tanaka and Okutomi ("Single-image noise level estimation for blind
    denoising", IEEE TIP 2013): the noise variance is the smallest eigenvalue of the covariance of 7×7
    patches, taken over the patches whose summed squared gradients are no larger than pure noise of that
    variance would give (a Gamma quantile); the selection and the estimate are refined in turn. Textured
    patches, whose covariance has no noise-only direction, are left out, so a textured picture is not taken
    for a noisy one (the finest wavelet details are: on scikit-image's ``grass`` at σ = 5 their median absolute
    value reads 2.6 σ, this estimate 1.3 σ). Colour images are estimated per channel of the orthonormal
    luma/opponent basis, which keeps white noise's σ; the median of the three is returned.

    Parameters
    ----------
    img : numpy.ndarray or torch.Tensor
        As for :func:`denoise`; at least 14×14 pixels.
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
    >>> 19 < estimate_sigma(noisy, data_range=255) < 21
    True
    """
    pixels = _patch_input(img, data_range, channel_axis)[0].to(torch.float64)
    if min(pixels.shape[-2:]) < 2 * _NOISE_PATCH:
        raise ValueError(
            f"img must be at least {2 * _NOISE_PATCH}×{2 * _NOISE_PATCH} pixels to estimate the noise (enough "
            f"{_NOISE_PATCH}×{_NOISE_PATCH} patches for their covariance), got {tuple(pixels.shape[-2:])}"
        )
    planes = [plane for image in pixels for plane in (_to_opponent(image) if image.shape[0] == 3 else image)]
    return float(np.median([_plane_noise_sigma(plane) for plane in planes]))


def _plane_noise_sigma(plane: torch.Tensor) -> float:
    """Liu et al.'s weak-texture estimate of σ on one ``(H, W)`` plane (see :func:`estimate_sigma`)."""
    import torch.nn.functional as F

    size, stride = _NOISE_PATCH, _NOISE_STRIDE
    image = plane.to(torch.float32)[None, None]  # float32 patches, float64 covariance: half the copying
    patches = F.unfold(image, size, stride=stride)[0]
    across = ((image[..., :, 2:] - image[..., :, :-2]) / 2) ** 2  # central differences inside the patches
    down = ((image[..., 2:, :] - image[..., :-2, :]) / 2) ** 2
    texture = F.unfold(across, (size, size - 2), stride=stride)[0].sum(0)
    texture += F.unfold(down, (size - 2, size), stride=stride)[0].sum(0)
    threshold = _texture_threshold()
    variance = _smallest_eigenvalue(patches)
    for _ in range(_NOISE_ROUNDS - 1):
        weak = texture < variance * threshold
        if int(weak.sum()) <= patches.shape[0]:  # too few patches left for a covariance: keep the last estimate
            break
        patches, texture = patches[:, weak], texture[weak]
        variance = _smallest_eigenvalue(patches)
    return math.sqrt(max(variance, 0.0))


def _smallest_eigenvalue(patches: torch.Tensor) -> float:
    centred = (patches - patches.mean(dim=1, keepdim=True)).to(torch.float64)
    return float(torch.linalg.eigvalsh(centred @ centred.T / (patches.shape[1] - 1))[0])


@functools.cache
def _texture_threshold() -> float:
    """Summed squared gradients of a patch of unit-variance white noise, not exceeded with
    :data:`_NOISE_CONFIDENCE`: the quantile of the Gamma law of that quadratic form (Liu et al., eq. 13).

    The gradients are the central differences ``(x[i+1] - x[i-1]) / 2`` that fit inside the patch, across
    and down; ``G`` sums their squares as a quadratic form ``x^T G x`` of the patch, whose law Liu et al.
    approximate by a Gamma of shape ``rank(G) / 2`` and scale ``2 trace(G) / rank(G)``.
    """
    from scipy.stats import gamma

    size = _NOISE_PATCH
    difference = np.zeros((size - 2, size))
    difference[np.arange(size - 2), np.arange(size - 2)] = -0.5
    difference[np.arange(size - 2), np.arange(size - 2) + 2] = 0.5
    across = np.kron(np.eye(size), difference)  # on the row-major flattened patch
    down = np.kron(difference, np.eye(size))
    quadratic = across.T @ across + down.T @ down
    rank = np.linalg.matrix_rank(quadratic)
    return float(gamma.ppf(_NOISE_CONFIDENCE, rank / 2, scale=2 * np.trace(quadratic) / rank))


def _load_patch_model(model):
    from pydenoise.core.denoiser import load

    denoiser = load(model)
    patch = math.isqrt(denoiser.window)
    if patch * patch != denoiser.window:
        raise ValueError(
            f"model must be a patch model with a square window (e.g. 256 = 16×16), got window {denoiser.window}"
        )
    return denoiser, patch


@torch.no_grad()
def denoise(
    img,
    sigma=None,
    data_range=None,
    model="image",
    stride=None,
    channel_axis=None,
    device=None,
    ensemble=1,
    wiener=True,
):
    """Denoise an image with the patch DDAE: overlapping 16×16 patches through the fused kernel.

    Every ``stride`` pixels a 16×16 patch (16·16 = 256 values, the fused op's window) is taken, its mean
    removed and divided by the noise level σ; the noise-learning network estimates its noise, which is
    subtracted (a clean-output model's estimate is used as is); the denoised patches are scaled back,
    weighted by a Hann window and averaged where they overlap. That estimate is the pilot of an empirical
    Wiener filter in the block-DCT domain (``wiener``). Borders are reflect101. Colour images are
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
    wiener : bool
        Follow the patch DDAE with the second stage of :mod:`pydenoise.image.wiener` (default): the noisy
        image's 12×12 block-DCT coefficients shrunk by the Wiener gains of the DDAE's output, BM3D's step 2
        without block matching, about 0.25 dB better on average for about half the DDAE's time again.

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

    def both_stages(channels: torch.Tensor) -> torch.Tensor:
        pilot = map_patches(channels, denoise_patches, stride, patch)
        return empirical_wiener(channels, pilot, sigma) if wiener else pilot

    out = torch.empty_like(pixels)
    for n in range(pixels.shape[0]):
        channels = _to_opponent(pixels[n]) if pixels.shape[1] == 3 else pixels[n]
        denoised = sum(undo(both_stages(do(channels))) for do, undo in transforms) / len(transforms)
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
DIHEDRAL = tuple(
    _dihedral(rotations, flip)
    for rotations, flip in ((0, False), (2, False), (0, True), (2, True), (1, False), (3, False), (1, True), (3, True))
)


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
    from pydenoise.core.nn import ConvDAE, load_model

    net = model if isinstance(model, ConvDAE) else load_model(model)[0]
    if not isinstance(net, ConvDAE):
        raise ValueError(f"model must be a ConvDAE or a ConvDAE file, got a {type(net).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    first, layout, scale = _patch_input(a, data_range, channel_axis)
    second, other, _ = _patch_input(b, data_range, channel_axis)
    if first.shape != second.shape or layout.dtype != other.dtype or first.shape[0] != 1:
        raise ValueError(
            f"a and b must be single images of the same shape and dtype, got "
            f"{tuple(first.shape)} {layout.dtype} and {tuple(second.shape)} {other.dtype}"
        )
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
