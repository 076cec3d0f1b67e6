"""Training data and loops for the image models: the patch DDAE (shipped as ``image``) and :class:`ConvDAE`.

Training images come from a folder (``pydenoise train --images DIR``) or from the images bundled with
scikit-image that load without a network download (:func:`bundled_images`; ``camera`` and ``astronaut`` are
kept out: the tests use them). Noise is added on the fly: white Gaussian, one σ per example drawn uniformly
from ``sigma_range`` on the 0..255 scale, never clipped (the evaluation protocol does not clip either).

The shipped model was made in two runs, the second continuing the first (``--init``)::

    OMP_NUM_THREADS=1 nice -n 10 python -m pydenoise.imagetrain --steps 12000 --batch 512
    OMP_NUM_THREADS=1 nice -n 10 python -m pydenoise.imagetrain --init pydenoise/weights/image.safetensors \
        --steps 80000 --lr 5e-4 --size-exponent 0.5 --out build/image-long.safetensors \
        --checkpoint build/image-train-long
    cp build/image-long.safetensors pydenoise/weights/image.safetensors

(the first on a loaded 2-core machine, resumed from its checkpoint with a shortened cosine horizon: see
``schedule_note`` under ``initialised_from`` in the model's metadata). The second run draws images with
probability ∝ sqrt(crop positions) rather than per pixel: per pixel, ``retina`` and ``hubble_deep_field``
(mostly dark background) took 43 % of the crops. In 3000-step trials from the first model it did slightly
better than per-pixel drawing (validation loss 0.2111 against 0.2117; Set12 +0.01 to +0.02 dB at σ = 15
and 25). The second run took 58 minutes on one thread of a shared 2-core machine; its validation loss went
from 0.2135 to 0.1918. One thread: with the cores shared, two OpenMP threads ran 2.4× slower than one.

The loops are deliberately small (Adam, cosine learning rate, MSE, a fixed validation set, best weights
kept, a resumable checkpoint); the generic trace trainer lives in :mod:`pydenoise.train`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pydenoise.core.denoiser import WEIGHTS_DIR
from pydenoise.core.nn import DDAE, load_model, save_model
from pydenoise.image.patches import PATCH, normalise

__all__ = ["bundled_images", "folder_images", "PatchSampler", "train_patch_dae", "train_conv_dae"]

#: Layer widths of the shipped ``image`` model: the fused op's 256 in and out, no bottleneck (see
#: :func:`train_patch_dae` for why).
IMAGE_WIDTHS = (256, 512, 512, 512, 256)

#: Bundled scikit-image images kept out of training: the tests and examples denoise them.
TEST_IMAGES = ("camera", "astronaut")

#: Bundled images that load offline (no pooch download); ``cat`` is ``chelsea`` again and is left out.
BUNDLED = (
    "brick", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
    "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
    "rocket", "shepp_logan_phantom", "binary_blobs", "text", "stereo_motorcycle",
)  # fmt: skip

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


def _gray255(image: np.ndarray) -> np.ndarray:
    """Any bundled image as a float32 grayscale array on the 0..255 scale."""
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.float32) * 255.0
    elif np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32) * (255.0 if image.max() <= 1.0 else 1.0)
    else:
        image = image.astype(np.float32)
    if image.ndim == 3:  # colour (RGB or RGBA): luma weights of ITU-R BT.601
        image = image[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return image


def _half(image: np.ndarray) -> np.ndarray:
    """2×2 area average: a half-resolution copy with finer detail per pixel (like BSD photographs)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return image[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def bundled_images(names=BUNDLED, half_scale: bool = True) -> list[np.ndarray]:
    """Grayscale 0..255 float32 copies of scikit-image's offline bundled images (never the test images).

    With ``half_scale``, images at least 400 pixels on their short side are added again at half resolution.
    """
    import skimage.data

    clash = sorted(set(names) & set(TEST_IMAGES))
    if clash:
        raise ValueError(f"names must not include the test images {clash}")
    images = []
    for name in names:
        loaded = getattr(skimage.data, name)()
        for image in loaded[:2] if name == "stereo_motorcycle" else [loaded]:  # left and right views
            gray = _gray255(image)
            images.append(gray)
            if half_scale and min(gray.shape) >= 400:
                images.append(_half(gray))
    return images


def folder_images(directory: str | os.PathLike) -> list[np.ndarray]:
    """Every image file in ``directory`` (recursively) as a grayscale 0..255 float32 array."""
    import skimage.io

    paths = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"images: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {directory!r}")
    images = []
    for path in paths:
        image = skimage.io.imread(path)
        if image.dtype == np.uint16:
            image = image / 257.0
        images.append(_gray255(image))
    return images


