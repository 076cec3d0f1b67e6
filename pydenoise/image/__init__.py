"""Images: the classical filters on the compiled kernels, and learned denoising with the fused DDAE kernel.

* Filters (:mod:`pydenoise.image.filters`): :func:`box`, :func:`gaussian`, :func:`median`, :func:`bilateral`,
  :func:`convolve`, :func:`sharpen`, on numpy images or ``N×C×H×W`` tensors (CPU or GPU), OpenCV's borders.
* Denoising (:mod:`pydenoise.image.learned`): :func:`denoise` (the patch DDAE, blind with
  :func:`estimate_sigma`), :func:`interpolate` (a ConvDAE's latent space).

Comparison with TV, NL-means and BM3D (:mod:`pydenoise.image.compare`) and training
(:mod:`pydenoise.image.train`) are imported where used.

Examples
--------
>>> import numpy as np
>>> from pydenoise import image
>>> image.box(np.zeros((4, 4), np.uint8), 3).shape
(4, 4)
"""

from pydenoise.image.filters import (
    BORDERS,
    SHARPEN_KERNEL,
    bilateral,
    box,
    convolve,
    default_gaussian_size,
    gaussian,
    gaussian_kernel,
    median,
    sharpen,
)
from pydenoise.image.learned import denoise, estimate_sigma, interpolate

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
    "estimate_sigma",
    "denoise",
    "interpolate",
]
