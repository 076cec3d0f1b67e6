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

from pydenoise.core import ops
from pydenoise.core.model_file import read_header

__all__ = ["DEFAULT_WIDTHS", "DDAE", "ConvDAE", "save_model", "load_model"]

#: Layer widths of the seeds' DDAE: a 256-sample window in and out.
DEFAULT_WIDTHS = (256, 512, 256, 128, 128, 256, 512, 256)

_METADATA_KEY = "pydenoise"

#: Weight dtypes the fused kernels take: ``module.bfloat16()`` halves the weight traffic (math stays float32).
FUSED_WEIGHT_DTYPES = (torch.float32, torch.bfloat16)


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
        self._inference_cache = (None, None)

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

    def inference_tensors(self) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor] | None]:
        """Weights, float32 biases and (on the CPU) packed weights for the fused ops, detached from autograd.

        Handing ``nn.Parameter`` objects to a custom op costs ~3 µs each in the autograd fallback even under
        ``no_grad`` (~45 µs a call for this network, as much as the kernel at B = 1). The weights are detached
        views; the packed weights (:func:`pydenoise.core.ops.ddae_pack_weights`) and bfloat16 biases are copies. All
        are rebuilt when a parameter is replaced (``.to()``, a new dtype) or updated in place (a training
        step, ``load_state_dict``), which the check below sees through the parameters' version counters.
        """
        # Walking ``_parameters`` directly: ``self.parameters()`` costs ~30 µs, this check ~4 µs.
        key = tuple((p.data_ptr(), p._version) for layer in self.layers for p in layer._parameters.values())
        if self._inference_cache[0] != key:
            weights = [w.detach() for w in self.weights()]
            biases = [b.detach().float() for b in self.biases()]
            packed = ops.ddae_pack_weights(weights) if weights[0].device.type == "cpu" else None
            self._inference_cache = (key, (weights, biases, packed))
        return self._inference_cache[1]

    def _fused(self, frames: torch.Tensor) -> bool:
        # Autograd needs the differentiable reference; the kernels take float32 frames, float32 or bf16 weights.
        needs_grad = torch.is_grad_enabled() and (frames.requires_grad or self.layers[0].weight.requires_grad)
        return not needs_grad and frames.dtype == torch.float32 and self.layers[0].weight.dtype in FUSED_WEIGHT_DTYPES

    def _run(self, frames: torch.Tensor, residual: bool) -> torch.Tensor:
        if self._fused(frames):
            weights, biases, packed = self.inference_tensors()
            return ops.ddae_forward(frames, weights, biases, residual=residual, packed_weights=packed)
        return ops.ddae_reference(frames, self.weights(), self.biases(), residual=residual)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """The network's raw output ``f(frames)``: the clean estimate, or the noise estimate when residual."""
        return self._run(frames, residual=False)

    def clean(self, frames: torch.Tensor) -> torch.Tensor:
        """The clean estimate: ``f(frames)``, or ``frames - f(frames)`` in noise-learning mode."""
        return self._run(frames, residual=self.residual)

    def architecture(self) -> dict:
        """What :func:`load_model` needs to rebuild the module (stored in the file's metadata)."""
        return {"kind": "ddae", "widths": list(self.widths), "residual": self.residual}


