"""Seismic workflows on ObsPy: Stream/Trace denoising, the ``ddae``/``nldae`` filter plugins, SeedLink real time.

* :func:`denoise` returns a denoised copy of a Stream or Trace (ids, times, gaps and sample counts kept);
  :func:`denoise_array` does the same for a numpy array at a given rate.
* Once pydenoise is installed, ObsPy's own API works: ``tr.filter("ddae")``, ``st.filter("nldae", model=...)``.
* :class:`SeedLinkDenoiser` denoises a SeedLink feed as it arrives; :class:`MiniSeedDayFiles` writes day files.
* :func:`read`, :func:`write` and :func:`plot_comparison` cover files in every ObsPy format.

Training (:mod:`pydenoise.seismic.train`), synthetic events (:mod:`pydenoise.seismic.synth`) and ObsPy's
bundled noise (:mod:`pydenoise.seismic.noise`) are imported where used.

Examples
--------
>>> import obspy
>>> from pydenoise import seismic
>>> st = seismic.denoise(obspy.read())                  # doctest: +SKIP
>>> st.filter("ddae")                                   # doctest: +SKIP
"""

from pydenoise.core.denoiser import resolve_model
from pydenoise.seismic.api import ResamplingWarning, ddae, denoise, denoise_array, nldae
from pydenoise.seismic.io import FORMATS_BY_EXTENSION, MiniSeedDayFiles, output_format, plot_comparison, read, write
from pydenoise.seismic.seedlink import SeedLinkDenoiser

__all__ = [
    "denoise",
    "denoise_array",
    "ddae",
    "nldae",
    "resolve_model",
    "read",
    "write",
    "output_format",
    "plot_comparison",
    "FORMATS_BY_EXTENSION",
    "SeedLinkDenoiser",
    "MiniSeedDayFiles",
    "ResamplingWarning",
]
