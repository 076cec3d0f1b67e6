"""Train the spectral-mask speech models (pydenoise/audio/spectral_training.py) on the protocol's TRAIN split
and synthetic voices, and keep the epoch with the best mean SI-SDR on VALIDATION (every family and SNR of
eval_audio_heldout.py, on the validation speaker and tracks). The test split is never read here.

Speech: the TRAIN split's real prompts and the synthetic corpus of ``make speech-corpus`` (build/speech_corpus.npz,
espeak-ng and flite voices) less the flite voices modelled on CMU ARCTIC speakers (the protocol's
EXCLUDED_TTS_VOICES); recorded noise: the TRAIN split's music tracks.

    python benchmarks/train_speech_mask.py --rate 16000     # pydenoise/weights/speech_mask16k.safetensors
    python benchmarks/train_speech_mask.py --rate 48000     # pydenoise/weights/speech_mask48k.safetensors
    python benchmarks/train_speech_mask.py --rate 16000 -o /tmp/m.safetensors --epochs 1 --rows 64   # a quick try
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import eval_audio_heldout as heldout  # noqa: E402
import eval_audio_protocol as protocol  # noqa: E402
from train_seismic_mask import write_log  # noqa: E402

from pydenoise.audio.spectral_training import SpeechMixer, train  # noqa: E402
from pydenoise.audio.speech import prepare_corpus  # noqa: E402

WEIGHTS = HERE.parent / "pydenoise" / "weights"
CORPUS = HERE.parent / "build" / "speech_corpus.npz"


def training_speech(synthetic: int) -> tuple[list[np.ndarray], str]:
    real, _ = heldout.split_audio("train")
    corpus = prepare_corpus(CORPUS, utterances=synthetic)
    kept = [i for i, s in enumerate(corpus.speakers) if s not in protocol.EXCLUDED_TTS_VOICES]
    utterances = list(real.values()) + [corpus.utterance(i).astype(np.float64) for i in kept]
    voices = sorted({corpus.speakers[i] for i in kept})
    text = (
        f"speech: {len(real)} real prompts of the TRAIN split (asterisk en_US Allison) and {len(kept)} synthetic "
        f"utterances ({len(voices)} voices, flite awb/rms/slt left out); noise: white, pink, brown, babble, hum, "
        "fan, the TRAIN split's music"
    )
    return utterances, text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, choices=(16000, 48000), required=True)
    parser.add_argument("-o", "--output", help="default: pydenoise/weights/speech_mask{16,48}k.safetensors")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rows", type=int, default=1200, help="training rows of --seconds each")
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--synthetic", type=int, default=600, help="utterances of the synthetic corpus")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    utterances, description = training_speech(args.synthetic)
    _, train_noise = heldout.split_audio("train")
    validation_clips, validation_noise = heldout.split_audio("validation")
    name = f"speech_mask{args.rate // 1000}k"
    output = Path(args.output or WEIGHTS / f"{name}.safetensors")
    _, metadata, log = train(
        SpeechMixer(utterances, train_noise, args.rate),
        description,
        output,
        epochs=args.epochs,
        rows=args.rows,
        seconds=args.seconds,
        learning_rate=args.learning_rate,
        validate=lambda model: heldout.si_sdr_score(model, validation_clips, validation_noise),
        argv=["python", "benchmarks/train_speech_mask.py", *(argv if argv is not None else sys.argv[1:])],
    )
    log_path = HERE / f"{name}_training_log.csv" if args.output is None else output.with_suffix(".csv")
    write_log(log, log_path, HERE / f"{name}_training_loss.png" if args.output is None else None)
    print(f"kept epoch {metadata['best_epoch']} (validation SI-SDR {metadata['validation_score']:.2f} dB); {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
