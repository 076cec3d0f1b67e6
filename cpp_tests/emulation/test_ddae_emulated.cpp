// The CUDA DDAE kernel (csrc/kernels/ddae_cuda.cu, built for the CPU with HIP-CPU and wmma_emulation.h)
// against the CPU kernel: SIMT float32, WMMA tf32 and WMMA bf16 paths, the shipped models' widths, batches
// across one and many blocks (partial last block included), residual on/off, the CPU reference with weights
// packed per call and beforehand, overlapping frames through the overlap-add pipeline, and the refusals.
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include "../check.h"
#include "kernels/cpu_dispatch.h"
#include "kernels/cuda_compat.h"
#include "kernels/ddae.h"
#include "kernels/ddae_frames.h"

namespace {

using pydenoise::CudaMath;
using pydenoise::DdaeNet;
using pydenoise::WeightType;

// The shipped models (pydenoise/weights/*.safetensors): seismic (also seismic_dae, seismic_lp), image, speech.
const std::vector<int> kSeismic{256, 512, 256, 256, 256, 512, 256};
const std::vector<int> kImage{256, 512, 512, 512, 256};
const std::vector<int> kSpeech{256, 1024, 512, 256, 256, 512, 1024, 256};

// cudaMalloc's (and torch's) 256-byte alignment, which the WMMA loads of the weights rely on.
template <typename T>
struct DeviceAllocator {
  using value_type = T;
  DeviceAllocator() = default;
  template <typename U>
  DeviceAllocator(const DeviceAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new (n * sizeof(T), std::align_val_t{256})); }
  void deallocate(T* p, size_t) { ::operator delete (p, std::align_val_t{256}); }
  bool operator==(const DeviceAllocator&) const { return true; }
  bool operator!=(const DeviceAllocator&) const { return false; }
};
template <typename T>
using DeviceVector = std::vector<T, DeviceAllocator<T>>;

struct Model {
  std::vector<int> widths;
  std::vector<DeviceVector<float>> weights;
  std::vector<std::vector<float>> biases;
  std::vector<DeviceVector<uint16_t>> weights_bf16;
  DdaeNet net(bool bf16, bool prepacked) const {
    DdaeNet n;
    n.num_layers = int(widths.size()) - 1;
    for (size_t i = 0; i < widths.size(); ++i) n.widths[i] = widths[i];
    n.weight_type = bf16 ? WeightType::kBFloat16 : WeightType::kFloat32;
    for (int l = 0; l < n.num_layers; ++l) {
      n.weights[l] = bf16 ? static_cast<const void*>(weights_bf16[l].data()) : weights[l].data();
      n.biases[l] = biases[l].data();
    }
    return n;
  }
};

Model random_model(const std::vector<int>& widths, std::mt19937& rng) {
  Model m{widths, {}, {}, {}};
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    const auto w = random_floats(size_t(widths[l + 1]) * widths[l], rng, 1.f / std::sqrt(float(widths[l])));
    m.weights.emplace_back(w.begin(), w.end());
    m.biases.push_back(random_floats(widths[l + 1], rng, 0.1f));
    DeviceVector<uint16_t> bf16(m.weights.back().size());
    for (size_t i = 0; i < bf16.size(); ++i) bf16[i] = __float2bfloat16(m.weights.back()[i]).bits;
    m.weights_bf16.push_back(bf16);
  }
  return m;
}

// The CPU kernel's result (float32 math; bf16 weights widened), with its weights packed per call or beforehand.
std::vector<float> cpu_forward(const Model& m, bool bf16, bool prepacked, const float* x, int64_t batch, int64_t stride,
                               bool residual) {
  DdaeNet net = m.net(bf16, prepacked);
  std::vector<std::vector<float>> packed(net.num_layers);
  if (prepacked) {
    for (int l = 0; l < net.num_layers; ++l) {
      packed[l].resize(pydenoise::ddae_packed_floats(m.widths[l], m.widths[l + 1], net.weight_type));
      pydenoise::ddae_pack_weights(net.weights[l], net.weight_type, m.widths[l], m.widths[l + 1], packed[l].data());
      net.packed[l] = packed[l].data();
    }
    net.prepacked = true;
  }
  std::vector<float> out(size_t(batch) * m.widths[0]);
  pydenoise::ddae_forward_cpu(net, x, batch, stride, residual, out.data(), 0);
  return out;
}

