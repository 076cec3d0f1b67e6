// Portability header of the CUDA kernels: the same .cu source builds with nvcc for the GPU, and with a host C++
// compiler against the HIP CPU runtime (PYDENOISE_HIP_CPU: blocks on CPU threads, a block's threads as fibers
// that switch at __syncthreads) for cpp_tests/emulation. Only the names the kernels use are mapped here.
#pragma once

#ifndef PYDENOISE_HIP_CPU

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

// The kernel's dynamic shared memory, as `type name[]`.
#define PYDENOISE_DYNAMIC_SHARED(type, name) extern __shared__ __align__(128) type name[]
// kernel<<<grid, block, smem, stream>>>(args...)
#define PYDENOISE_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)

#else  // the HIP CPU runtime

#include <hip/hip_runtime.h>

// HIP-CPU marks device functions with GCC's `simd` (vector clones of every function: slower builds, and
// warnings for struct arguments); plain functions are what the emulation needs.
#undef __device__
#define __device__
#undef __global__
#define __global__

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

using cudaError_t = hipError_t;
using cudaStream_t = hipStream_t;
constexpr hipError_t cudaSuccess = hipSuccess;
inline hipError_t cudaGetLastError() { return hipGetLastError(); }
inline const char* cudaGetErrorString(hipError_t e) { return hipGetErrorString(e); }
inline hipError_t cudaGetDevice(int* device) { return hipGetDevice(device); }
inline hipError_t cudaDeviceSynchronize() { return hipDeviceSynchronize(); }

// The device limits the kernels check, as an H100 (sm_90) has them: a CPU has no such limit, and the
// emulated launch must refuse what the GPU would.
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin };
constexpr int kEmulatedMaxSharedPerBlockOptin = 232448;  // 227 KiB
inline hipError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr, int) {
  *value = kEmulatedMaxSharedPerBlockOptin;
  return hipSuccess;
}
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
template <typename Kernel>
hipError_t cudaFuncSetAttribute(Kernel, cudaFuncAttribute, int bytes) {
  return bytes <= kEmulatedMaxSharedPerBlockOptin ? hipSuccess : hipErrorInvalidValue;
}

// Device intrinsics, with the GPU's rounding: __float2int_rn rounds to nearest even (the default mode).
inline int __float2int_rn(float v) { return static_cast<int>(std::nearbyint(v)); }
inline float __expf(float v) { return std::exp(v); }  // the GPU's is faster and ~2 ulp off: tests allow for it
using std::isfinite;
using std::min;

// bf16 with cuda_bf16.h's conversion: round to nearest even, NaN kept a (quiet) NaN.
struct __nv_bfloat16 {
  uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return {static_cast<uint16_t>(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 v) {
  const uint32_t u = uint32_t{v.bits} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

namespace pydenoise::emulation {
// One block's dynamic shared memory on this CPU thread: exactly the launch's bytes (so AddressSanitizer sees
// an access past them), 128-byte aligned like the GPU's, and refilled with 0xff bytes (NaN floats) when a
// block starts, as a GPU leaves it undefined: a read before a write shows up as NaN.
inline unsigned char* block_shared_memory() {
  struct Buffer {
    unsigned char* data = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  const size_t bytes = scratchpad_size(domain(::hip::detail::Tile::this_tile()));
  if (bytes != buffer.bytes || buffer.data == nullptr) {
    std::free(buffer.data);
    void* p = nullptr;
    if (posix_memalign(&p, 128, bytes == 0 ? 1 : bytes) != 0) std::abort();
    buffer.data = static_cast<unsigned char*>(p);
    buffer.bytes = bytes;
  }
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) std::memset(buffer.data, 0xff, bytes);
  return buffer.data;
}
}  // namespace pydenoise::emulation

#define PYDENOISE_DYNAMIC_SHARED(type, name) \
  type* const name = reinterpret_cast<type*>(::pydenoise::emulation::block_shared_memory())
#define PYDENOISE_LAUNCH(kernel, grid, block, smem, stream, ...) \
  hipLaunchKernelGGL(kernel, grid, block, smem, stream, __VA_ARGS__)

#include "kernels/wmma_emulation.h"

#endif
