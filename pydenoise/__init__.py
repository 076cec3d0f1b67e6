"""pydenoise: real-time denoising autoencoders for seismic traces, audio and images.

The package is a shared core (:mod:`pydenoise.core`: the fused op, models, framing, streaming, metrics) under
three domains, :mod:`pydenoise.seismic`, :mod:`pydenoise.audio` and :mod:`pydenoise.image`, each imported on
first use (``pydenoise.seismic`` loads ObsPy). ``docs/architecture.md`` describes the layers.

>>> import pydenoise
>>> m = pydenoise.load("seismic")          # doctest: +SKIP
>>> clean = m.denoise(trace)               # doctest: +SKIP
"""

from __future__ import annotations

from importlib import import_module

import torch

from pydenoise.core import _C, filter_ops, metrics, nn, ops
from pydenoise.core.denoiser import Denoiser, available_models, load
from pydenoise.core.version import __version__

__all__ = [
    "__version__",
    "info",
    "load",
    "available_models",
    "Denoiser",
    "filter_ops",
    "metrics",
    "nn",
    "ops",
    "seismic",
    "audio",
    "image",
]


def info() -> dict:
    """Build and runtime facts: versions, which kernels are compiled in, and what this machine offers.

    Returns
    -------
    dict
        ``version``, ``torch``, ``cpu_kernels`` (the CPU path in use: ``"scalar"``, ``"avx2"``, ``"avx512"`` or
        ``"avx512_bf16"``), ``cpu_paths`` (the paths this CPU runs), ``cuda_kernels`` (compiled in),
        ``cuda_archs`` (compiled architectures, e.g. ``["sm_80", "sm_90"]``), ``cuda_available`` (a GPU usable
        now), ``threads`` (CPU threads the kernels use), ``models`` (shipped model names).
    """
    archs = [f"sm_{int(a) // 10}" for a in _C.cuda_arch_list().split(",") if a.strip().isdigit()]
    return {
        "version": __version__,
        "torch": torch.__version__,
        "cpu_kernels": _C.cpu_path(),
        "cpu_paths": list(_C.cpu_paths()),
        "cuda_kernels": bool(_C.cuda_kernels),
        "cuda_archs": archs,
        "cuda_available": bool(_C.cuda_kernels) and torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
        "models": available_models(),
    }


# The domains import heavy libraries (ObsPy, soundfile, ...) and the streaming layer is not needed offline:
# each is imported on first use, as ``pydenoise.seismic`` or ``pydenoise.streaming``.
_LAZY_MODULES = {
    "seismic": "pydenoise.seismic",
    "audio": "pydenoise.audio",
    "image": "pydenoise.image",
    "streaming": "pydenoise.core.streaming",
    "longperiod": "pydenoise.core.longperiod",
}


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return import_module(_LAZY_MODULES[name])
    raise AttributeError(f"module 'pydenoise' has no attribute {name!r}")