std::string gpu_forward(const DdaeNet& net, const float* x, int64_t batch, int64_t stride, bool residual, CudaMath math,
                        std::vector<float>& out) {
  out.assign(size_t(batch) * net.widths[0], -7.f);
  const std::string error = pydenoise::ddae_forward_cuda(net, x, batch, stride, residual, out.data(), math, nullptr);
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "emulated device failed");
  return error;
}

enum class Path { kSimt, kTf32, kBf16 };
const char* path_name(Path p) { return p == Path::kSimt ? "simt" : p == Path::kTf32 ? "tf32" : "bf16"; }

// Bounds against the float32 CPU kernel, relative to max |reference|: maximum and root mean square.
// SIMT: float32 FMAs in another order, a few ulp per layer. tf32: each operand rounded to 10 mantissa bits
// (relative 2^-11 = 4.9e-4) per layer; bf16: activations rounded to 8 bits (2^-9 = 2.0e-3), weights exact;
// over six layers of random signs the errors add in quadrature to a few units of that, the maximum over
// millions of outputs a few times more. The bounds are ~3x the largest seen over these cases and far below
// what a broken kernel gives (O(1)).
struct Tolerance {
  double max, rms;
};
Tolerance tolerance(Path p) {
  switch (p) {
    case Path::kSimt:
      return {2e-5, 2e-6};
    case Path::kTf32:
      return {6e-3, 1e-3};
    default:
      return {2.5e-2, 1e-2};
  }
}

double g_worst[3][2] = {};  // largest (max, rms) error per path, printed at the end

void compare(const std::vector<float>& got, const std::vector<float>& want, Path path, const std::string& what) {
  const std::vector<double> ref(want.begin(), want.end());
  const double err = relative_error(got, ref), rms = rms_relative_error(got, ref);
  auto& worst = g_worst[int(path)];
  worst[0] = std::fmax(worst[0], err);
  worst[1] = std::fmax(worst[1], rms);
  const Tolerance tol = tolerance(path);
  CHECK(err <= tol.max && rms <= tol.rms, "%s path=%s: max error %g (bound %g), rms %g (bound %g)", what.c_str(),
        path_name(path), err, tol.max, rms, tol.rms);
}

int g_cases = 0;

void check_forward(const Model& m, Path path, int64_t batch, int64_t stride, bool residual, std::mt19937& rng) {
  const bool bf16 = path == Path::kBf16;
  const CudaMath math = path == Path::kTf32 ? CudaMath::kTF32 : CudaMath::kFloat32;
  const int window = m.widths[0];
  const auto x = random_floats(size_t((batch - 1) * stride + window), rng);
  std::vector<float> got;
  const std::string error = gpu_forward(m.net(bf16, false), x.data(), batch, stride, residual, math, got);
  const std::string what = "widths[1]=" + std::to_string(m.widths[1]) +
                           " layers=" + std::to_string(m.widths.size() - 1) + " batch=" + std::to_string(batch) +
                           " stride=" + std::to_string(stride) + " residual=" + std::to_string(residual);
  CHECK(error.empty(), "%s: %s", what.c_str(), error.c_str());
  for (bool prepacked : {false, true}) {
    compare(got, cpu_forward(m, bf16, prepacked, x.data(), batch, stride, residual), path,
            what + " prepacked=" + std::to_string(prepacked));
  }
  ++g_cases;
}

// The GPU overlap-add of Denoiser.overlap_add_step: the network on the hop-strided frames (no copy), then
// each frame weighted and summed in place; against the CPU's fused ddae_overlap_add (scales of 1: the GPU
// path normalises in torch, outside the kernel).
void check_overlap_add(const Model& m, Path path, int frames, int hop, std::mt19937& rng) {
  const bool bf16 = path == Path::kBf16;
  const int window = m.widths[0];
  const int64_t length = int64_t(frames - 1) * hop + window;
  const auto padded = random_floats(size_t(length), rng);
  const auto frame_weights = random_floats(size_t(window), rng, 0.5f);
  const std::vector<float> scales(size_t(frames), 1.f);
  std::vector<float> want(size_t(length), 0.f);
  const DdaeNet net = m.net(bf16, false);
  pydenoise::ddae_overlap_add_cpu<float>(net, padded.data(), 1, length, hop, frame_weights.data(), scales.data(), true,
                                         want.data(), 0);
  std::vector<float> denoised;
  const std::string error = gpu_forward(net, padded.data(), frames, hop, true,
                                        path == Path::kTf32 ? CudaMath::kTF32 : CudaMath::kFloat32, denoised);
  CHECK(error.empty(), "overlap-add frames=%d: %s", frames, error.c_str());
  std::vector<float> got(size_t(length), 0.f);
  for (int f = 0; f < frames; ++f)
    for (int c = 0; c < window; ++c) got[size_t(f) * hop + c] += denoised[size_t(f) * window + c] * frame_weights[c];
  compare(got, want, path, "overlap-add frames=" + std::to_string(frames) + " hop=" + std::to_string(hop));
  ++g_cases;
}

