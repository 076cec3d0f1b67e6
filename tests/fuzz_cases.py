"""Hypothesis strategies and checks for fuzzing the public entry points (issue #27, item 2).

Shared by ``tests/test_fuzz.py`` (a CI-sized run) and ``benchmarks/fuzz_entry_points.py`` (a larger run that
counts inputs per entry point). Every entry point is a function ``check(draw)`` that builds an input with
Hypothesis' ``draw``, calls the library and accepts exactly two outcomes: a result that passes the entry point's
validity check (type, shape, dtype, finite values), or a :data:`CLEAR_ERRORS` exception whose message names the
problem. Anything else (another exception, a crash, a wrong or non-finite result) fails the case.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pydenoise
from pydenoise import audio, image, seismic
from pydenoise.cli import main as cli_main

# What a bad input may raise: the message must then say what is wrong (checked by `expect_valid_or_clear`).
CLEAR_ERRORS = (ValueError, TypeError)

# Every numpy dtype family an array of samples could come in.
DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int16,
    np.int32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
]
FLOAT_DTYPES = [np.float32, np.float64]
# Scales around the float32 and float64 sample limits (1e15, 1e150) and where energies overflow, and denormals.
MAGNITUDES = [1e-310, 1e-30, 1e14, 1.2e15, 1e17, 1e149, 1.2e150, 1e153]


class InvalidOutcome(AssertionError):
    """A fuzz case ended in something other than a valid result or a clear error."""


def expect_valid_or_clear(call, check_result):
    """Run ``call()``; return ``"ok"`` or ``"error"``, raising :class:`InvalidOutcome` for anything else."""
    try:
        result = call()
    except CLEAR_ERRORS as error:
        if len(str(error).strip()) < 10:
            raise InvalidOutcome(f"{type(error).__name__} without a useful message: {error!r}") from error
        return "error"
    check_result(result)
    return "ok"


def require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidOutcome(message)


def finite(values) -> bool:
    values = values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return bool(np.isfinite(values.astype(np.float64, copy=False)).all())


# ---------------------------------------------------------------------------------------------------------------
# Arrays


@st.composite
def sample_arrays(draw, max_rank: int = 3, max_side: int = 700, dtypes=DTYPES):
    """Arrays of any dtype and rank 0..max_rank (sides 0..max_side, few elements), NaN/Inf and extremes
    included, sometimes non-contiguous (a strided or transposed view) or a torch tensor. Half of them are
    plausible (float32/float64, rank 1 or 2), so that the valid paths get as many cases as the refusals."""
    plausible = draw(st.booleans())
    float_dtypes = [dtype for dtype in dtypes if np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize >= 4]
    dtype = np.dtype(draw(st.sampled_from(float_dtypes if plausible and float_dtypes else dtypes)))
    rank = draw(st.integers(1, min(2, max_rank)) if plausible else st.integers(0, max_rank))
    side = st.sampled_from([0, 1, 2, 3, 17, 255, 256, 257, max_side])
    shape = tuple(draw(side) for _ in range(rank))
    while int(np.prod(shape, dtype=np.int64)) > 4000:  # keeps each case fast: shrink the largest side
        largest = int(np.argmax(shape))
        shape = shape[:largest] + (max(1, shape[largest] // 4),) + shape[largest + 1 :]
    elements = None
    if dtype.kind == "f" and draw(st.booleans()):  # mostly ordinary values, sometimes anything (NaN, Inf, 1e308)
        elements = st.floats(-1e3, 1e3, width=dtype.itemsize * 8)
    array = draw(hnp.arrays(dtype, shape, elements=elements))
    if dtype.kind == "f" and draw(st.integers(0, 3)) == 0:  # near the sample limits (frames.SAMPLE_LIMITS), denormals
        with np.errstate(over="ignore", invalid="ignore"):
            array = (array.astype(np.float64) * draw(st.sampled_from(MAGNITUDES))).astype(dtype)
    layout = draw(st.sampled_from(["contiguous", "strided", "transposed", "tensor"]))
    if layout == "strided" and array.ndim >= 1:
        array = np.repeat(array, 2, axis=-1)[..., ::2]
    elif layout == "transposed" and array.ndim >= 2:
        array = np.ascontiguousarray(array.T).T
    elif layout == "tensor" and dtype != np.uint64:  # torch has no general uint64 tensors
        array = torch.from_numpy(np.ascontiguousarray(array))
    return array


def same_kind(result, x) -> None:
    """A result of the same type, shape and dtype as the input, all finite."""
    require(type(result) is type(x), f"result is a {type(result).__name__} for a {type(x).__name__} input")
    require(tuple(result.shape) == tuple(x.shape), f"result shape {tuple(result.shape)} != input {tuple(x.shape)}")
    require(result.dtype == x.dtype, f"result dtype {result.dtype} != input {x.dtype}")
    require(finite(result), "result holds NaN or Inf")


# ---------------------------------------------------------------------------------------------------------------
# Core: Denoiser.denoise and streams


def check_denoise(draw, models: dict) -> str:
    model = models[draw(st.sampled_from(sorted(models)))]
    x = draw(sample_arrays(max_rank=3))
    hop = draw(st.sampled_from([None] * 4 + [0, -1, 3, model.window // 2, model.window, 2 * model.window, 1.5, "8"]))
    return expect_valid_or_clear(lambda: model.denoise(x, hop=hop), lambda out: same_kind(out, x))


def check_stream(draw, models: dict) -> str:
    """Chunks of one layout (some garbage among them): each either accepted or refused clearly; the stream's
    samples, once flushed, equal the offline denoise of everything it accepted."""
    model = models[draw(st.sampled_from(sorted(models)))]
    stream = model.stream()
    channels = draw(st.sampled_from([None, 1, 3]))
    accepted, outputs = [], []
    outcome = "ok"
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.integers(0, 3)) == 0:
            chunk = draw(sample_arrays(max_rank=3, max_side=300))
        else:
            length = draw(st.sampled_from([0, 1, 7, 64, 300]))
            shape = (length,) if channels is None else (channels, length)
            chunk = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e3, 1e3)))
        try:
            outputs.append(np.asarray(stream.process(chunk), dtype=np.float64))
            accepted.append(np.asarray(chunk, dtype=np.float64))
        except CLEAR_ERRORS as error:
            require(len(str(error)) >= 10, f"unclear error {error!r}")
            outcome = "error"
    outputs.append(np.asarray(stream.flush(), dtype=np.float64))
    fed = [a for a in accepted if a.size]
    if not fed:
        return outcome
    streamed = np.concatenate([o for o in outputs if o.size], axis=-1)
    offline = model.denoise(np.concatenate(fed, axis=-1))
    require(streamed.shape == offline.shape, f"stream gave shape {streamed.shape}, offline {offline.shape}")
    require(finite(streamed), "stream output holds NaN or Inf")
    require(np.allclose(streamed, offline, rtol=1e-4, atol=1e-6 * (1 + np.abs(offline).max())), "stream != offline")
    return outcome


# ---------------------------------------------------------------------------------------------------------------
# Images


def _image_inputs(draw):
    """An image (2-D, 3-D with a channel axis, 4-D tensor, or garbage) and the channel_axis to pass."""
    kind = draw(st.sampled_from(["gray", "colour", "tensor", "garbage"]))
    dtype = draw(
        st.sampled_from([np.uint8, np.float32, np.float64] + ([np.int16, np.bool_] if kind == "garbage" else []))
    )
    height, width = draw(st.sampled_from([1, 2, 3, 5, 16, 31])), draw(st.sampled_from([1, 2, 4, 7, 16, 33]))
    finite_only = kind != "garbage" or draw(st.booleans())
    elements = st.floats(0, 1, width=np.dtype(dtype).itemsize * 8) if dtype != np.uint8 and finite_only else None
    if dtype in (np.int16, np.bool_):
        elements = None
    if kind == "gray":
        return draw(hnp.arrays(dtype, (height, width), elements=elements)), None
    if kind == "colour":
        return draw(hnp.arrays(dtype, (height, width, 3), elements=elements)), -1
    if kind == "tensor":
        array = draw(hnp.arrays(dtype, (1, draw(st.sampled_from([1, 3])), height, width), elements=elements))
        return torch.from_numpy(array), draw(st.sampled_from([None, 1]))
    return draw(sample_arrays(max_rank=4, max_side=17)), draw(st.sampled_from([None, -1, 0, 5]))


def _image_result(img):
    def check(out):
        same_kind(out, img)

    return check


@st.composite
def convolution_kernels(draw):
    """Half the time an odd-sized 2-D kernel of ordinary weights, else any float array (NaN, even sides...)."""
    if draw(st.booleans()):
        shape = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
        return draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
    return draw(sample_arrays(max_rank=3, max_side=5, dtypes=FLOAT_DTYPES))


FILTER_CALLS = {
    "box": lambda d, img, axis: image.box(img, d(st.sampled_from([1, 3, (3, 5), 0, 2, -3, 9])), channel_axis=axis),
    "gaussian": lambda d, img, axis: image.gaussian(
        img, d(st.sampled_from([0.5, 1.0, 3.0, 0.0, -1.0, float("nan")])), channel_axis=axis
    ),
    "median": lambda d, img, axis: image.median(img, d(st.sampled_from([1, 3, 5, 9, 4, 0])), channel_axis=axis),
    "bilateral": lambda d, img, axis: image.bilateral(
        img,
        d(st.sampled_from([None, 3, 5, 2])),
        d(st.sampled_from([0.1, 25.0, 0.0])),
        d(st.sampled_from([1.0, 3.0, -1.0])),
        channel_axis=axis,
    ),
    "sharpen": lambda d, img, axis: image.sharpen(
        img, d(st.sampled_from(["reflect101", "replicate", "constant", "wrap", "bogus"])), channel_axis=axis
    ),
}


def check_filter(draw, name: str) -> str:
    img, axis = _image_inputs(draw)
    return expect_valid_or_clear(lambda: FILTER_CALLS[name](draw, img, axis), _image_result(img))


def check_convolve(draw) -> str:
    """As :func:`check_filter`; the result must be finite where no sum can overflow float32 (the filters'
    arithmetic): ``max |pixel| · sum |weight|`` within float32's range (beyond it, IEEE gives ±Inf, as numpy)."""
    img, axis = _image_inputs(draw)
    kernel = draw(convolution_kernels())

    def check(out):
        pixels = np.abs(np.asarray(img, dtype=np.float64))
        weights = np.abs(np.asarray(kernel, dtype=np.float64))
        bound = (pixels.max() if pixels.size else 0.0) * (weights.sum() if weights.size else 0.0)
        if np.asarray(img).dtype == np.uint8 or bound < np.finfo(np.float32).max / 2:
            same_kind(out, img)
        else:
            require(type(out) is type(img) and tuple(out.shape) == tuple(img.shape), "wrong type or shape")

    return expect_valid_or_clear(lambda: image.convolve(img, kernel, channel_axis=axis), check)


