"""Train the shipped ``speech`` model (pydenoise/weights/speech.safetensors) on synthetic speech.

The shipped model came from this command (17 minutes on a shared 2-core machine; not run in CI), then was
copied to pydenoise/weights/speech.safetensors (the command and data are in its metadata):

    nice -n 10 python scripts/train_speech.py --output build/speech_dae.safetensors --mode dae --steps 3000 \
        --validate-every 250 --threads 1

Data: :mod:`pydenoise.speech_data` (espeak-ng and flite utterances, cached in ``build/speech_corpus.npz``,
mixed with white, pink, babble, hum and fan noise at -5…20 dB). Each noisy window is normalised exactly as
:meth:`pydenoise.Denoiser.denoise_frames` does at inference (mean removed, divided by the standard
deviation) and the clean target is scaled by the same numbers. Adam, MSE weighted by each window's energy
(so the loss is the error energy that SNR and SI-SDR measure), cosine learning-rate decay, a fixed validation
set from held-out utterances, the best model kept.

This loop is deliberately minimal and temporary: it is to move onto :mod:`pydenoise.train` (which takes signal
and noise sources with the same ``sample``/``describe`` interface) once that lands.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time

import numpy as np
import torch

from pydenoise import speech_data
from pydenoise.denoiser import Denoiser
from pydenoise.metrics import si_sdr
from pydenoise.nn import DEFAULT_WIDTHS, DDAE, load_model, save_model


def normalised_pair(noisy: np.ndarray, clean: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Network input, clean target (both scaled by the noisy window's mean and standard deviation) and the
    window's loss weight: its noisy variance (segments have unit RMS), so the loss adds up error energy as
    SNR and SI-SDR do, instead of letting near-silent windows weigh as much as speech."""
    noisy_t, clean_t = torch.from_numpy(noisy), torch.from_numpy(clean)
    mean = noisy_t.mean(dim=1, keepdim=True)
    scale = (noisy_t - mean).square().mean(dim=1, keepdim=True).sqrt()
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return ((noisy_t - mean) / safe).float(), ((clean_t - mean) / safe).float(), scale.square().float()


def weighted_mse(estimate: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """MSE of normalised windows weighted by their energy: the error energy in the original scale."""
    return (weight * (estimate - target).square()).mean() / weight.mean()


def batches(signals, noises, count: int, batch: int, rng) -> list[tuple[torch.Tensor, ...]]:
    """``count`` normalised training batches."""
    return [normalised_pair(*speech_data.training_batch(signals, noises, batch, rng)) for _ in range(count)]


@torch.no_grad()
def validation_loss(module: DDAE, validation) -> float:
    """Mean weighted MSE of the clean estimate over the fixed validation batches."""
    module.eval()
    loss = sum(float(weighted_mse(module.clean(x), y, w)) for x, y, w in validation) / len(validation)
    module.train()
    return loss


def si_sdr_check(module: DDAE, corpus, hop: int, seed: int) -> dict:
    """SI-SDR (dB) before and after denoising held-out utterances in white, pink and babble noise at 0/5 dB."""
    rng = np.random.default_rng([seed, 7])
    denoiser = Denoiser(DDAE(module.widths, residual=module.residual), config={"hop": hop})
    denoiser.module.load_state_dict(module.state_dict())
    noises = speech_data.SpeechNoises(corpus)
    result = {}
    for kind in ("white", "pink", "babble"):
        for snr in (0.0, 5.0):
            before, after = [], []
            for i in range(min(12, len(corpus))):
                clean = corpus.utterance(i).astype(np.float64)
                noise = noises._generate(kind, 1, clean.size, rng)[0]
                noisy = speech_data.mix(clean, noise, snr)
                before.append(si_sdr(clean, noisy))
                after.append(si_sdr(clean, denoiser.denoise(noisy)))
            result[f"{kind}_{snr:g}dB"] = [round(float(np.mean(before)), 2), round(float(np.mean(after)), 2)]
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="pydenoise/weights/speech.safetensors")
    parser.add_argument("--corpus", default="build/speech_corpus.npz", help="cache of the synthetic corpus")
    parser.add_argument("--utterances", type=int, default=600)
    parser.add_argument("--mode", choices=("dae", "nldae"), default="dae")
    parser.add_argument("--init", help="continue from this model file (its widths and mode are kept)")
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hop", type=int, default=64, help="default inference hop stored in the model")
    parser.add_argument("--validate-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    command = "nice -n 10 python " + shlex.join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus = speech_data.prepare_corpus(args.corpus, utterances=args.utterances, seed=args.seed)
    train_corpus, validation_corpus = corpus.split(0.1, seed=args.seed)
    signals = speech_data.SpeechSignals(train_corpus)
    noises = speech_data.SpeechNoises(train_corpus)
    validation = batches(speech_data.SpeechSignals(validation_corpus), speech_data.SpeechNoises(validation_corpus),
                         16, args.batch, np.random.default_rng([args.seed, 3]))
    module = DDAE(DEFAULT_WIDTHS, residual=args.mode == "nldae")
    base_training = None
    if args.init:
        module, base_config = load_model(args.init)
        args.mode, base_training = ("nldae" if module.residual else "dae"), base_config.get("training")
    module.train()
    optimiser = torch.optim.Adam(module.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps, eta_min=args.lr / 50)
    rng = np.random.default_rng([args.seed, 4])
    best, best_step, losses, started = math.inf, 0, [], time.perf_counter()
    for step in range(1, args.steps + 1):
        x, y, weight = normalised_pair(*speech_data.training_batch(signals, noises, args.batch, rng))
        loss = weighted_mse(module.clean(x), y, weight)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if step % args.validate_every == 0 or step == args.steps:
            current = validation_loss(module, validation)
            if current < best:
                best, best_step = current, step
                best_state = {k: v.clone() for k, v in module.state_dict().items()}
            print(f"step {step:6d}  train {np.mean(losses[-args.validate_every:]):.4f}  validation {current:.4f}  "
                  f"best {best:.4f}@{best_step}  {time.perf_counter() - started:6.0f} s", flush=True)
    module.load_state_dict(best_state)
    check = si_sdr_check(module, validation_corpus, args.hop, args.seed)
    print("held-out SI-SDR [noisy, denoised] dB:", check)
    config = {
        "sample_rate": speech_data.SAMPLE_RATE, "hop": args.hop, "window": module.window, "domain": "audio",
        "normalisation": "per-window mean and standard deviation",
        "training": {
            "command": command, "seed": args.seed, "mode": args.mode, "steps": args.steps, "best_step": best_step,
            "batch": args.batch, "lr": args.lr, "loss": "MSE of normalised windows weighted by window energy",
            "validation_loss": best, "snr_db": [-5.0, 20.0],
            "data": f"{corpus.description}; {noises.describe()}; validation: 10% of the utterances held out",
            "held_out_si_sdr_db": check, "seconds": round(time.perf_counter() - started),
        },
    }
    if base_training is not None:
        config["training"]["continued_from"] = {"model": args.init, "training": base_training}
    save_model(module, args.output, config)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
