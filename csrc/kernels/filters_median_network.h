// Median selection networks, built at compile time and shared by the CPU and CUDA median kernels.
//
// Start from Batcher's odd-even merge sort on the next power of two >= n wires, the extra wires holding +inf.
// Comparators touching an +inf wire are folded away (they only rename values), then a backward liveness pass
// keeps only what the median output depends on, and of each kept comparator only the min or max half that is
// used. What is left is a straight-line list of min/max operations on n registers; the caller unrolls it
// (`apply_median_network`) so the values stay in registers (CPU: vectors of pixels; CUDA: one pixel a thread).
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

// The networks are unrolled into straight-line code: every level must inline, however long the network.
#if defined(__CUDACC__)
#define PD_NETWORK_INLINE __host__ __device__ __forceinline__
#else
#define PD_NETWORK_INLINE inline __attribute__((always_inline))
#endif

namespace pydenoise::median_network {

struct Compare {
  int lo = 0, hi = 0;     // registers: lo receives min(lo, hi), hi receives max(lo, hi)
  bool want_min = false;  // only the halves that are used later are computed
  bool want_max = false;
};

constexpr int kMaxCompares = 600;  // Batcher on 64 wires has 543 comparators: enough for 7 x 7 windows

struct Network {
  Compare ops[kMaxCompares] = {};
  int count = 0;
  int output = 0;  // register holding the median at the end
};

constexpr int next_pow2(int n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

// Median (rank (n - 1) / 2) of n values; n odd, n <= 64.
constexpr Network build(int n) {
  constexpr int kWires = 64;
  const int wires = next_pow2(n);
  int reg[kWires] = {};        // register currently holding each wire's value
  bool infinite[kWires] = {};  // the wire holds +inf
  for (int w = 0; w < wires; ++w) {
    reg[w] = w;
    infinite[w] = w >= n;
  }
  Network raw;
  // Batcher's odd-even merge sort, iterative form: merges of sorted runs of length p, distance k.
  for (int p = 1; p < wires; p *= 2) {
    for (int k = p; k >= 1; k /= 2) {
      for (int j = k % p; j + k < wires; j += 2 * k) {
        for (int i = 0; i < k && i + j + k < wires; ++i) {
          const int a = i + j, b = i + j + k;
          if (a / (2 * p) != b / (2 * p)) continue;
          if (infinite[b]) continue;  // max(a, +inf) stays in b, a keeps its value
          if (infinite[a]) {          // the finite value moves down: a rename, no operation
            const int r = reg[a];
            reg[a] = reg[b];
            reg[b] = r;
            infinite[a] = false;
            infinite[b] = true;
            continue;
          }
          raw.ops[raw.count++] = Compare{reg[a], reg[b], true, true};
        }
      }
    }
  }
  // Backward liveness: which halves of which comparators reach the median wire.
  bool live[kWires] = {};
  const int output = reg[(n - 1) / 2];
  live[output] = true;
  for (int o = raw.count - 1; o >= 0; --o) {
    Compare& c = raw.ops[o];
    c.want_min = live[c.lo];
    c.want_max = live[c.hi];
    if (c.want_min || c.want_max) {
      live[c.lo] = live[c.hi] = true;
    }
  }
  Network net;
  net.output = output;
  for (int o = 0; o < raw.count; ++o) {
    if (raw.ops[o].want_min || raw.ops[o].want_max) net.ops[net.count++] = raw.ops[o];
  }
  return net;
}

template <int N>
inline constexpr Network kMedian = build(N);

// The first comparator that reads each register (-1: none), where a lazily loaded input is loaded.
struct FirstUse {
  int op[64] = {};
};

constexpr FirstUse first_uses(const Network& net) {
  FirstUse first;
  for (int r = 0; r < 64; ++r) first.op[r] = -1;
  for (int o = net.count - 1; o >= 0; --o) first.op[net.ops[o].lo] = first.op[net.ops[o].hi] = o;
  return first;
}

template <int N>
inline constexpr FirstUse kFirstUse = first_uses(kMedian<N>);

// Load argument meaning "v already holds every input".
struct Preloaded {};

// `ops` supplies min(a, b) and max(a, b) for V: the CPU passes per-instruction-set vector versions, the GPU
// scalar ones. It is a parameter (not an overload set) so each instruction set gets its own instantiation.
// `load(i)`, unless Preloaded, gives input i just before the first comparator that reads it: on the CPU, with
// 25 or 49 inputs and 16 vector registers, loading all inputs first spills most of them to the stack, and the
// spill stores, not the min/max, then bound the speed.
template <int N, int I, typename V, typename Ops, typename Load>
PD_NETWORK_INLINE void compare(V* v, Ops ops, Load load) {
  constexpr Compare c = kMedian<N>.ops[I];
  if constexpr (!std::is_same_v<Load, Preloaded>) {
    if constexpr (kFirstUse<N>.op[c.lo] == I) v[c.lo] = load(c.lo);
    if constexpr (kFirstUse<N>.op[c.hi] == I) v[c.hi] = load(c.hi);
  }
  const V a = v[c.lo], b = v[c.hi];
  if constexpr (c.want_min) v[c.lo] = ops.min(a, b);
  if constexpr (c.want_max) v[c.hi] = ops.max(a, b);
}

template <int N, typename V, typename Ops, typename Load, std::size_t... I>
PD_NETWORK_INLINE void apply(V* v, Ops ops, Load load, std::index_sequence<I...>) {
  (compare<N, static_cast<int>(I)>(v, ops, load), ...);
}

// The median of v[0 .. N) (v is scrambled); with a `load`, of load(0 .. N), v being scratch registers.
template <int N, typename V, typename Ops, typename Load = Preloaded>
PD_NETWORK_INLINE V median(V* v, Ops ops, Load load = {}) {
  apply<N>(v, ops, load, std::make_index_sequence<kMedian<N>.count>{});
  return v[kMedian<N>.output];
}

}  // namespace pydenoise::median_network
