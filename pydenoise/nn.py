"""Model classes and their safetensors I/O.

:class:`DDAE` is the dense denoising autoencoder of the seed documents (Saad & Chen 2020 style); with
``residual=True`` it is the noise-learning variant (Lee et al.): the network predicts the noise and the clean
estimate is ``x - f(x)``. Training runs through plain torch (autograd); inference runs the fused kernel.
"""

from __future__ import annotations

import json
import os
from itertools import pairwise

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pydenoise import ops

__all__ = ["DEFAULT_WIDTHS", "DDAE", "save_model", "load_model"]

#: Layer widths of the seeds' DDAE: a 256-sample window in and out.
DEFAULT_WIDTHS = (256, 512, 256, 128, 128, 256, 512, 256)

_METADATA_KEY = "pydenoise"


class DDAE(torch.nn.Module):
    """Dense denoising autoencoder over fixed-length windows.

    Parameters
    ----------
    widths : sequence of int
        Layer widths, input first; the last must equal the first (the window). ReLU on hidden layers, linear
        output.
    residual : bool
        Noise-learning mode: the network is trained to output the noise, and :meth:`clean` returns
        ``x - f(x)``.

    Examples
    --------
    >>> import torch
    >>> from pydenoise.nn import DDAE
    >>> net = DDAE(residual=True).eval()
    >>> net.clean(torch.zeros(4, 256)).shape
    torch.Size([4, 256])
    """

    def __init__(self, widths=DEFAULT_WIDTHS, residual: bool = False):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or widths[0] != widths[-1] or min(widths) < 1:
            raise ValueError(f"widths must be positive and start and end with the window size, got {widths}")
        self.widths = widths
        self.residual = bool(residual)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in pairwise(widths))

    @property
    def window(self) -> int:
        """Samples per window (the first width)."""
        return self.widths[0]

    def weights(self) -> list[torch.Tensor]:
        """The layers' weight matrices, ``(out, in)`` each."""
        return [layer.weight for layer in self.layers]

    def biases(self) -> list[torch.Tensor]:
        """The layers' bias vectors."""
        return [layer.bias for layer in self.layers]

    def _fused(self, frames: torch.Tensor) -> bool:
        # Autograd needs the differentiable reference; the kernels take float32 only.
        needs_grad = torch.is_grad_enabled() and (frames.requires_grad or self.layers[0].weight.requires_grad)
        return not needs_grad and frames.dtype == torch.float32 and self.layers[0].weight.dtype == torch.float32

    def _run(self, frames: torch.Tensor, residual: bool) -> torch.Tensor:
        if self._fused(frames):
            return ops.ddae_forward(frames, self.weights(), self.biases(), residual=residual)
        return ops.ddae_reference(frames, self.weights(), self.biases(), residual=residual)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """The network's raw output ``f(frames)``: the clean estimate, or the noise estimate when residual."""
        return self._run(frames, residual=False)

    def clean(self, frames: torch.Tensor) -> torch.Tensor:
        """The clean estimate: ``f(frames)``, or ``frames - f(frames)`` in noise-learning mode."""
        return self._run(frames, residual=self.residual)


def save_model(module: DDAE, path: str | os.PathLike, config: dict | None = None) -> None:
    """Write ``module`` to a safetensors file with its architecture and ``config`` in the metadata.

    ``config`` holds what a :class:`~pydenoise.denoiser.Denoiser` needs beyond the weights (sample rate, hop,
    normalisation) and how the model was made (training data, command). Never pickled.
    """
    metadata = dict(config or {})
    metadata.update(kind="ddae", widths=list(module.widths), residual=module.residual)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    save_file(tensors, os.fspath(path), metadata={_METADATA_KEY: json.dumps(metadata)})


def load_model(path: str | os.PathLike) -> tuple[DDAE, dict]:
    """Read a model written by :func:`save_model`; returns ``(module in eval mode, config)``.

    Raises ``ValueError`` naming the file when it is missing, truncated, corrupt or not a pydenoise model.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    try:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as handle:
            raw = (handle.metadata() or {}).get(_METADATA_KEY)
        tensors = load_file(path)
    except (SafetensorError, OSError, RuntimeError) as error:
        raise ValueError(f"model file {path!r} is not a readable safetensors file: {error}") from None
    if raw is None:
        raise ValueError(f"model file {path!r} has no pydenoise metadata (not a pydenoise model)")
    try:
        config = json.loads(raw)
        module = DDAE(config["widths"], residual=config["residual"])
        module.load_state_dict(tensors)
    except (ValueError, KeyError, RuntimeError, TypeError) as error:
        raise ValueError(f"model file {path!r} does not hold a valid DDAE: {error}") from None
    return module.eval(), config
