// The Python module pydenoise._C: build facts for pydenoise.info(). The ops themselves are registered with
// TORCH_LIBRARY in the *_ops.cpp files and reached through torch.ops.pydenoise.
#include <omp.h>
#include <torch/extension.h>

#include "kernels/ddae.h"

#ifdef PYDENOISE_WITH_CUDA
namespace pydenoise {
const char* cuda_arch_list();  // defined in a .cu file, where nvcc knows the architectures it compiled
}
#endif

PYBIND11_MODULE(_C, m) {
  m.doc() = "pydenoise compiled kernels";
  m.def("cpu_has_avx2", &pydenoise::cpu_has_avx2, "True when the AVX2/FMA CPU kernels run on this CPU.");
  m.def(
      "openmp_max_threads", [] { return omp_get_max_threads(); }, "OpenMP threads available to the kernels.");
#ifdef PYDENOISE_WITH_CUDA
  m.attr("cuda_kernels") = true;
  m.def(
      "cuda_arch_list", [] { return std::string(pydenoise::cuda_arch_list()); },
      "GPU architectures the CUDA kernels were compiled for, e.g. '800,900'.");
#else
  m.attr("cuda_kernels") = false;
  m.def(
      "cuda_arch_list", [] { return std::string(); }, "Empty: built without CUDA kernels.");
#endif
}