def check_image_denoise(draw) -> str:
    img, axis = _image_inputs(draw)
    sigma = draw(st.sampled_from([None, 10.0, 0.05, 0.0, -1.0, float("inf")]))
    data_range = draw(st.sampled_from([None, 1.0, 255.0, 0.0]))
    return expect_valid_or_clear(
        lambda: image.denoise(img, sigma=sigma, data_range=data_range, channel_axis=axis), _image_result(img)
    )


# ---------------------------------------------------------------------------------------------------------------
# Audio and seismic arrays


def check_audio_array(draw) -> str:
    x = draw(sample_arrays(max_rank=3, max_side=800))
    rate = draw(st.sampled_from([16000] * 3 + [8000, 44100, 48000.0, 0, -1, float("nan"), 1e12]))
    return expect_valid_or_clear(lambda: audio.denoise(x, rate), lambda out: same_kind(out, x))


@st.composite
def obspy_streams(draw):
    """obspy Streams of 0..3 traces with any data dtype, length, rate and (hostile) codes."""
    from obspy import Stream, Trace, UTCDateTime

    traces = []
    for _ in range(draw(st.integers(0, 3))):
        data = draw(
            sample_arrays(
                max_rank=2, max_side=1200, dtypes=[np.int32, np.float32, np.float64, np.int64, np.int16, np.complex64]
            )
        )
        data = np.asarray(data).reshape(-1)  # obspy itself refuses other ranks when the Trace is made
        trace = Trace(data=data)
        trace.stats.sampling_rate = draw(st.sampled_from([100.0, 40.0, 20.0, 1.0, 1e-3, 1e5]))
        trace.stats.starttime = UTCDateTime(draw(st.sampled_from([0.0, 1.6e9, -1e9])))
        trace.stats.network = draw(st.sampled_from(["XX", "", "/t", "..", "a b"]))
        traces.append(trace)
    return Stream(traces)


