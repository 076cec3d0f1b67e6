"""Audio: denoise sound files, arrays and live microphone input with a speech model (by default the shipped one for
the audio's rate, :func:`speech_model_for`).

* :func:`denoise` and :func:`denoise_file` work offline (any libsndfile format; other rates resampled
  explicitly with soxr and back);
* :func:`live` runs microphone → speakers through a stream with a fixed latency (:func:`list_devices`).

The speech model's training data (:mod:`pydenoise.audio.speech`, :mod:`pydenoise.audio.training_data`) and its
training script (``python -m pydenoise.audio.train``) are imported where used.

Examples
--------
>>> from pydenoise import audio
>>> audio.denoise_file("noisy.wav", "clean.wav")               # doctest: +SKIP
>>> audio.live()                                               # doctest: +SKIP
"""

from pydenoise.audio.live import LiveProcessor, OutputBuffer, StreamResampler, list_devices, live
from pydenoise.audio.offline import SPEECH_MODELS, denoise, denoise_file, resample, speech_model_for

__all__ = [
    "SPEECH_MODELS",
    "speech_model_for",
    "resample",
    "denoise",
    "denoise_file",
    "StreamResampler",
    "OutputBuffer",
    "LiveProcessor",
    "list_devices",
    "live",
]