class PatchSampler:
    """Random square crops of a set of images with random flips and 90° rotations, vectorised.

    An image is drawn with probability proportional to its number of crop positions raised to
    ``size_exponent``: 1 (the default) makes every pixel of the training set equally likely, 0 every image,
    0.5 lets large images count more but not in proportion (so that one huge image does not dominate).

    Parameters
    ----------
    images : list of numpy.ndarray
        2-D float arrays (0..255), each at least ``size`` pixels on both sides.
    size : int
        Crop side.
    seed : int
        Seed of the sampler's own generator.
    size_exponent : float
        See above.
    """

    def __init__(self, images, size: int = PATCH, seed: int = 0, size_exponent: float = 1.0):
        images = [np.ascontiguousarray(im, dtype=np.float32) for im in images if min(im.shape) >= size]
        if not images:
            raise ValueError(f"images: none is at least {size}×{size} pixels")
        self.size = size
        self.pixels = torch.from_numpy(np.concatenate([im.ravel() for im in images]))
        self.offsets = torch.tensor(np.cumsum([0] + [im.size for im in images[:-1]]))
        self.heights = torch.tensor([im.shape[0] for im in images])
        self.widths = torch.tensor([im.shape[1] for im in images])
        positions = (self.heights - size + 1) * (self.widths - size + 1)
        weights = positions.double() ** size_exponent
        self.probabilities = weights / weights.sum()
        self.generator = torch.Generator().manual_seed(seed)

    def crops(self, count: int) -> torch.Tensor:
        """``(count, size, size)`` float32 crops, each randomly flipped and rotated (8 orientations)."""
        g, size = self.generator, self.size
        which = torch.multinomial(self.probabilities, count, replacement=True, generator=g)
        top = (torch.rand(count, generator=g) * (self.heights[which] - size + 1)).long()
        left = (torch.rand(count, generator=g) * (self.widths[which] - size + 1)).long()
        steps = torch.arange(size)
        rows = (top[:, None] + steps)[:, :, None] * self.widths[which][:, None, None]
        index = self.offsets[which][:, None, None] + rows + (left[:, None] + steps)[:, None, :]
        crops = self.pixels[index]
        flips = torch.rand(3, count, generator=g) < 0.5
        crops = torch.where(flips[0, :, None, None], crops.transpose(1, 2), crops)
        crops = torch.where(flips[1, :, None, None], crops.flip(1), crops)
        return torch.where(flips[2, :, None, None], crops.flip(2), crops)


