"""Audio files and arrays: denoise sound with a speech model, resampling explicitly where rates differ.

Files are read and written with soundfile (WAV, FLAC, OGG and everything else libsndfile knows); a file at
another rate than the model's is resampled explicitly (soxr, very high quality) to the model rate and back, and
each channel is denoised on its own.

Examples
--------
>>> from pydenoise import audio
>>> audio.denoise_file("noisy.wav", "clean.wav")               # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from pydenoise.core.denoiser import Denoiser, load

__all__ = ["SPEECH_MODELS", "speech_model_for", "sound_file_info", "resample", "denoise", "denoise_file"]

#: The shipped speech models by native rate (Hz).
SPEECH_MODELS = {16000: "speech_mask16k", 48000: "speech_mask48k"}


def speech_model_for(rate: float) -> str:
    """The default speech model for audio at ``rate`` Hz: the 16 kHz model up to 16 kHz, else the native 48 kHz
    one (audio resampled to 16 kHz would lose every band above 8 kHz).

    Examples
    --------
    >>> speech_model_for(8000), speech_model_for(44100)
    ('speech_mask16k', 'speech_mask48k')
    """
    return SPEECH_MODELS[16000] if rate <= 16000 else SPEECH_MODELS[48000]


def sound_file_info(src):
    """soundfile's ``info`` of ``src``; a ValueError naming the file if it is not a readable sound file."""
    import soundfile

    try:
        return soundfile.info(os.fspath(src))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"src {os.fspath(src)!r} is not a readable sound file: {error}") from None


def resample(x: np.ndarray, rate: float, target: float) -> np.ndarray:
    """Resample a signal from ``rate`` to ``target`` Hz with soxr's very-high-quality filter (offline).

    Parameters
    ----------
    x : numpy.ndarray
        float32 or float64, ``(samples,)`` or ``(channels, samples)``.
    rate, target : float
        Sampling rates in Hz.

    Returns
    -------
    numpy.ndarray
        Same dtype and rank, ``round(samples · target / rate)`` samples, no delay (soxr compensates its
        filter's delay).

    Examples
    --------
    >>> import numpy as np
    >>> resample(np.zeros(44100), 44100, 16000).shape
    (16000,)
    """
    import soxr

    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be 1-D or (channels, samples), got shape {x.shape}")
    if not (rate > 0 and target > 0):
        raise ValueError(f"sampling rates must be positive, got rate={rate} and target={target}")
    if rate == target:
        return x.copy()
    out = soxr.resample(x.T, rate, target, quality="VHQ")  # soxr wants (samples, channels)
    return np.ascontiguousarray(out.T, dtype=x.dtype)


_resample = resample  # for functions whose ``resample`` argument hides the function


def rate_for_model(model: Denoiser, rate: float) -> float:
    return rate if model.sample_rate is None else model.sample_rate


def denoise(
    audio: np.ndarray,
    sample_rate: float,
    model=None,
    hop: int | None = None,
    device=None,
    resample: bool = True,
    announce=None,
) -> np.ndarray:
    """Denoise audio samples at any rate: resampled to the model's rate and back when they differ.

    Parameters
    ----------
    audio : numpy.ndarray
        float32 or float64, ``(frames,)`` or ``(frames, channels)`` as soundfile and sounddevice use; each
        channel is denoised on its own.
    sample_rate : float
        Rate of ``audio`` in Hz.
    model : str, path or Denoiser, optional
        A shipped model name, a ``.safetensors`` path or a loaded :class:`~pydenoise.Denoiser` (default: the
        shipped speech model for ``sample_rate``, :func:`speech_model_for`).
    hop : int, optional
        Hop between windows (default: the model's).
    device : str, optional
        Torch device to compute on.
    resample : bool
        Resample audio at another rate than the model's (default); if False, such audio raises ValueError.
    announce : callable, optional
        Called with a message when the audio is resampled.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``audio``.

    Examples
    --------
    >>> import numpy as np
    >>> from pydenoise import audio, Denoiser, nn
    >>> model = Denoiser(nn.DDAE(), config={"sample_rate": 16000})
    >>> audio.denoise(np.zeros((4410, 2)), 44100, model).shape
    (4410, 2)
    """
    if not isinstance(audio, np.ndarray) or audio.dtype not in (np.float32, np.float64):
        raise TypeError(f"audio must be a float32 or float64 numpy array, got {getattr(audio, 'dtype', type(audio))}")
    if audio.ndim not in (1, 2) or audio.shape[0] == 0:
        raise ValueError(f"audio must be (frames,) or (frames, channels) with frames > 0, got shape {audio.shape}")
    if not sample_rate > 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    model = load(model if model is not None else speech_model_for(sample_rate))
    signal = np.atleast_2d(audio.T)  # (channels, frames)
    rate = rate_for_model(model, sample_rate)
    if rate != sample_rate:
        if not resample:
            raise ValueError(f"sample_rate {sample_rate:g} Hz differs from the model's {rate:g} Hz (resample=False)")
        if announce is not None:
            announce(f"resampling {sample_rate:g} Hz -> {rate:g} Hz for the model and back (soxr VHQ)")
        signal = _resample(signal, sample_rate, rate)
        if signal.shape[1] == 0:
            raise ValueError(
                f"{audio.shape[0]} frames at {sample_rate:g} Hz are less than one sample at the model's {rate:g} Hz"
            )
    cleaned = model.denoise(signal, hop=hop, device=device)
    if rate != sample_rate:
        cleaned = _fit_length(_resample(cleaned, rate, sample_rate), audio.shape[0])
    return np.ascontiguousarray(cleaned.T if audio.ndim == 2 else cleaned[0], dtype=audio.dtype)


