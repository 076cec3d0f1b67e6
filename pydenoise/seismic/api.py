"""Denoising ObsPy Streams, Traces and arrays, and the ``ddae``/``nldae`` filter plugins.

* :func:`denoise` returns a denoised copy of a Stream or Trace; ids, start times, sampling rates and sample
  counts are kept, gaps (masked samples) stay gaps, and the call is added to ``stats.processing``.
* Once pydenoise is installed, ObsPy's own API works: ``tr.filter("ddae")``, ``st.filter("nldae", model=...)``
  (entry points in the ``obspy.plugin.filter`` group call :func:`ddae` / :func:`nldae`).

A trace sampled at another rate than the model's is resampled to the model's rate and back with
:func:`scipy.signal.resample_poly`, and that is recorded (``stats.processing``, or a warning for the filter
plugin); with ``resample=False`` it is rejected instead. Nothing is resampled silently.
"""

from __future__ import annotations

import os
import warnings
from fractions import Fraction

import numpy as np
import obspy
from scipy.signal import resample_poly

from pydenoise.core.denoiser import Denoiser, resolve_model

__all__ = ["ResamplingWarning", "denoise_array", "denoise", "ddae", "nldae"]


class ResamplingWarning(UserWarning):
    """A trace was resampled to the model's sampling rate and back (by the ``ddae``/``nldae`` filters)."""


def check_rate(sampling_rate) -> float:
    rate = float(sampling_rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"sampling rate must be a positive number of Hz, got {sampling_rate!r}")
    return rate


def as_samples(data) -> np.ndarray:
    """Trace data as a float array (masked arrays stay masked): float32/float64 kept, integers -> float64."""
    if not isinstance(data, np.ndarray):
        raise TypeError(f"data must be a numpy array (trace.data), got {type(data).__name__}")
    if data.ndim != 1:
        raise ValueError(f"data must be 1-D (one trace), got shape {data.shape}")
    if data.size == 0:
        raise ValueError("data has no samples (empty trace)")
    if data.dtype in (np.float32, np.float64):
        values = data
    elif np.issubdtype(data.dtype, np.integer):
        values = data.astype(np.float64)
    else:
        raise TypeError(f"data must hold integers or float32/float64 samples, got dtype {data.dtype}")
    valid = np.ma.getdata(values)[~np.ma.getmaskarray(values)]
    if not np.isfinite(valid).all():
        index = int(np.flatnonzero(~np.isfinite(np.ma.filled(values, 0)))[0])
        raise ValueError(f"data contains NaN or Inf samples (first at index {index}); mask them to mark a gap")
    return values


#: The largest factor a trace is resampled by, up or down, to reach the model's rate (0.1 Hz to 100 Hz is 1000).
MAX_RESAMPLING_FACTOR = 1000


def _resampling_ratio(rate: float, denoiser: Denoiser, resample: bool) -> Fraction | None:
    """``model_rate / rate`` as a small fraction, None when no resampling is needed; raises when not allowed."""
    target = denoiser.sample_rate
    if target is None or np.isclose(rate, target, rtol=1e-9, atol=0):
        return None
    if not resample:
        raise ValueError(
            f"the trace is sampled at {rate:g} Hz but the model expects {target:g} Hz; pass resample=True to "
            "resample it to the model's rate and back (recorded in the processing history), or resample it yourself"
        )
    ratio = Fraction(target / rate).limit_denominator(MAX_RESAMPLING_FACTOR)
    if ratio.numerator > MAX_RESAMPLING_FACTOR:  # (down, the denominator is limited to it by construction)
        raise ValueError(
            f"the trace is sampled at {rate:g} Hz, {float(ratio):g} times below the model's {target:g} Hz: "
            f"resampling up by more than {MAX_RESAMPLING_FACTOR} would multiply its samples (and memory) as much, "
            "for a band the model never sees; use a model trained at its rate"
        )
    if abs(float(ratio) * rate - target) > 1e-9 * target:
        raise ValueError(
            f"cannot resample exactly between {rate!r} Hz and the model's {target:g} Hz (no small integer ratio); "
            "resample the trace yourself"
        )
    return ratio


def _denoise_segment(samples: np.ndarray, denoiser: Denoiser, hop: int | None, ratio: Fraction | None):
    if ratio is None:
        return denoiser.denoise(np.ascontiguousarray(samples), hop=hop)
    up, down = ratio.numerator, ratio.denominator
    at_model_rate = resample_poly(samples, up, down).astype(samples.dtype)
    back = resample_poly(denoiser.denoise(at_model_rate, hop=hop), down, up)
    return back[: samples.size].astype(samples.dtype)  # resample_poly rounds the length up; never short