def noisy_pair(clean: torch.Tensor, sigma_range, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(noisy, sigma)``: white Gaussian noise with one σ per example drawn uniformly from ``sigma_range``."""
    low, high = sigma_range
    shape = (clean.shape[0],) + (1,) * (clean.dim() - 1)
    sigma = low + (high - low) * torch.rand(shape, generator=generator)
    return clean + sigma * torch.randn(clean.shape, generator=generator), sigma


def _patch_batch(sampler: PatchSampler, count: int, sigma_range, generator):
    """Normalised noisy patches and their normalised clean targets, as :func:`pydenoise.image.denoise` sees them."""
    clean = sampler.crops(count).reshape(count, -1)
    noisy, sigma = noisy_pair(clean, sigma_range, generator)
    inputs, mean = normalise(noisy, sigma)
    return inputs, ((clean - mean) / sigma).to(torch.float32)


def _cosine_lr(step: int, steps: int, peak: float, warmup: int = 200) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))


def train_patch_dae(
    images,
    out: str | os.PathLike,
    steps: int = 12000,
    batch: int = 512,
    lr: float = 1e-3,
    sigma_range=(5.0, 50.0),
    widths=None,
    residual: bool = True,
    validation_images=None,
    checkpoint: str | os.PathLike | None = None,
    init: str | os.PathLike | None = None,
    size_exponent: float = 1.0,
    seed: int = 0,
    command: str | None = None,
    log=print,
) -> DDAE:
    """Train the patch DDAE on random 16×16 crops of ``images`` and save the best weights to ``out``.

    The loss is the MSE of the clean estimate in normalised units (``(x - mean(y)) / σ``); for the
    noise-learning (residual) network that is the MSE of its noise estimate. The default widths
    (:data:`IMAGE_WIDTHS`) have no bottleneck: through the trace model's 128-wide bottleneck a residual
    network's noise estimate spans at most 128 of a patch's 256 dimensions (per linear region), so it
    cannot remove more than about half of white noise; side by side (1000 steps of 512 patches) the
    bottleneck-free residual net reached a validation loss of 0.39 where the seeds' widths reached 0.87
    (clean output) or worse (residual). Layers start from He initialisation (the last one scaled by 0.1,
    so training starts near the identity), which trains this ReLU stack much faster than torch's default.
    The validation set is fixed crops of ``validation_images`` (else of ``images``); ``checkpoint`` (a
    directory) makes the run resumable. ``init`` (a saved patch model of the same widths) starts from its
    weights instead, with a fresh optimiser and schedule: a longer run that continues a shorter one; the
    earlier model's own record (command, steps, notes) is kept under ``initialised_from``.
    ``size_exponent`` weighs the training images (see :class:`PatchSampler`).
    """
    torch.manual_seed(seed)
    net = DDAE(widths or IMAGE_WIDTHS, residual=residual)
    for layer in net.layers:
        torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        torch.nn.init.zeros_(layer.bias)
    with torch.no_grad():
        net.layers[-1].weight.mul_(0.1)
    history = _initialise(net, init) if init is not None else {}
    generator = torch.Generator().manual_seed(seed + 1)
    sampler = PatchSampler(images, PATCH, seed=seed + 2, size_exponent=size_exponent)
    val_sampler = PatchSampler(validation_images or images, PATCH, seed=seed + 3)
    validation = _patch_batch(val_sampler, 8192, sigma_range, torch.Generator().manual_seed(seed + 4))
    config = {
        "domain": "image",
        "patch": PATCH,
        "stride": 3,
        "normalisation": "patch mean removed, divided by the noise sigma",
        "sigma_range_255": list(sigma_range),
        "training_data": "scikit-image bundled images except camera and astronaut, flips and rotations",
        "command": command or "",
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "size_exponent": size_exponent,
        **history,
    }
    return _fit(
        net,
        lambda: _patch_batch(sampler, batch, sigma_range, generator),
        validation,
        torch.nn.functional.mse_loss,
        steps,
        lr,
        lambda extra: save_model(net, out, {**config, **extra}),
        checkpoint,
        log,
    )


def _initialise(net: DDAE, init) -> dict:
    """Copy the weights of the saved patch model ``init`` into ``net``; its record, for the new metadata."""
    saved, config = load_model(init)
    if not isinstance(saved, DDAE) or saved.architecture() != net.architecture():
        raise ValueError(
            f"init: {os.fspath(init)!r} is not a patch model with widths {list(net.widths)} and residual={net.residual}"
        )
    net.load_state_dict(saved.state_dict())
    kept = ("command", "steps", "batch", "lr", "schedule_note", "trained_steps", "validation_loss", "initialised_from")
    return {"initialised_from": {key: config[key] for key in kept if key in config}}


def train_conv_dae(
    net,
    images,
    out: str | os.PathLike,
    steps: int = 2000,
    batch: int = 64,
    crop: int = 64,
    lr: float = 1e-3,
    sigma_range=(5.0, 50.0),
    loss: str = "mse",
    validation_images=None,
    checkpoint: str | os.PathLike | None = None,
    seed: int = 0,
    command: str | None = None,
    log=print,
):
    """Train a :class:`~pydenoise.core.nn.ConvDAE` on random ``crop``-pixel crops of ``images`` (0..255 grayscale).

    The same loop as :func:`train_patch_dae`: images scaled to [0, 1], noise σ (0..255 scale) drawn per
    crop, target the clean crop; ``loss`` is ``"mse"`` or ``"bce"`` (binary cross-entropy, sigmoid output
    only). A model with a fixed ``size`` is trained on crops of that size.

    Examples
    --------
    >>> from skimage.data import lfw_subset
    >>> from pydenoise.nn import ConvDAE
    >>> faces = list(lfw_subset() * 255)
    >>> net = ConvDAE(variant="batchnorm", latent=16, size=(25, 25))
    >>> train_conv_dae(net, faces, "faces.safetensors", steps=500)   # doctest: +SKIP
    """
    if loss not in ("mse", "bce"):
        raise ValueError(f"loss must be 'mse' or 'bce', got {loss!r}")
    if loss == "bce" and net.config["output"] != "sigmoid":
        raise ValueError("loss='bce' needs a sigmoid output")
    size = net.config["size"][0] if net.config["size"] else crop
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    sampler = PatchSampler(images, size, seed=seed + 2)
    val_sampler = PatchSampler(validation_images or images, size, seed=seed + 3)

    def conv_batch(source, count, gen):
        clean = source.crops(count)[:, None] / 255.0
        noisy, _ = noisy_pair(clean, (sigma_range[0] / 255.0, sigma_range[1] / 255.0), gen)
        return noisy, clean

    validation = conv_batch(val_sampler, 256, torch.Generator().manual_seed(seed + 4))
    objective = torch.nn.functional.mse_loss if loss == "mse" else torch.nn.functional.binary_cross_entropy
    config = {"domain": "image", "sigma_range_255": list(sigma_range), "loss": loss, "command": command or ""}
    return _fit(
        net,
        lambda: conv_batch(sampler, batch, generator),
        validation,
        objective,
        steps,
        lr,
        lambda extra: save_model(net, out, {**config, **extra}),
        checkpoint,
        log,
    )


def _fit(net, make_batch, validation, objective, steps, lr, save, checkpoint, log, every: int = 250):
    """Adam with a cosine learning rate; every ``every`` steps validate, keep the best, checkpoint."""
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    state = {"step": 0, "best": float("inf"), "seconds": 0.0}
    if checkpoint is not None:
        state = _resume(Path(checkpoint), net, optimiser, state)
    started = time.time() - state["seconds"]
    while state["step"] < steps:
        step = state["step"]
        for group in optimiser.param_groups:
            group["lr"] = _cosine_lr(step, steps, lr)
        net.train()
        inputs, targets = make_batch()
        loss = objective(net.clean(inputs), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        state["step"] = step + 1
        if state["step"] % every == 0 or state["step"] == steps:
            net.eval()
            with torch.no_grad():
                val = objective(net.clean(validation[0]), validation[1]).item()
            state["seconds"] = time.time() - started
            if val < state["best"]:
                state["best"] = val
                save({"validation_loss": val, "trained_steps": state["step"]})
            log(
                f"step {state['step']}/{steps} loss {loss.item():.4f} val {val:.4f} best {state['best']:.4f} "
                f"({state['seconds']:.0f} s)"
            )
            if checkpoint is not None:
                _save_checkpoint(Path(checkpoint), net, optimiser, state)
    return net.eval()


def _save_checkpoint(directory: Path, net, optimiser, state: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"net": net.state_dict(), "optimiser": optimiser.state_dict()}, directory / "last.pt.tmp")
    os.replace(directory / "last.pt.tmp", directory / "last.pt")
    (directory / "state.json").write_text(json.dumps(state))


def _resume(directory: Path, net, optimiser, state: dict) -> dict:
    if not (directory / "last.pt").is_file():
        return state
    saved = torch.load(directory / "last.pt", weights_only=True)
    net.load_state_dict(saved["net"])
    optimiser.load_state_dict(saved["optimiser"])
    return json.loads((directory / "state.json").read_text())


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pydenoise train --images DIR`` (added to the ``train`` sub-command's parser)."""
    group = parser.add_argument_group("images mode")
    group.add_argument("--images", metavar="DIR", help="train an image model on every image file under DIR")
    group.add_argument(
        "--arch",
        choices=("conv", "patch"),
        default="conv",
        help="conv: ConvDAE (default); patch: the 16×16 patch DDAE used by pydenoise.image.denoise",
    )
    group.add_argument("--variant", choices=("pool", "batchnorm"), default="pool", help="ConvDAE variant")
    group.add_argument("--filters", type=int, nargs="+", default=[32, 64], help="ConvDAE encoder widths")
    group.add_argument("--latent", type=int, default=None, help="ConvDAE dense latent size (fixes the crop size)")
    group.add_argument("--crop", type=int, default=64, help="ConvDAE training crop side in pixels (default 64)")
    group.add_argument("--loss", choices=("mse", "bce"), default="mse", help="ConvDAE loss")
    group.add_argument("--steps", type=int, default=2000, help="optimiser steps (default 2000)")
    group.add_argument(
        "--sigma",
        type=float,
        nargs=2,
        default=(5.0, 50.0),
        metavar=("LOW", "HIGH"),
        help="training noise σ range, 0..255 scale (default 5 50)",
    )
    group.add_argument("--checkpoint", metavar="DIR", help="resumable checkpoint directory")


def run_image_training(args) -> int:
    """Run ``pydenoise train --images DIR`` from parsed arguments; returns the exit status."""
    from pydenoise.core.nn import ConvDAE

    images = folder_images(args.images)
    options = {key: value for key, value in vars(args).items() if key not in ("func", "command", "images", "output")}
    command = f"pydenoise train --images {args.images} -o {args.output} " + " ".join(
        f"--{key.replace('_', '-')} {' '.join(map(str, value)) if isinstance(value, (list, tuple)) else value}"
        for key, value in options.items()
        if value is not None
    )
    common = dict(
        steps=args.steps,
        lr=args.lr,
        sigma_range=tuple(args.sigma),
        checkpoint=args.checkpoint,
        seed=args.seed,
        command=command,
        log=lambda line: print(line, flush=True),
    )
    if args.arch == "patch":
        train_patch_dae(images, args.output, batch=args.batch or 512, **common)
    else:
        size = None if args.latent is None else (args.crop, args.crop)
        net = ConvDAE(1, args.filters, args.variant, latent=args.latent, size=size)
        train_conv_dae(net, images, args.output, batch=args.batch or 64, crop=args.crop, loss=args.loss, **common)
    print(f"model written to {args.output}")
    return 0


def main(argv=None) -> int:
    """Train the shipped ``image`` model on the bundled scikit-image images (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m pydenoise.imagetrain", description=main.__doc__)
    parser.add_argument("--out", default=str(WEIGHTS_DIR / "image.safetensors"))
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument(
        "--size-exponent",
        type=float,
        default=1.0,
        help="draw images with probability ∝ crop positions ** this (default 1: every pixel alike)",
    )
    parser.add_argument("--init", help="start from this saved patch model's weights (e.g. the shipped one)")
    parser.add_argument("--checkpoint", default="build/image-train", help="resumable checkpoint directory")
    args = parser.parse_args(argv)
    names = [n for n in BUNDLED if n != "coffee"]
    train_patch_dae(
        bundled_images(names),
        args.out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        validation_images=bundled_images(["coffee"], half_scale=False),
        checkpoint=args.checkpoint,
        init=args.init,
        size_exponent=args.size_exponent,
        command="python -m pydenoise.imagetrain " + " ".join(argv if argv is not None else sys.argv[1:]),
        log=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