def _fit_length(signal: np.ndarray, frames: int) -> np.ndarray:
    """A resampling round trip can end one sample off the original length: trim or repeat the last sample."""
    if signal.shape[1] >= frames:
        return signal[:, :frames]
    return np.concatenate([signal, np.repeat(signal[:, -1:], frames - signal.shape[1], axis=1)], axis=1)


def _output_subtype(source_info, destination: str, announce) -> tuple[str, str]:
    """Format and subtype for ``destination``: the source's subtype where the destination format takes it."""
    import soundfile

    extension = Path(destination).suffix.lstrip(".").upper()
    formats = soundfile.available_formats()
    fmt = {"OGA": "OGG", "OPUS": "OGG", "AIF": "AIFF"}.get(extension, extension)
    if fmt not in formats:
        raise ValueError(
            f"dst {destination!r}: unknown audio file extension; soundfile writes {', '.join(sorted(formats))}"
        )
    if soundfile.check_format(fmt, source_info.subtype):
        return fmt, source_info.subtype
    subtype = soundfile.default_subtype(fmt)
    announce(f"{fmt} cannot store {source_info.subtype}: writing {subtype}")
    return fmt, subtype


def _clip_for(subtype: str, audio: np.ndarray, announce) -> np.ndarray:
    """Integer and compressed subtypes hold [-1, 1]: clip (and say how many samples) instead of wrapping."""
    if subtype in ("FLOAT", "DOUBLE"):
        return audio
    over = int(np.count_nonzero(np.abs(audio) > 1.0))
    if over:
        announce(f"clipping {over} samples beyond full scale for {subtype}")
    return np.clip(audio, -1.0, 1.0)


def denoise_file(
    src, dst, model=None, hop: int | None = None, device=None, resample: bool = True, announce=print
) -> dict:
    """Denoise a sound file into another: any rate, any number of channels, same format where possible.

    Parameters
    ----------
    src, dst : path
        Input and output files (WAV, FLAC, OGG/Vorbis, … — what libsndfile reads and writes). The output's
        format follows ``dst``'s extension and keeps the input's subtype (PCM_16, PCM_24, FLOAT, VORBIS, …)
        when that format can store it, else that format's default subtype (announced).
    model : str, path or Denoiser, optional
        Model (default: the shipped speech model for the file's rate, :func:`speech_model_for`). A file at
        another rate than the model's is resampled to it and back (announced).
    hop : int, optional
        Hop between windows (default: the model's).
    device : str, optional
        Torch device.
    resample : bool
        Resample a file at another rate than the model's (default); if False, such a file raises ValueError.
    announce : callable
        Receives one-line messages (resampling, subtype changes, clipping).

    Returns
    -------
    dict
        ``frames``, ``channels``, ``sample_rate``, ``model_rate``, ``format``, ``subtype``, ``seconds``
        (processing time).

    Examples
    --------
    >>> from pydenoise import audio
    >>> audio.denoise_file("noisy.flac", "clean.flac")         # doctest: +SKIP
    """
    import soundfile

    started = time.perf_counter()
    src, dst = os.fspath(src), os.fspath(dst)
    info = sound_file_info(src)
    try:
        samples, rate = soundfile.read(src, dtype="float64", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ValueError(f"src {src!r} is not a readable sound file: {error}") from None
    if samples.shape[0] == 0:
        raise ValueError(f"src {src!r} holds no audio frames")
    fmt, subtype = _output_subtype(info, dst, announce)
    model = load(model if model is not None else speech_model_for(rate))
    cleaned = denoise(samples, rate, model, hop=hop, device=device, resample=resample, announce=announce)
    soundfile.write(dst, _clip_for(subtype, cleaned, announce), rate, subtype=subtype, format=fmt)
    return {
        "frames": samples.shape[0],
        "channels": samples.shape[1],
        "sample_rate": rate,
        "model_rate": rate_for_model(model, rate),
        "format": fmt,
        "subtype": subtype,
        "seconds": time.perf_counter() - started,
    }