def denoise_array(data, sampling_rate, model="seismic", hop: int | None = None, resample: bool = True):
    """Denoise one trace's samples; the common core of :func:`denoise` and the ObsPy filter plugins.

    Parameters
    ----------
    data : numpy.ndarray
        1-D samples: integers (counts), float32 or float64; a masked array marks gaps.
    sampling_rate : float
        Hz, positive.
    model : str, path or Denoiser
        Shipped model name, ``.safetensors`` file, or a loaded model.
    hop : int, optional
        Hop between windows (divides the window); default: the model's.
    resample : bool
        Resample to the model's rate and back when the rates differ (else raise ``ValueError``).

    Returns
    -------
    denoised : numpy.ndarray
        Same length; float32 for float32 data, float64 otherwise; masked where ``data`` is masked (each
        contiguous unmasked segment is denoised on its own, so gaps stay gaps).
    note : str or None
        What was resampled, when it was.

    Examples
    --------
    >>> import numpy as np, pydenoise
    >>> from pydenoise.seismic import denoise_array
    >>> m = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0})
    >>> y, note = denoise_array(np.arange(1000, dtype=np.int32), 200.0, model=m)
    >>> y.shape, y.dtype, note
    ((1000,), dtype('float64'), 'resampled 200 Hz -> 100 Hz -> 200 Hz (scipy.signal.resample_poly 1/2)')
    """
    denoiser = resolve_model(model)
    rate = check_rate(sampling_rate)
    values = as_samples(data)
    ratio = _resampling_ratio(rate, denoiser, resample)
    out = values.copy()
    plain = np.ma.getdata(out)
    for segment in np.ma.clump_unmasked(np.ma.asarray(values)):
        plain[segment] = _denoise_segment(np.ma.getdata(values)[segment], denoiser, hop, ratio)
    note = None
    if ratio is not None:
        note = (
            f"resampled {rate:g} Hz -> {denoiser.sample_rate:g} Hz -> {rate:g} Hz "
            f"(scipy.signal.resample_poly {ratio.numerator}/{ratio.denominator})"
        )
    return out, note


def denoise(stream_or_trace, model="seismic", hop: int | None = None, resample: bool = True):
    """Denoise an ObsPy Stream or Trace; returns a new one (the input is not modified).

    Parameters
    ----------
    stream_or_trace : obspy.Stream or obspy.Trace
    model : str, path or Denoiser
        Shipped model name (default ``"seismic"``), ``.safetensors`` file, or a loaded model.
    hop : int, optional
        Hop between windows; default: the model's.
    resample : bool
        When a trace's sampling rate differs from the model's: resample it to the model's rate and back
        (recorded in ``stats.processing``) if True, raise ``ValueError`` if False.

    Returns
    -------
    obspy.Stream or obspy.Trace
        Same ids, start times, sampling rates and sample counts; float data; gaps stay gaps.

    Examples
    --------
    >>> import obspy, pydenoise
    >>> m = pydenoise.Denoiser(pydenoise.nn.DDAE(), config={"sample_rate": 100.0})
    >>> st = pydenoise.seismic.denoise(obspy.read(), model=m)
    >>> [tr.stats.npts for tr in st], st[0].stats.processing[-1].startswith("pydenoise")
    ([3000, 3000, 3000], True)
    """
    if isinstance(stream_or_trace, obspy.Trace):
        return _denoise_trace(stream_or_trace, model, hop, resample)
    if not isinstance(stream_or_trace, obspy.Stream):
        raise TypeError(f"stream_or_trace must be an obspy Stream or Trace, got {type(stream_or_trace).__name__}")
    if len(stream_or_trace) == 0:
        raise ValueError("the stream has no traces")
    return obspy.Stream([_denoise_trace(trace, model, hop, resample) for trace in stream_or_trace])


def _denoise_trace(trace, model, hop, resample):
    from pydenoise.core.version import __version__

    denoiser = resolve_model(model)
    try:
        data, note = denoise_array(trace.data, trace.stats.sampling_rate, denoiser, hop, resample)
    except (ValueError, TypeError) as error:
        raise type(error)(f"trace {trace.id}: {error}") from None
    out = obspy.Trace(data=data, header=trace.stats.copy())
    label = denoiser.name or (os.fspath(model) if not isinstance(model, Denoiser) else "a Denoiser")
    steps = [f"pydenoise {__version__}: denoise(model='{label}', window={denoiser.window}, hop={hop or denoiser.hop})"]
    if note:
        steps.insert(0, f"pydenoise {__version__}: {note}")
    out.stats.processing = list(trace.stats.get("processing", [])) + steps
    return out


def ddae(data, df, model="seismic", hop: int | None = None, resample: bool = True):
    """ObsPy filter plugin: ``tr.filter("ddae", model=..., hop=..., resample=...)``.

    ObsPy calls ``ddae(tr.data, df=tr.stats.sampling_rate, **options)`` and records the call in the trace's
    processing history. Returns the denoised samples, same length (float64 for integer data). Resampling to
    the model's rate and back (when the rates differ) issues a :class:`ResamplingWarning`.

    Examples
    --------
    >>> import obspy
    >>> tr = obspy.read()[0]
    >>> tr.filter("ddae", model="path/to/model.safetensors")  # doctest: +SKIP
    """
    denoised, note = denoise_array(data, df, model, hop, resample)
    if note:
        warnings.warn(f"pydenoise ddae filter: {note}", ResamplingWarning, stacklevel=2)
    return denoised


def nldae(data, df, model="seismic-nldae", hop: int | None = None, resample: bool = True):
    """ObsPy filter plugin for noise-learning models: ``tr.filter("nldae", model=...)``.

    As :func:`ddae`, but the model must be a noise-learning DAE (``residual=True``: clean = x − f(x)).
    """
    denoiser = resolve_model(model)
    if not denoiser.residual:
        raise ValueError(
            f"the nldae filter needs a noise-learning model (residual=True); {denoiser!r} is a plain DDAE: "
            "use tr.filter('ddae', model=...)"
        )
    return ddae(data, df, denoiser, hop, resample)
