"""The fused DDAE op against its peers, all in this process, as one table with ratios.

CPU: torch eager ``nn.Sequential``, ``torch.compile`` (inductor) and ONNX Runtime, vs the fused op with float32
and bf16 weights, at B = 1, 16, 256, 4096 windows of 256 samples.
CUDA (when a GPU is present): eager, eager replayed as a CUDA graph, ``torch.compile``, vs the fused op in
fp32 / tf32 / bf16, and the GPU's measured dense bf16 matmul rate for scale.

    python benchmarks/bench_ddae.py            # prints the tables and writes them into benchmarks/RESULTS.md
    python benchmarks/bench_ddae.py --quick    # fewer repeats, no torch.compile
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import machine_header, markdown_table, time_call, write_section  # noqa: E402

import pydenoise  # noqa: E402
from pydenoise.core.nn import DDAE  # noqa: E402

FLOPS_PER_WINDOW = 2 * sum(a * b for a, b in zip(pydenoise.nn.DEFAULT_WIDTHS, pydenoise.nn.DEFAULT_WIDTHS[1:]))


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


def cpu_rows(net: DDAE, batches: list[int], compile_peers: bool, min_time: float) -> list[list]:
    sequential = sequential_of(net)
    session = onnx_session(sequential, torch.get_num_threads())
    weights, biases = [w.detach() for w in net.weights()], [b.detach() for b in net.biases()]
    bf16_weights = [w.bfloat16() for w in weights]
    # Weights packed once, as ONNX Runtime prepacks them when it creates its session (and nn.DDAE caches them).
    packed, bf16_packed = pydenoise.ops.ddae_pack_weights(weights), pydenoise.ops.ddae_pack_weights(bf16_weights)
    rows = []
    for batch in batches:
        frames = torch.randn(batch, 256)
        methods = {
            "pydenoise fused fp32": lambda: pydenoise.ops.ddae_forward(frames, weights, biases, packed_weights=packed),
            "pydenoise fused bf16 weights": lambda: pydenoise.ops.ddae_forward(
                frames, bf16_weights, biases, packed_weights=bf16_packed
            ),
            "torch eager": lambda: sequential(frames),
        }
        if compile_peers:
            compiled = torch.compile(sequential, dynamic=False)
            methods["torch.compile"] = lambda: compiled(frames)
        if session is not None:
            array = frames.numpy()
            methods["ONNX Runtime"] = lambda: session.run(None, {"x": array})
        with torch.no_grad():
            times = {name: time_call(fn, min_time) for name, fn in methods.items()}
        rows += table_rows(batch, times, reference="pydenoise fused fp32")
    return rows


def table_rows(batch: int, times: dict[str, float], reference: str) -> list[list]:
    ours = times[reference]
    return [
        [
            batch,
            name,
            f"{seconds * 1e6:.1f}",
            f"{batch / seconds:,.0f}",
            f"{FLOPS_PER_WINDOW * batch / seconds / 1e9:.1f}",
            f"{seconds / ours:.2f}×",
        ]
        for name, seconds in times.items()
    ]


def cuda_rows(net: DDAE, batches: list[int], compile_peers: bool, min_time: float) -> tuple[list[list], float]:
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
            times = {name: time_call(fn, min_time, sync=sync) for name, fn in methods.items()}
        rows += table_rows(batch, times, reference="pydenoise fused fp32")
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
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    min_time = 0.1 if args.quick else 0.5
    torch.manual_seed(0)
    net = DDAE().eval()
    header = ["B", "method", "µs/call", "windows/s", "GFLOP/s", "time / fused fp32"]
    facts = {"torch": torch.__version__, "pydenoise": pydenoise.__version__, "threads": torch.get_num_threads()}
    try:
        import onnxruntime

        facts["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    body = [
        machine_header(facts),
        "",
        "CPU, float32 input, 256-sample windows, default widths "
        f"({FLOPS_PER_WINDOW / 1e6:.2f} MFLOP/window). Last column: a method's time over the fused op's "
        "(> 1: the fused op is faster).",
        "",
        markdown_table(header, cpu_rows(net, [1, 16, 256, 4096], not args.quick, min_time)),
    ]
    if torch.cuda.is_available() and pydenoise.info()["cuda_kernels"]:
        rows, tflops = cuda_rows(net, [1, 16, 64, 256, 4096, 65536, 262144], not args.quick, min_time)
        body += [
            "",
            f"CUDA: {torch.cuda.get_device_name()} · measured dense bf16 matmul: {tflops:.0f} TFLOP/s",
            "",
            markdown_table(header, rows),
        ]
    else:
        body += ["", "CUDA: no GPU in this run."]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("DDAE op (benchmarks/bench_ddae.py)", text + "\n\nCommand: `python benchmarks/bench_ddae.py`")


if __name__ == "__main__":
    main()