void check_refusals(std::mt19937& rng) {
  std::vector<float> out;
  const std::vector<float> x(1024, 0.f);
  const Model speech = random_model(kSpeech, rng);
  const std::string too_wide = gpu_forward(speech.net(false, false), x.data(), 1, 256, false, CudaMath::kFloat32, out);
  CHECK(too_wide.find("768") != std::string::npos, "a 1024-wide layer was not refused: '%s'", too_wide.c_str());
  const Model odd = random_model({40, 24, 40}, rng);
  const std::string odd_tc = gpu_forward(odd.net(false, false), x.data(), 3, 40, false, CudaMath::kTF32, out);
  CHECK(odd_tc.find("divisible by 16") != std::string::npos, "width 40 on tensor cores: '%s'", odd_tc.c_str());
  // 768 wide: float32 fits an H100's 227 KiB (2 x 32 x 776 floats + the SIMT stage); bf16 weights need the
  // activations' bf16 copy too (242.5 KiB) and are refused with the reason.
  const Model widest = random_model({256, 768, 256}, rng);
  const std::string fits = gpu_forward(widest.net(false, false), x.data(), 3, 1, false, CudaMath::kFloat32, out);
  CHECK(fits.empty(), "768 wide, float32: %s", fits.c_str());
  const std::string bf16 = gpu_forward(widest.net(true, false), x.data(), 3, 1, false, CudaMath::kFloat32, out);
  CHECK(bf16.find("shared memory") != std::string::npos, "768 wide, bf16: '%s'", bf16.c_str());
  CHECK(gpu_forward(widest.net(false, false), x.data(), 0, 1, false, CudaMath::kFloat32, out).empty(),
        "batch 0 must be a no-op");
}

}  // namespace

int main(int argc, char** argv) {
  // --quick (the sanitized build and the mutation check): every path and model shape, a block and a partial
  // block (B = 1, 65) instead of B up to 4097.
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  CHECK(argc == 1 || (argc == 2 && quick), "unknown argument '%s' (--quick)", argv[argc - 1]);
  const std::vector<int64_t> batches =
      quick ? std::vector<int64_t>{1, 65} : std::vector<int64_t>{1, 7, 64, 65, 1000, 4097};
  std::mt19937 rng(2024);
  // The float32 CPU paths only (avx512_bf16 rounds activations, like the GPU's bf16 path, but differently).
  const auto best = pydenoise::cpu_best_path();
  pydenoise::set_cpu_path(best == pydenoise::CpuPath::kAvx512Bf16 ? pydenoise::CpuPath::kAvx512 : best);
  const Model seismic = random_model(kSeismic, rng), image = random_model(kImage, rng);
  const Model small = random_model({48, 80, 48}, rng);      // a partial SIMT column pass, short K slices
  const Model tails = random_model({37, 13, 70, 37}, rng);  // SIMT only: widths off every tile
  for (Path path : {Path::kSimt, Path::kTf32, Path::kBf16}) {
    for (int64_t batch : batches) check_forward(seismic, path, batch, 256, batch % 2 == 1, rng);
    for (int64_t batch : {int64_t{1}, int64_t{65}, quick ? int64_t{33} : int64_t{1000}})
      check_forward(image, path, batch, 256, true, rng);
    check_forward(small, path, 33, 48, false, rng);
    check_forward(seismic, path, quick ? 40 : 200, 64, true, rng);  // overlapping rows, hop 64
    check_overlap_add(seismic, path, quick ? 40 : 1000, 128, rng);
    std::printf("test_ddae_emulated: %s: worst max error %.3g, rms %.3g\n", path_name(path), g_worst[int(path)][0],
                g_worst[int(path)][1]);
  }
  check_forward(tails, Path::kSimt, 70, 40, true, rng);
  check_refusals(rng);
  std::printf("test_ddae_emulated: %d cases passed\n", g_cases);
  return 0;
}
