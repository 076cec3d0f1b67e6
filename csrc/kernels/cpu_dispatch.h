// Which CPU instruction set the kernels run with: detected once (cpuid) at first use, the best one both the
// build and this CPU support, unless lowered by PYDENOISE_CPU_PATH (environment) or set_cpu_path (tests and
// benchmarks force every lower path on a good machine).
#pragma once

namespace pydenoise {

// Ordered: each path needs everything the ones before it need.
enum class CpuPath {
  kScalar,      // portable C++
  kAvx2,        // AVX2 + FMA, 8 float lanes
  kAvx512,      // AVX-512 F/BW/DQ/VL, 16 float lanes, 32 registers
  kAvx512Bf16,  // + AVX512_BF16: bf16 weights meet bf16-rounded activations in VDPBF16PS, float32 accumulation
};
constexpr int kCpuPathCount = 4;

const char* cpu_path_name(CpuPath path);
// The best path of this CPU (and build).
CpuPath cpu_best_path();
// The path the kernels use now.
CpuPath cpu_path();
// Selects `path`; returns false (and changes nothing) when this CPU cannot run it. Not thread-safe against
// running kernels: call it between kernel calls.
bool set_cpu_path(CpuPath path);
// cpu_path() >= path.
bool cpu_uses(CpuPath path);

}  // namespace pydenoise
