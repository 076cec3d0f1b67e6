"""Build ``pydenoise.core._C``: the torch-free kernels in ``csrc/kernels`` plus the binding in ``csrc/torch``.

CPU kernels are always built. CUDA kernels (``*.cu`` and ``*_cuda.cpp``) are added when torch is a CUDA
build and a CUDA toolkit is found (``CUDA_HOME``); ``PYDENOISE_NO_CUDA=1`` forces a CPU-only build.
Restrict the GPU architectures with ``TORCH_CUDA_ARCH_LIST`` (default here: "8.0;9.0").
"""

import glob
import os

from setuptools import setup
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def torch_dir():
    import torch

    return os.path.dirname(torch.__file__)


def _cuda_requested():
    if os.environ.get("PYDENOISE_NO_CUDA", "0") == "1":
        return False
    import torch

    return torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None


def _extension():
    with_cuda = _cuda_requested()
    cpu_sources = [
        s for s in _sources("csrc/kernels/*.cpp") + _sources("csrc/torch/*.cpp") if not s.endswith("_cuda.cpp")
    ]
    # No -mavx2 here: AVX2 code lives in *_avx2.cpp files (GCC target pragma) behind a runtime CPU check,
    # so the module still loads on CPUs without AVX2.
    cxx_flags = ["-O3", "-fopenmp", "-fno-math-errno"]
    if not with_cuda:
        return cpp_extension.CppExtension(
            "pydenoise.core._C",
            cpu_sources,
            include_dirs=[os.path.join(ROOT, "csrc")],
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=["-fopenmp"],
        )
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
    # torch's CUDA headers include cuBLAS/cuSPARSE, which pip's CUDA 13 torch ships in nvidia/cu13/include
    # rather than in the toolkit; searched last, so the toolkit's own headers win.
    wheel_headers = [
        f"-idirafter{p}" for p in glob.glob(os.path.join(os.path.dirname(torch_dir()), "nvidia", "cu[0-9]*", "include"))
    ]
    cuda_sources = _sources("csrc/kernels/*.cu") + _sources("csrc/torch/*_cuda.cpp")
    return cpp_extension.CUDAExtension(
        "pydenoise.core._C",
        cpu_sources + cuda_sources,
        include_dirs=[os.path.join(ROOT, "csrc")],
        extra_compile_args={
            "cxx": cxx_flags + wheel_headers + ["-DPYDENOISE_WITH_CUDA"],
            "nvcc": ["-O3", "-DPYDENOISE_WITH_CUDA", "-lineinfo"],
        },
        extra_link_args=["-fopenmp"],
    )


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(use_ninja=True)},
)