class ConvDAE(torch.nn.Module):
    """Convolutional denoising autoencoder of the image seeds, for ``(N, C, H, W)`` images in [0, 1].

    Two variants, as in the seed documents:

    * ``"pool"``: per encoder width a 3×3 convolution + ReLU + 2×2 max pooling; the decoder mirrors it with
      3×3 convolution + ReLU + 2× nearest upsampling; a last 3×3 convolution back to the channels.
    * ``"batchnorm"``: per encoder width a strided (2) 3×3 convolution + LeakyReLU (0.2) + BatchNorm; the
      decoder mirrors it with strided 3×3 transposed convolutions; a last 3×3 transposed convolution.

    Parameters
    ----------
    channels : int
        Image channels (1 grayscale, 3 colour).
    filters : sequence of int
        Encoder widths, e.g. ``(32, 64)``; the decoder uses them in reverse.
    variant : {"pool", "batchnorm"}
    latent : int, optional
        Size of a dense latent vector between encoder and decoder (the seeds' "connected latent vector");
        needs ``size``. Without it the network is fully convolutional and takes any image size.
    size : (int, int), optional
        Image height and width, required with ``latent``.
    output : {"sigmoid", "linear"}
        Sigmoid output for [0, 1] data (MSE or binary cross-entropy), or linear.

    Examples
    --------
    >>> import torch
    >>> net = ConvDAE(filters=(32, 64), variant="batchnorm", latent=16, size=(28, 28)).eval()
    >>> net(torch.rand(2, 1, 28, 28)).shape, net.encode(torch.rand(2, 1, 28, 28)).shape
    (torch.Size([2, 1, 28, 28]), torch.Size([2, 16]))
    """

    def __init__(self, channels=1, filters=(32, 64), variant="pool", latent=None, size=None, output="sigmoid"):
        super().__init__()
        filters = tuple(int(f) for f in filters)
        if not filters or min(filters) < 1 or channels < 1:
            raise ValueError(f"channels and filters must be positive, got {channels} and {filters}")
        if variant not in ("pool", "batchnorm"):
            raise ValueError(f"variant must be 'pool' or 'batchnorm', got {variant!r}")
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"output must be 'sigmoid' or 'linear', got {output!r}")
        if latent is not None and size is None:
            raise ValueError("size=(height, width) is needed with a dense latent vector")
        self.config = {
            "channels": int(channels), "filters": list(filters), "variant": variant,
            "latent": None if latent is None else int(latent),
            "size": None if size is None else [int(v) for v in size], "output": output,
        }  # fmt: skip
        self.factor = 2 ** len(filters)
        self.encoder, self.decoder = _conv_stacks(channels, filters, variant)
        self.to_latent = self.from_latent = None
        if latent is not None:
            code_shape = (filters[-1], -(-size[0] // self.factor), -(-size[1] // self.factor))
            self.code_shape = code_shape
            self.to_latent = torch.nn.Linear(code_shape[0] * code_shape[1] * code_shape[2], latent)
            self.from_latent = torch.nn.Linear(latent, self.to_latent.in_features)

    def _padding(self, x: torch.Tensor) -> tuple[int, int]:
        size = self.config["size"]
        if size is not None and list(x.shape[-2:]) != size:
            raise ValueError(f"x must be {size[0]}×{size[1]} pixels for this model, got {tuple(x.shape[-2:])}")
        return (-x.shape[-2] % self.factor, -x.shape[-1] % self.factor)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of ``x``: the latent vector ``(N, latent)``, or the bottleneck feature maps."""
        bottom, right = self._padding(x)
        code = self.encoder(torch.nn.functional.pad(x, (0, right, 0, bottom), mode="replicate"))
        return code if self.to_latent is None else self.to_latent(code.flatten(1))

    def decode(self, code: torch.Tensor, size=None) -> torch.Tensor:
        """Images from codes, cropped to ``size`` (default: the model's size, else the decoded size)."""
        if self.from_latent is not None:
            code = self.from_latent(code).view(-1, *self.code_shape)
        out = self.decoder(code)
        out = torch.sigmoid(out) if self.config["output"] == "sigmoid" else out
        height, width = size or self.config["size"] or out.shape[-2:]
        return out[..., :height, :width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The clean estimate of ``x`` (same shape)."""
        return self.decode(self.encode(x), x.shape[-2:])

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """Same as calling the module: the clean estimate (the name shared with :class:`DDAE`)."""
        return self(x)

    def architecture(self) -> dict:
        """What :func:`load_model` needs to rebuild the module (stored in the file's metadata)."""
        return {"kind": "convdae", **self.config}


def _conv_stacks(channels: int, filters: tuple, variant: str):
    nn = torch.nn
    encoder, decoder = [], []
    widths = (channels, *filters)
    for wide_in, wide_out in pairwise(widths):
        if variant == "pool":
            encoder += [nn.Conv2d(wide_in, wide_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        else:
            encoder += [
                nn.Conv2d(wide_in, wide_out, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.BatchNorm2d(wide_out),
            ]
    for wide_in, wide_out in pairwise(filters[::-1] + filters[:1]):
        if variant == "pool":
            decoder += [nn.Conv2d(wide_in, wide_out, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2)]
        else:
            decoder += [
                nn.ConvTranspose2d(wide_in, wide_out, 3, stride=2, padding=1, output_padding=1),
                nn.LeakyReLU(0.2),
                nn.BatchNorm2d(wide_out),
            ]
    last = nn.Conv2d if variant == "pool" else nn.ConvTranspose2d
    decoder.append(last(filters[0], channels, 3, padding=1))
    return nn.Sequential(*encoder), nn.Sequential(*decoder)


def save_model(module: DDAE | ConvDAE, path: str | os.PathLike, config: dict | None = None) -> None:
    """Write ``module`` to a safetensors file with its architecture and ``config`` in the metadata.

    ``config`` holds what a :class:`~pydenoise.core.denoiser.Denoiser` needs beyond the weights (sample rate, hop,
    normalisation) and how the model was made (training data, command). Never pickled.
    """
    metadata = dict(config or {})
    metadata.update(module.architecture())
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    save_file(tensors, os.fspath(path), metadata={_METADATA_KEY: json.dumps(metadata)})


def load_model(path: str | os.PathLike) -> tuple[DDAE | ConvDAE, dict]:
    """Read a model written by :func:`save_model`; returns ``(module in eval mode, config)``.

    Raises ``ValueError`` naming the file when it is missing, truncated, corrupt or not a pydenoise model. The
    header is checked first (:func:`pydenoise.core.model_file.read_header`), and the architecture it describes
    is built on the ``meta`` device and compared tensor by tensor, so a file claiming huge or mismatched
    tensors is refused before anything of its claimed size is allocated; only safetensors, never pickle.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    try:
        entries, metadata = read_header(path)
    except (ValueError, OSError) as error:
        raise ValueError(f"model file {path!r} is not a readable safetensors file: {error}") from None
    raw = metadata.get(_METADATA_KEY)
    if raw is None:
        raise ValueError(f"model file {path!r} has no pydenoise metadata (not a pydenoise model)")
    try:
        config = json.loads(raw)
        with torch.device("meta"):
            _check_tensors(_module_for(config), entries)
        module = _module_for(config)
        module.load_state_dict(load_file(path))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"model file {path!r} is not a readable safetensors file: {error}") from None
    except (ValueError, KeyError, RuntimeError, TypeError, AttributeError) as error:
        raise ValueError(f"model file {path!r} does not hold a valid model: {error}") from None
    return module.eval(), config


def _module_for(config: dict) -> DDAE | ConvDAE:
    """The (untrained) module the architecture in ``config`` describes."""
    if config.get("kind", "ddae") == "convdae":
        names = ("channels", "filters", "variant", "latent", "size", "output")
        return ConvDAE(**{name: config[name] for name in names})
    return DDAE(config["widths"], residual=config["residual"])


def _check_tensors(module: torch.nn.Module, entries: dict) -> None:
    """The file's tensors must be exactly the module's, shape for shape."""
    expected = {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}
    if set(entries) != set(expected):
        missing, extra = sorted(set(expected) - set(entries)), sorted(set(entries) - set(expected))
        raise ValueError(f"tensors missing: {missing[:5]}, unexpected: {extra[:5]}")
    for name, shape in expected.items():
        if entries[name][1] != shape:
            raise ValueError(
                f"tensor {name!r} has shape {list(entries[name][1])}, the architecture needs {list(shape)}"
            )
