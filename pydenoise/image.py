"""Image denoising: the patch denoiser on the fused DDAE kernel, a noise-level estimate, latent interpolation.

Images are numpy first: ``(H, W)`` grayscale or ``(H, W, C)`` with ``channel_axis`` naming the channel axis; torch
``(N, C, H, W)`` tensors are accepted too. uint8 in gives uint8 out (rounded, clipped to 0..255); float in
gives float out, unclipped, and needs an explicit ``data_range`` (as :func:`pydenoise.metrics.psnr` does).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from pydenoise.patches import denormalise, map_patches, normalise

__all__ = ["denoise", "estimate_sigma", "interpolate"]

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


class _Image:
    """An image as a float ``(N, C, H, W)`` tensor, and how to give a result back in the caller's form.

    The conventions of the image filters: numpy ``H×W`` or ``H×W×C`` (3-D needs ``channel_axis``), torch
    ``N×C×H×W``; uint8 or float. Float images also need an explicit ``data_range``.
    """

    def __init__(self, img, data_range=None, channel_axis=None, name="img"):
        self.numpy = not isinstance(img, torch.Tensor)
        if self.numpy:
            array = np.asarray(img)
            self.ndim, self.channel_axis = array.ndim, channel_axis
            if array.ndim == 2 and channel_axis is None:
                tensor = torch.from_numpy(np.ascontiguousarray(array))[None, None]
            elif array.ndim == 3 and channel_axis is not None:
                tensor = torch.from_numpy(np.ascontiguousarray(np.moveaxis(array, channel_axis, 0)))[None]
            else:
                raise ValueError(f"{name} must be H×W, or H×W×C with channel_axis (e.g. -1), as a numpy array; "
                                 f"got shape {array.shape} with channel_axis={channel_axis}")
        else:
            if img.dim() != 4:
                raise ValueError(f"{name} must be 4-D (N, C, H, W) as a tensor, got shape {tuple(img.shape)}")
            tensor = img.detach()
        if tensor.dtype != torch.uint8 and tensor.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{name} must be uint8, float32 or float64, got dtype {tensor.dtype}")
        if tensor.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(img.shape)})")
        self.dtype = tensor.dtype
        self.integer = tensor.dtype == torch.uint8
        self.data_range = self._data_range(data_range, name)
        self.pixels = tensor.to(torch.float64 if tensor.dtype == torch.float64 else torch.float32)
        if not self.integer and not bool(torch.isfinite(self.pixels).all()):
            raise ValueError(f"{name} contains NaN or Inf pixels")

    def _data_range(self, data_range, name):
        if self.integer:
            if data_range is not None and float(data_range) != 255.0:
                raise ValueError(f"data_range must be 255 (or None) for a uint8 {name}, got {data_range}")
            return 255.0
        if data_range is None:
            raise ValueError(f"data_range is required for a float {name} (e.g. 1.0 for 0..1 images, 255.0)")
        if not float(data_range) > 0:
            raise ValueError(f"data_range must be positive, got {data_range}")
        return float(data_range)

    def back(self, pixels: torch.Tensor):
        """``pixels`` (N, C, H, W) in the caller's type, dtype, layout and device."""
        if self.integer:
            pixels = pixels.round().clamp(0, 255)
        pixels = pixels.to(self.dtype)
        if not self.numpy:
            return pixels
        array = pixels.cpu().numpy()[0]
        return array[0] if self.ndim == 2 else np.moveaxis(array, 0, self.channel_axis)


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
    image = _Image(img, data_range, channel_axis)
    pixels = image.pixels.to(torch.float64)
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
def denoise(img, sigma=None, data_range=None, model="image", stride=None, channel_axis=None, device=None):
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
    >>> pydenoise.metrics.psnr(clean, out, data_range=255) > 29
    True
    """
    image = _Image(img, data_range, channel_axis)
    denoiser, patch = _load_patch_model(model)
    stride = _check_stride(denoiser.config.get("stride", 3) if stride is None else stride, patch)
    sigma = estimate_sigma(img, image.data_range, channel_axis) if sigma is None else _check_sigma(sigma)
    _warn_outside_training(sigma, image.data_range, denoiser.config)
    target = torch.device(device) if device is not None else image.pixels.device
    if sigma == 0:
        return image.back(image.pixels)
    pixels = image.pixels.to(target, torch.float32)  # float32 is exact enough for pixels and twice as fast
    module = denoiser.module_on(target)

    def denoise_patches(patches: torch.Tensor) -> torch.Tensor:
        z, mean = normalise(patches, sigma)  # the same normalisation as in training
        return denormalise(module.clean(z), mean, sigma)

    out = torch.empty_like(pixels)
    for n in range(pixels.shape[0]):
        channels = _to_opponent(pixels[n]) if pixels.shape[1] == 3 else pixels[n]
        denoised = map_patches(channels, denoise_patches, stride, patch)
        out[n] = _from_opponent(denoised) if pixels.shape[1] == 3 else denoised
    return image.back(out)


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
    first, second = _Image(a, data_range, channel_axis, "a"), _Image(b, data_range, channel_axis, "b")
    if first.pixels.shape != second.pixels.shape or first.dtype != second.dtype or first.pixels.shape[0] != 1:
        raise ValueError(f"a and b must be single images of the same shape and dtype, got "
                         f"{tuple(first.pixels.shape)} {first.dtype} and {tuple(second.pixels.shape)} {second.dtype}")
    if first.pixels.shape[1] != net.config["channels"]:
        raise ValueError(f"the images have {first.pixels.shape[1]} channels, the model {net.config['channels']}")
    device = next(net.parameters()).device
    pair = torch.cat([first.pixels, second.pixels]).to(device, torch.float32) / first.data_range
    net.eval()
    codes = net.encode(pair)
    t = torch.linspace(0, 1, steps, device=device).view(-1, *[1] * (codes.dim() - 1))
    path = net.decode((1 - t) * codes[:1] + t * codes[1:], pair.shape[-2:]) * first.data_range
    frames = [first.back(image[None].to(first.pixels)) for image in path]
    return np.stack(frames) if first.numpy else torch.stack(frames)
