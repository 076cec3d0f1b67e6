"""Side-by-side image denoising comparison: the seeds' experiment done right.

Each method gets the same noisy image (white Gaussian noise of a known σ on the 0..255 scale, added to the
clean image *without* clipping, as in the published Set12/BSD68 protocol) and the true σ; quality is
PSNR (data_range 255) and SSIM from :mod:`pydenoise.core.metrics`, and each method is timed.

Methods: the noisy input itself; mean, Gaussian, median and bilateral filters (pydenoise's kernels); the
patch DAE (:func:`pydenoise.image.learned.denoise`); scikit-image's total variation (Chambolle), non-local means
and wavelet shrinkage (BayesShrink, its documented default for Gaussian noise, untuned);
BM3D when the optional ``bm3d`` package is installed (``pip install pydenoise[peers]``; non-commercial
licence). Filter, TV and NL-means settings follow σ by rules chosen on scikit-image's bundled photographs
(``coffee``, ``chelsea``, ``rocket``), never on the evaluation images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Result", "add_noise", "available_methods", "compare", "montage"]


@dataclass
class Result:
    """One method's output on one image: ``psnr`` and ``ssim`` against the clean image, wall ``seconds``."""

    method: str
    psnr: float
    ssim: float
    seconds: float
    image: np.ndarray


def add_noise(clean, sigma: float, seed: int = 0) -> np.ndarray:
    """``clean`` (any dtype, 0..255 scale) plus N(0, σ²) noise, float64, unclipped, from a seeded generator."""
    rng = np.random.default_rng(seed)
    clean = np.asarray(clean, dtype=np.float64)
    return clean + rng.normal(0.0, sigma, clean.shape)


def _odd(value: float) -> int:
    return int(2 * round((value - 1) / 2) + 1)


def _filters(sigma: float, channel_axis):
    from pydenoise import image

    def as_float32(function):
        return lambda noisy: function(noisy.astype(np.float32)).astype(np.float64)

    # Rules fitted to the best settings at σ = 15, 25, 50 on three bundled photographs (see the module doc).
    box_size = _odd(1 + sigma / 8)
    median_size = 3 if sigma <= 20 else 5
    return {
        "mean": as_float32(lambda x: image.box(x, box_size, channel_axis=channel_axis)),
        "gaussian": as_float32(lambda x: image.gaussian(x, 0.2 + 0.04 * sigma, channel_axis=channel_axis)),
        "median": as_float32(lambda x: image.median(x, median_size, channel_axis=channel_axis)),
        "bilateral": as_float32(
            lambda x: image.bilateral(x, 9, 3.0 * sigma, 1.0 + sigma / 25.0, channel_axis=channel_axis)
        ),
    }


def available_methods(sigma: float, channel_axis=None, model="image") -> dict:
    """The comparison's methods for noise level ``sigma`` (0..255 scale): name -> ``f(noisy) -> denoised``.

    Every function takes and returns a float64 image on the 0..255 scale. BM3D is included only when the
    optional ``bm3d`` package is importable.
    """
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet

    from pydenoise import image

    methods = {"noisy": lambda noisy: noisy}
    methods.update(_filters(sigma, channel_axis))
    methods["patch DAE"] = lambda noisy: image.denoise(
        noisy, sigma=sigma, data_range=255.0, model=model, channel_axis=channel_axis
    )
    methods["TV"] = lambda noisy: (
        255.0
        * denoise_tv_chambolle(noisy / 255.0, weight=(0.7 + 0.006 * sigma) * sigma / 255.0, channel_axis=channel_axis)
    )
    methods["NL-means"] = lambda noisy: (
        255.0
        * denoise_nl_means(
            noisy / 255.0,
            h=0.6 * sigma / 255.0,
            sigma=sigma / 255.0,
            patch_size=7,
            patch_distance=11,
            fast_mode=True,
            channel_axis=channel_axis,
        )
    )
    methods["wavelet"] = lambda noisy: (
        255.0
        * denoise_wavelet(
            noisy / 255.0,
            sigma=sigma / 255.0,
            method="BayesShrink",
            mode="soft",
            rescale_sigma=True,
            convert2ycbcr=channel_axis is not None,
            channel_axis=channel_axis,
        )
    )
    try:
        import bm3d
    except ImportError:
        return methods
    if channel_axis is None:
        methods["BM3D"] = lambda noisy: bm3d.bm3d(noisy, sigma_psd=sigma)
    else:
        methods["BM3D"] = lambda noisy: np.moveaxis(
            bm3d.bm3d_rgb(np.moveaxis(noisy, channel_axis, -1), sigma), -1, channel_axis
        )
    return methods


def compare(clean, sigma: float, seed: int = 0, methods=None, channel_axis=None, model="image") -> tuple:
    """Denoise ``clean + N(0, σ²)`` with every method and score each against ``clean``.

    Parameters
    ----------
    clean : numpy.ndarray
        The reference image on the 0..255 scale (uint8 or float), ``H×W`` or ``H×W×C`` with ``channel_axis``.
    sigma : float
        Noise standard deviation on the 0..255 scale (given to every method).
    seed : int
        Seed of the noise.
    methods : sequence of str, optional
        Names to run (default: all of :func:`available_methods`).

    Returns
    -------
    (noisy, results)
        The noisy float64 image and a list of :class:`Result`, in method order.

    Examples
    --------
    >>> from skimage import data
    >>> noisy, results = compare(data.camera()[:128, :128], 25, methods=["noisy", "patch DAE"])
    >>> [r.method for r in results], results[1].psnr > results[0].psnr + 5
    (['noisy', 'patch DAE'], True)
    """
    from pydenoise.core.metrics import psnr, ssim

    available = available_methods(sigma, channel_axis, model)
    names = list(available) if methods is None else list(methods)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(f"methods: unknown or unavailable {unknown}; available: {list(available)}")
    reference = np.asarray(clean, dtype=np.float64)
    noisy = add_noise(reference, sigma, seed)
    results = []
    for name in names:
        started = time.perf_counter()
        out = available[name](noisy)
        seconds = time.perf_counter() - started
        results.append(
            Result(
                name,
                psnr(reference, out, data_range=255.0),
                ssim(reference, out, data_range=255.0, channel_axis=channel_axis),
                seconds,
                out,
            )
        )
    return noisy, results


def montage(clean, results, path, title: str = "") -> None:
    """Write a PNG grid: the clean image, then each result with its PSNR / SSIM / time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("clean", np.asarray(clean, dtype=np.float64), "")] + [
        (r.method, r.image, f"{r.psnr:.2f} dB  SSIM {r.ssim:.3f}\n{r.seconds * 1e3:.0f} ms") for r in results
    ]
    columns = min(5, len(panels))
    rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 4.0 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (name, picture, caption) in zip(axes.ravel(), panels):
        gray = picture.ndim == 2
        axis.imshow(np.clip(picture, 0, 255) / 255.0, cmap="gray" if gray else None, vmin=0, vmax=1)
        axis.set_title(f"{name}\n{caption}", fontsize=9)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
