"""The fused DDAE op against its peers, all in this process, as one table with ratios.

CPU: torch eager ``nn.Sequential``, ``torch.compile`` (inductor) and ONNX Runtime, vs the fused op with float32
and bf16 weights, at B = 1, 16, 256, 1024, 4096 windows of 256 samples, on the CPU's best kernel path and
forced onto each lower SIMD path (``pydenoise.ops.cpu_path``).
CUDA (when a GPU is present): eager, eager replayed as a CUDA graph, ``torch.compile``, vs the fused op in
fp32 / tf32 / bf16, and the GPU's measured dense bf16 matmul rate for scale.

    python benchmarks/bench_ddae.py            # prints the tables, writes benchmarks/records/bench_ddae.json
    python benchmarks/bench_ddae.py --quick    # fewer repeats, no torch.compile
    make results                               # RESULTS.md and the README's table from the records
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine_header, markdown_table, time_call, write_record  # noqa: E402

import pydenoise  # noqa: E402
from pydenoise.core.nn import DDAE  # noqa: E402

FLOPS_PER_WINDOW = 2 * sum(a * b for a, b in zip(pydenoise.nn.DEFAULT_WIDTHS, pydenoise.nn.DEFAULT_WIDTHS[1:]))
NAME, TITLE = "bench_ddae", "DDAE op (benchmarks/bench_ddae.py)"
OURS = "pydenoise fused fp32"
BF16 = "pydenoise fused bf16 weights"
ORT = "ONNX Runtime"
#: The peers the README's summary compares with (the bf16-weight variant is ours too).
PEERS = (ORT, "torch eager", "torch.compile")


def sequential_of(net: DDAE) -> torch.nn.Sequential:
    """The same network as plain ``Linear``/``ReLU`` layers: what a user would write in torch."""
    layers = []
    for index, layer in enumerate(net.layers):
        layers.append(layer)
        if index + 1 < len(net.layers):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).eval()


def onnx_session(model: torch.nn.Module, threads: int):
    """ONNX Runtime session of ``model`` with a dynamic batch axis, or None when onnxruntime is missing."""
    try:
        import onnxruntime
    except ImportError:
        return None
    path = Path(__file__).with_name("out") / "ddae.onnx"
    path.parent.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (torch.randn(2, 256),),
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}},
            dynamo=True,
            verbose=False,
        )
        program.save(str(path))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def fused_methods(frames, weights, bf16_weights, biases, packed, bf16_packed, suffix: str = "") -> dict:
    """The fused op with float32 and with bf16 weights (both prepacked), named with ``suffix``."""
    return {
        f"{OURS}{suffix}": lambda: pydenoise.ops.ddae_forward(frames, weights, biases, packed_weights=packed),
        f"{BF16}{suffix}": lambda: pydenoise.ops.ddae_forward(frames, bf16_weights, biases, packed_weights=bf16_packed),
    }


def cpu_times(net: DDAE, batches: list[int], compile_peers: bool, min_time: float) -> list[dict]:
    """``{"batch", "method", "seconds"}`` per batch size and method, the fused op first.

    The fused op runs on the default CPU path (the best this CPU has), then forced onto every lower path
    except the scalar one, so one run on a good machine measures every path."""
    sequential = sequential_of(net)
    session = onnx_session(sequential, torch.get_num_threads())
    weights, biases = [w.detach() for w in net.weights()], [b.detach() for b in net.biases()]
    bf16_weights = [w.bfloat16() for w in weights]
    # Weights packed once, as ONNX Runtime prepacks them when it creates its session (and nn.DDAE caches them).
    packed, bf16_packed = pydenoise.ops.ddae_pack_weights(weights), pydenoise.ops.ddae_pack_weights(bf16_weights)
    lower_paths = pydenoise.ops.cpu_paths()[1:-1]
    rows = []
    for batch in batches:
        frames = torch.randn(batch, 256)
        operands = (frames, weights, bf16_weights, biases, packed, bf16_packed)
        methods = fused_methods(*operands) | {"torch eager": lambda: sequential(frames)}
        if compile_peers:
            compiled = torch.compile(sequential, dynamic=False)
            methods["torch.compile"] = lambda: compiled(frames)
        if session is not None:
            array = frames.numpy()
            methods[ORT] = lambda: session.run(None, {"x": array})
        with torch.no_grad():
            rows += [
                {"batch": batch, "method": name, "seconds": time_call(fn, min_time)} for name, fn in methods.items()
            ]
            for path in lower_paths:
                with pydenoise.ops.cpu_path(path):
                    rows += [
                        {"batch": batch, "method": name, "seconds": time_call(fn, min_time)}
                        for name, fn in fused_methods(*operands, suffix=f" ({path} path)").items()
                    ]
    return rows


def table_rows(times: list[dict], reference: str = OURS) -> list[list]:
    """The markdown rows of :func:`cpu_times` / :func:`cuda_times`: µs, windows/s, GFLOP/s, time over ours."""
    ours = {t["batch"]: t["seconds"] for t in times if t["method"] == reference}
    return [
        [
            t["batch"],
            t["method"],
            f"{t['seconds'] * 1e6:.1f}",
            f"{t['batch'] / t['seconds']:,.0f}",
            f"{FLOPS_PER_WINDOW * t['batch'] / t['seconds'] / 1e9:.1f}",
            f"{t['seconds'] / ours[t['batch']]:.2f}×",
        ]
        for t in times
    ]


def summary_rows(times: list[dict]) -> list[dict]:
    """The README's kernel line: the fused fp32 op's µs per call at B = 1 and windows/s at B = 4096 against the
    fastest peer at each (from ``{"batch", "method", "seconds"}`` CPU timings)."""
    seconds = {(t["batch"], t["method"]): t["seconds"] for t in times}
    if (1, OURS) not in seconds or (4096, OURS) not in seconds:
        return []
    peers = [m for m in PEERS if (1, m) in seconds and (4096, m) in seconds]
    if not peers:
        return []
    small = min(peers, key=lambda m: seconds[(1, m)])
    large = min(peers, key=lambda m: seconds[(4096, m)])
    peer_small, peer_large = f"{seconds[(1, small)] * 1e6:.1f} µs", f"{4096 / seconds[(4096, large)]:,.0f} windows/s"
    peer = (
        f"{peer_small} / {peer_large} ({small})"
        if small == large
        else f"{peer_small} ({small}) / {peer_large} ({large})"
    )
    return [
        {
            "domain": "kernels",
            "measure": "DDAE op on the CPU, fp32: µs per call at B=1 / throughput at B=4096",
            "ours": f"{seconds[(1, OURS)] * 1e6:.1f} µs / {4096 / seconds[(4096, OURS)]:,.0f} windows/s",
            "peer": peer,
            "note": "random weights of the default widths, same process; one shared machine (see its record), "
            "not a GPU figure",
        }
    ]


def ort_verdict(times: list[dict]) -> str:
    """#28's CPU targets as speed-ups over ONNX Runtime (its time over ours: fp32 >= 1.3 at B = 1 and >= 1.0 at
    B = 1024, bf16 weights >= 1.5 at B = 1024), or why they are not measured."""
    seconds = {(t["batch"], t["method"]): t["seconds"] for t in times}
    if not any(method == ORT for _, method in seconds):
        return "ONNX Runtime: not installed (`pip install -e .[bench]`), so no speed-up over it is measured."
    checks = [(1, OURS, 1.3), (1024, OURS, 1.0), (1024, BF16, 1.5)]
    parts = [
        f"{method} at B={batch}: {seconds[(batch, ORT)] / seconds[(batch, method)]:.2f}× (target ≥ {target})"
        for batch, method, target in checks
        if (batch, method) in seconds and (batch, ORT) in seconds
    ]
    return "Speed-up over ONNX Runtime (its time ÷ ours): " + "; ".join(parts) + "."


def cuda_times(net: DDAE, batches: list[int], compile_peers: bool, min_time: float) -> tuple[list[dict], float]:
    device = torch.device("cuda")
    net = net.to(device)
    sequential = sequential_of(net)
    bf16_sequential = sequential_of(DDAE(net.widths)).to(device)
    bf16_sequential.load_state_dict(sequential.state_dict())
    bf16_sequential = bf16_sequential.bfloat16()
    weights, biases = [w.detach() for w in net.weights()], [b.detach() for b in net.biases()]
    bf16_weights = [w.bfloat16() for w in weights]
    sync = torch.cuda.synchronize
    rows = []
    for batch in batches:
        frames = torch.randn(batch, 256, device=device)
        bf16_frames = frames.bfloat16()
        graph, graph_out = cuda_graph_of(sequential, frames)
        methods = {
            "pydenoise fused fp32": lambda: pydenoise.ops.ddae_forward(frames, weights, biases),
            "pydenoise fused tf32": lambda: pydenoise.ops.ddae_forward(frames, weights, biases, allow_tf32=True),
            "pydenoise fused bf16": lambda: pydenoise.ops.ddae_forward(frames, bf16_weights, biases),
            "torch eager fp32": lambda: sequential(frames),
            "torch eager bf16": lambda: bf16_sequential(bf16_frames),
            "CUDA graph (eager fp32)": graph.replay,
        }
        if compile_peers:
            compiled = torch.compile(sequential, dynamic=False, mode="max-autotune-no-cudagraphs")
            methods["torch.compile fp32"] = lambda: compiled(frames)
        with torch.no_grad():
            rows += [
                {"batch": batch, "method": name, "seconds": time_call(fn, min_time, sync=sync)}
                for name, fn in methods.items()
            ]
        del graph, graph_out
    return rows, bf16_matmul_tflops()


def cuda_graph_of(module, frames):
    """Capture ``module(frames)`` into a CUDA graph (after a warm-up on a side stream, as torch requires)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.no_grad(), torch.cuda.stream(stream):
        for _ in range(3):
            module(frames)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        out = module(frames)
    return graph, out