def check_seismic_stream(draw) -> str:
    stream = draw(obspy_streams())

    def check(out):
        require(len(out) == len(stream), f"{len(out)} traces out of {len(stream)}")
        for before, after in zip(stream, out):
            require(after.stats.npts == before.stats.npts, f"{after.id}: {after.stats.npts} != {before.stats.npts}")
            require(finite(after.data), f"{after.id}: NaN or Inf in the output")

    return expect_valid_or_clear(lambda: seismic.denoise(stream.copy()), check)


# ---------------------------------------------------------------------------------------------------------------
# Malformed files: a corpus derived from valid files by truncation and byte flips


@st.composite
def corrupted_bytes(draw, valid: bytes):
    """``valid`` as it is, truncated, with bits flipped, or a header of garbage."""
    data = bytearray(valid)
    mode = draw(st.sampled_from(["intact", "truncate", "flip", "header", "both"]))
    if mode in ("truncate", "both"):
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if mode in ("flip", "both") and data:
        for _ in range(draw(st.integers(1, 16))):
            # bias the flips to the header, where the lengths and codes are
            position = draw(st.integers(0, min(len(data) - 1, draw(st.sampled_from([64, 512, len(data)])))))
            data[position] ^= 1 << draw(st.integers(0, 7))
    if mode == "header":
        garbage = draw(st.binary(min_size=1, max_size=64))
        data[: len(garbage)] = garbage
    return bytes(data)


