#!/usr/bin/env bash
# The one-shot GPU check (issue #22): on a fresh H100/H200 machine with torch and nvcc (no internet), from the
# repository root:
#
#     bash benchmarks/gpu_check.sh [OUT]      # OUT: the folder for logs, records and summary.md (gpu_check/)
#
# It builds the extension with its CUDA kernels, runs the CUDA tests, compute-sanitizer memcheck and racecheck
# on small shapes (benchmarks/gpu_smoke.py), and the GPU benchmarks: the fused op against torch eager, a CUDA
# graph of it and torch.compile in fp32/tf32/bf16 at B = 1 to 262144 with TFLOP/s against the measured bf16
# matmul rate (bench_ddae.py), and the filters against kornia and OpenCV CUDA where installed
# (bench_filters.py). Records go to OUT/records (PYDENOISE_RECORDS); copy them to benchmarks/records and run
# `make results` to put the figures in RESULTS. Each step has its own time limit and the whole stays under
# GPU_CHECK_SECONDS (default 480); a failed or timed-out step is recorded and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu_check}
BUDGET=${GPU_CHECK_SECONDS:-480}
PYTHON=${PYTHON:-python3}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
export PYDENOISE_RECORDS="$PWD/$OUT/records"
mkdir -p "$OUT/records"
START=$SECONDS
FAILED=0
SANITIZER="$CUDA_HOME/bin/compute-sanitizer"

# step NAME LIMIT COMMAND...: run COMMAND into OUT/NAME.log within LIMIT seconds (less if the budget is short).
step() {
    local name=$1 limit=$2 began=$SECONDS rc
    shift 2
    local left=$((BUDGET - (SECONDS - START)))
    if ((left < 10)); then
        echo "| $name | skipped: the ${BUDGET} s budget is spent | 0 |" >> "$OUT/summary.md"
        FAILED=1
        return
    fi
    ((limit > left)) && limit=$left
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    ((rc == 124)) && rc="timed out after ${limit} s"
    [[ $rc != 0 ]] && FAILED=1
    echo "| $name | $rc | $((SECONDS - began)) |" >> "$OUT/summary.md"
    echo "gpu_check: $name: $rc ($((SECONDS - began)) s)"
}

if ! command -v nvidia-smi > /dev/null || ! nvidia-smi > "$OUT/device.txt" 2>&1; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi missing or failing); nothing to check" >&2
    exit 2
fi
{
    echo "# GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "- device: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "- commit: $(git rev-parse --short HEAD 2> /dev/null || echo 'not a git checkout')"
    echo
    echo "| step | status | seconds |"
    echo "|---|---|---|"
} > "$OUT/summary.md"

step build 300 "$PYTHON" -m pip install --no-build-isolation --no-deps -e .
step cuda-tests 90 "$PYTHON" -m pytest -q -x tests/test_ops.py tests/test_filters.py tests/test_image_dae.py -k cuda
if [[ -x $SANITIZER ]]; then
    step memcheck 90 "$SANITIZER" --tool memcheck --error-exitcode 3 "$PYTHON" benchmarks/gpu_smoke.py
    step racecheck 90 "$SANITIZER" --tool racecheck --error-exitcode 3 "$PYTHON" benchmarks/gpu_smoke.py
else
    echo "| sanitizers | $SANITIZER not found | 0 |" >> "$OUT/summary.md"
    FAILED=1
fi
step bench-ddae 150 "$PYTHON" benchmarks/bench_ddae.py --quick
step bench-filters 60 "$PYTHON" benchmarks/bench_filters.py --device cuda --sizes 512 4096 --repeat 3

{
    echo
    echo "Total $((SECONDS - START)) s of a ${BUDGET} s budget. Logs: $OUT/*.log; records: $OUT/records."
    for record in "$OUT"/records/*.json; do
        [[ -e $record ]] && echo "- record: $(basename "$record")"
    done
} >> "$OUT/summary.md"
cat "$OUT/summary.md"
exit $FAILED
