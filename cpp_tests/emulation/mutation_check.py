"""Proves the emulated CUDA tests bite: builds deliberately broken copies of the kernel sources into
build/mutants/, runs the emulated suite (--quick) against each, and fails unless every mutant is caught.

Run from the repository root after `make -f cpp_tests/emulation/Makefile build` (it reuses the CPU objects).
"""

import pathlib
import subprocess
import sys

DDAE = "csrc/kernels/ddae_cuda.cu"
FILTERS = "csrc/kernels/filters_cuda.cu"

# (name, source, original text, broken text): each original must occur exactly once.
MUTANTS = [
    ("simt-sign", DDAE, "fmaf(a[i], b[j], acc[i][j])", "fmaf(-a[i], b[j], acc[i][j])"),
    ("simt-sync", DDAE, "      __syncthreads();  // the previous slice is consumed\n", ""),
    ("residual-sign", DDAE, "p.frame_stride + c] - f : f", "p.frame_stride + c] + f : f"),
    (
        "border-last-column",
        FILTERS,
        "if (y < g.s.height && x < g.s.width) plane[",
        "if (y < g.s.height && x < g.s.width - 1) plane[",
    ),
    (
        "uint8-truncation",
        FILTERS,
        "static_cast<uint8_t>(__float2int_rn(fminf(fmaxf(v, 0.f), 255.f)))",
        "static_cast<uint8_t>(int(fminf(fmaxf(v, 0.f), 255.f)))",
    ),
    ("counting-median", FILTERS, "if (less <= half && half < less + equal)", "if (less < half && half < less + equal)"),
]
TIMEOUT_S = 300  # a hang (a lost barrier can deadlock) counts as caught


def build_mutant(name: str, source: str, original: str, broken: str) -> pathlib.Path:
    text = pathlib.Path(source).read_text()
    if text.count(original) != 1:
        sys.exit(f"mutation_check: {name}: {original!r} occurs {text.count(original)} times in {source}, want 1")
    folder = pathlib.Path("build/mutants") / name
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / pathlib.Path(source).name
    copy.write_text(text.replace(original, broken))
    test = "ddae" if source == DDAE else "filters"
    variable = "DDAE_CU" if source == DDAE else "FILTERS_CU"
    binary = folder / f"test_{test}_emulated"
    subprocess.run(
        [
            "make",
            "-s",
            "-f",
            "cpp_tests/emulation/Makefile",
            f"BUILD={folder}",
            "CPU_BUILD=build/emulation/cpu",
            f"{variable}={copy}",
            str(binary),
        ],
        check=True,
    )
    return binary


def main() -> int:
    caught = 0
    for name, source, original, broken in MUTANTS:
        binary = build_mutant(name, source, original, broken)
        try:
            result = subprocess.run([str(binary), "--quick"], capture_output=True, text=True, timeout=TIMEOUT_S)
            failed = result.returncode != 0
            how = (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1][:160]
        except subprocess.TimeoutExpired:
            failed, how = True, f"hung (killed after {TIMEOUT_S} s)"
        caught += failed
        print(f"mutation_check: {name}: {'caught: ' + how if failed else 'NOT CAUGHT'}")
    print(f"mutation_check: {caught} of {len(MUTANTS)} mutants caught")
    return 0 if caught == len(MUTANTS) else 1


if __name__ == "__main__":
    sys.exit(main())