def bf16_matmul_tflops() -> float:
    """Measured dense bf16 matmul rate (8192³), the yardstick for the large-batch target."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    seconds = time_call(lambda: a @ b, 0.5, sync=torch.cuda.synchronize)
    return 2 * 8192**3 / seconds / 1e12


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short timings, no torch.compile")
    parser.add_argument("--no-write", action="store_true", help="print only; write no record")
    args = parser.parse_args(argv)
    min_time = 0.1 if args.quick else 0.5
    torch.manual_seed(0)
    net = DDAE().eval()
    header = ["B", "method", "µs/call", "windows/s", "GFLOP/s", "time / fused fp32"]
    cpu = cpu_times(net, [1, 16, 256, 1024, 4096], not args.quick, min_time)
    data = {"flops_per_window": FLOPS_PER_WINDOW, "threads": torch.get_num_threads(), "cpu": cpu}
    body = [
        machine_header({"CPU path": pydenoise.info()["cpu_kernels"]}),
        "",
        f"CPU, {torch.get_num_threads()} threads, float32 input, 256-sample windows, default widths "
        f"({FLOPS_PER_WINDOW / 1e6:.2f} MFLOP/window). Last column: a method's time over the fused op's "
        "(> 1: the fused op is faster).",
        "",
        markdown_table(header, table_rows(cpu)),
        "",
        ort_verdict(cpu),
    ]
    if torch.cuda.is_available() and pydenoise.info()["cuda_kernels"]:
        cuda, tflops = cuda_times(net, [1, 16, 64, 256, 4096, 65536, 262144], not args.quick, min_time)
        data.update(cuda=cuda, cuda_device=torch.cuda.get_device_name(), bf16_matmul_tflops=tflops)
        body += [
            "",
            f"CUDA: {torch.cuda.get_device_name()} · measured dense bf16 matmul: {tflops:.0f} TFLOP/s",
            "",
            markdown_table(header, table_rows(cuda)),
        ]
    else:
        body += ["", "CUDA: no GPU in this run."]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_record(NAME, TITLE, text, data=data, summary=summary_rows(cpu), argv=argv, packages=("onnxruntime",))


if __name__ == "__main__":
    main()
