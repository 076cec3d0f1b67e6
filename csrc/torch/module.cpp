// The Python module pydenoise._C: build facts for pydenoise.info(). The ops themselves are registered with
// TORCH_LIBRARY in the *_ops.cpp files and reached through torch.ops.pydenoise.
#include <omp.h>
#include <torch/extension.h>

#include "kernels/cpu_dispatch.h"
#include "kernels/ddae.h"

#ifdef PYDENOISE_WITH_CUDA
namespace pydenoise {
const char* cuda_arch_list();  // defined in a .cu file, where nvcc knows the architectures it compiled
}
#endif

namespace {

// The paths this CPU can run, lowest first.
std::vector<std::string> cpu_paths() {
  std::vector<std::string> names;
  for (int p = 0; p <= static_cast<int>(pydenoise::cpu_best_path()); ++p) {
    names.emplace_back(pydenoise::cpu_path_name(static_cast<pydenoise::CpuPath>(p)));
  }
  return names;
}

void set_cpu_path(const std::string& name) {
  for (int p = 0; p < pydenoise::kCpuPathCount; ++p) {
    const auto path = static_cast<pydenoise::CpuPath>(p);
    if (name == pydenoise::cpu_path_name(path) && pydenoise::set_cpu_path(path)) return;
  }
  std::string known;
  for (const std::string& path : cpu_paths()) known += (known.empty() ? "" : ", ") + path;
  throw pybind11::value_error("set_cpu_path: '" + name + "' is not a CPU path this machine runs (it runs: " + known +
                              ")");
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "pydenoise compiled kernels";
  m.def("cpu_has_avx2", &pydenoise::cpu_has_avx2, "True when the CPU kernels run an AVX2 path or better.");
  m.def(
      "cpu_path", [] { return std::string(pydenoise::cpu_path_name(pydenoise::cpu_path())); },
      "The CPU kernel path in use: 'scalar', 'avx2', 'avx512' or 'avx512_bf16'.");
  m.def("cpu_paths", &cpu_paths, "The CPU kernel paths this machine runs, lowest first (the last is the default).");
  m.def("set_cpu_path", &set_cpu_path, "Selects a CPU kernel path from cpu_paths() (tests and benchmarks).");
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
