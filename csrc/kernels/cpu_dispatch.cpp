#include "kernels/cpu_dispatch.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pydenoise {
namespace {

constexpr const char* kNames[kCpuPathCount] = {"scalar", "avx2", "avx512", "avx512_bf16"};

CpuPath detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return CpuPath::kScalar;
  if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))) {
    return CpuPath::kAvx2;
  }
  return __builtin_cpu_supports("avx512bf16") ? CpuPath::kAvx512Bf16 : CpuPath::kAvx512;
#else
  return CpuPath::kScalar;
#endif
}

// The best path, lowered by PYDENOISE_CPU_PATH=NAME when that names a path this CPU has (else a warning).
CpuPath initial_path() {
  const CpuPath best = cpu_best_path();
  const char* wanted = std::getenv("PYDENOISE_CPU_PATH");
  if (wanted == nullptr || *wanted == '\0') return best;
  for (int p = 0; p < kCpuPathCount; ++p) {
    if (std::strcmp(wanted, kNames[p]) == 0 && p <= static_cast<int>(best)) return static_cast<CpuPath>(p);
  }
  std::fprintf(stderr, "pydenoise: PYDENOISE_CPU_PATH=%s is not a path this CPU runs (best: %s); using %s\n", wanted,
               kNames[static_cast<int>(best)], kNames[static_cast<int>(best)]);
  return best;
}

std::atomic<CpuPath>& active() {
  static std::atomic<CpuPath> path{initial_path()};
  return path;
}

}  // namespace

const char* cpu_path_name(CpuPath path) { return kNames[static_cast<int>(path)]; }

CpuPath cpu_best_path() {
  static const CpuPath best = detect();
  return best;
}

CpuPath cpu_path() { return active().load(std::memory_order_relaxed); }

bool set_cpu_path(CpuPath path) {
  if (static_cast<int>(path) > static_cast<int>(cpu_best_path())) return false;
  active().store(path, std::memory_order_relaxed);
  return true;
}

bool cpu_uses(CpuPath path) { return static_cast<int>(cpu_path()) >= static_cast<int>(path); }

}  // namespace pydenoise