def valid_seismic_files(folder: Path) -> dict[str, bytes]:
    """A small valid miniSEED and SAC file (from the synthetic generator), as bytes by extension."""
    from obspy import Trace

    trace = Trace(data=(np.random.default_rng(0).standard_normal(1500) * 100).astype(np.int32))
    trace.stats.update({"network": "XX", "station": "FZ", "channel": "HHZ", "sampling_rate": 100.0})
    files = {}
    for ext, fmt in (("mseed", "MSEED"), ("sac", "SAC")):
        path = folder / f"valid.{ext}"
        trace.write(str(path), format=fmt)
        files[ext] = path.read_bytes()
    return files


def valid_wav(folder: Path) -> bytes:
    import soundfile

    path = folder / "valid.wav"
    tone = 0.3 * np.sin(np.arange(4000) * 0.05)
    soundfile.write(str(path), np.stack([tone, tone[::-1]], axis=1), 16000, subtype="PCM_16")
    return path.read_bytes()


def check_model_file(draw, valid: bytes, folder: Path) -> str:
    path = folder / "fuzzed.safetensors"
    path.write_bytes(draw(corrupted_bytes(valid)))

    def check(model):
        require(isinstance(model, pydenoise.Denoiser), f"load returned {type(model).__name__}")
        out = model.denoise(np.zeros(3 * model.window))
        require(finite(out), "a loaded (corrupted) model gives NaN or Inf for a zero trace")

    return expect_valid_or_clear(lambda: pydenoise.load(str(path)), check)


def check_seismic_file(draw, valid: dict[str, bytes], folder: Path) -> str:
    ext = draw(st.sampled_from(sorted(valid)))
    path = folder / f"fuzzed.{ext}"
    path.write_bytes(draw(corrupted_bytes(valid[ext])))

    def read_and_denoise():
        try:
            stream = seismic.read(str(path))
        except CLEAR_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - the outcome is judged below
            raise InvalidOutcome(f"seismic.read raised {type(error).__name__}: {error}") from error
        return seismic.denoise(stream) if len(stream) else stream

    def check(out):
        for trace in out:
            require(finite(trace.data), f"{trace.id}: NaN or Inf in the output")

    return expect_valid_or_clear(read_and_denoise, check)


def check_wav_file(draw, valid: bytes, folder: Path) -> str:
    src, dst = folder / "fuzzed.wav", folder / "fuzzed.clean.wav"
    src.write_bytes(draw(corrupted_bytes(valid)))
    dst.unlink(missing_ok=True)

    def check(_info):
        import soundfile

        out, _rate = soundfile.read(str(dst))
        require(finite(out), "the denoised sound file holds NaN or Inf")

    return expect_valid_or_clear(lambda: audio.denoise_file(str(src), str(dst), announce=lambda *a: None), check)


