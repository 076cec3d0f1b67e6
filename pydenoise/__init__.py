"""pydenoise: real-time denoising autoencoders for seismic traces, audio and images.

>>> import pydenoise
>>> m = pydenoise.load("seismic")          # doctest: +SKIP
>>> clean = m.denoise(trace)               # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

import torch

from pydenoise import _C, filter_ops, image, metrics, nn, ops
from pydenoise.denoiser import Denoiser, available_models, load

try:
    __version__ = version("pydenoise")
except PackageNotFoundError:  # running from a source tree that was built in place
    __version__ = "0.1.0+local"

__all__ = ["__version__", "info", "load", "available_models", "Denoiser", "filter_ops", "image", "metrics", "nn", "ops"]


def info() -> dict:
    """Build and runtime facts: versions, which kernels are compiled in, and what this machine offers.

    Returns
    -------
    dict
        ``version``, ``torch``, ``cpu_kernels`` (``"avx2"`` or ``"scalar"``), ``cuda_kernels`` (compiled in),
        ``cuda_archs`` (compiled architectures, e.g. ``["sm_80", "sm_90"]``), ``cuda_available`` (a GPU usable
        now), ``threads`` (CPU threads the kernels use), ``models`` (shipped model names).
    """
    archs = [f"sm_{int(a) // 10}" for a in _C.cuda_arch_list().split(",") if a.strip().isdigit()]
    return {
        "version": __version__,
        "torch": torch.__version__,
        "cpu_kernels": "avx2" if _C.cpu_has_avx2() else "scalar",
        "cuda_kernels": bool(_C.cuda_kernels),
        "cuda_archs": archs,
        "cuda_available": bool(_C.cuda_kernels) and torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
        "models": available_models(),
    }


# Domain modules import heavy libraries (ObsPy, ...): `pydenoise.seismic` is imported on first use.
_LAZY_MODULES = {"seismic", "streaming", "longperiod"}


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return import_module(f"pydenoise.{name}")
    raise AttributeError(f"module 'pydenoise' has no attribute {name!r}")
