"""The shared core: the fused-op and filter bindings, the models, framing, streaming and metrics.

Everything the domains (:mod:`pydenoise.seismic`, :mod:`pydenoise.audio`, :mod:`pydenoise.image`) share lives
here, and nothing here imports a domain. The modules are imported where used; this package imports none.
"""
