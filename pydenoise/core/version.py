"""The installed pydenoise version (``0.1.0+local`` in a source tree built in place), for records and headers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pydenoise")
except PackageNotFoundError:
    __version__ = "0.1.0+local"