def check_cli(draw, valid: dict[str, bytes], folder: Path) -> str:
    """``pydenoise denoise`` on a corrupted file: exit 0 with an output, or 1 with a message; no traceback."""
    ext = draw(st.sampled_from(sorted(valid)))
    src = folder / f"cli.{ext}"
    src.write_bytes(draw(corrupted_bytes(valid[ext])))
    out_dir = folder / "cli_out"  # an existing folder: -o names the output file otherwise
    out_dir.mkdir(exist_ok=True)
    for old in out_dir.glob("*"):
        old.unlink()
    argv = ["denoise", str(src), "-o", str(out_dir)] + draw(st.sampled_from([[], ["--hop", "0"], ["--model", "nope"]]))
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            status = cli_main(argv)
    except SystemExit as exit_:  # argparse usage errors
        status = exit_.code
    require(status in (0, 1, 2), f"exit status {status!r}; stderr: {stderr.getvalue()[-500:]}")
    ours = OBSPY_CALLBACK_ERROR.sub("", stderr.getvalue())
    require("Traceback" not in ours, f"a traceback: {ours[-1000:]}")
    if status == 0:
        require(any(out_dir.iterdir()), "exit 0 but no output written")
        return "ok"
    require(len(stderr.getvalue().strip()) >= 10, f"exit {status} without a message")
    return "error"


# ObsPy's libmseed log callback decodes libmseed's messages as UTF-8; a corrupted record's codes are not, and
# Python prints the callback's UnicodeDecodeError as "Exception ignored" (a traceback) while the read goes on.
# ObsPy's, not pydenoise's: left out of the check, and reported (benchmarks/fuzz_entry_points.py).
OBSPY_CALLBACK_ERROR = re.compile(
    r"Exception ignored on calling ctypes callback function: <function _LibmseedWrapper.*?\n"
    r"Traceback \(most recent call last\):\n(?:  .*\n)+UnicodeDecodeError: .*\n"
)


class FileCorpus:
    """The valid files the malformed corpus is derived from, in a temporary folder."""

    def __init__(self):
        self._folder = tempfile.TemporaryDirectory(prefix="pydenoise-fuzz-")
        self.folder = Path(self._folder.name)
        self.seismic = valid_seismic_files(self.folder)
        self.wav = valid_wav(self.folder)
        self.model = (Path(pydenoise.__file__).parent / "weights" / "seismic_dae.safetensors").read_bytes()

    def close(self):
        self._folder.cleanup()


ENTRY_POINTS = (
    "Denoiser.denoise",
    "Denoiser.stream",
    "image.denoise",
    *(f"image.{name}" for name in FILTER_CALLS),
    "image.convolve",
    "audio.denoise",
    "audio.denoise_file",
    "seismic.denoise",
    "seismic.read+denoise (corrupted files)",
    "load (corrupted safetensors)",
    "cli denoise (corrupted files)",
)


def shipped_models() -> dict:
    """The shipped trace models as ``load`` gives them (``seismic`` with its long-period path), by name."""
    return {name: pydenoise.load(name) for name in ("seismic", "seismic_dae", "seismic_mask", "speech")}


def entry_points(models: dict, corpus: FileCorpus) -> dict:
    """Each public entry point's check, ``name -> check(draw) -> "ok" | "error"``; ``models``: what
    ``Denoiser.denoise`` and ``Denoiser.stream`` draw from (:func:`shipped_models`)."""
    checks = {
        "Denoiser.denoise": lambda d: check_denoise(d, models),
        "Denoiser.stream": lambda d: check_stream(d, models),
        "image.denoise": check_image_denoise,
        "audio.denoise": check_audio_array,
        "audio.denoise_file": lambda d: check_wav_file(d, corpus.wav, corpus.folder),
        "seismic.denoise": check_seismic_stream,
        "seismic.read+denoise (corrupted files)": lambda d: check_seismic_file(d, corpus.seismic, corpus.folder),
        "load (corrupted safetensors)": lambda d: check_model_file(d, corpus.model, corpus.folder),
        "cli denoise (corrupted files)": lambda d: check_cli(d, corpus.seismic, corpus.folder),
    }
    for name in FILTER_CALLS:
        checks[f"image.{name}"] = lambda d, name=name: check_filter(d, name)
    checks["image.convolve"] = check_convolve
    assert set(checks) == set(ENTRY_POINTS)
    return checks


os.environ.setdefault("OMP_NUM_THREADS", "1")
