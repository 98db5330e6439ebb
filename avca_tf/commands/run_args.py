"""The run-setting flags shared by `avca train` and `avca pipeline run|compile`.

Same flag, same meaning everywhere; `overrides(args)` is the one mapping of
these flags onto avca_tf.training.presets.RunOverrides (-> RunConfig fields).
"""
from __future__ import annotations

import argparse

from avca_tf.config import STRATEGIES, TEXT_PAIRINGS
from avca_tf.training.presets import SCHEDULES, RunOverrides, preset_names


def add_run_arguments(p: argparse.ArgumentParser, schedule_help: str = "") -> None:
    p.add_argument("--model", default="avca", help="registered model name (default avca)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help=f"'<dataset>-<main|cls>' (e.g. {', '.join(preset_names())}): that "
                        f"dataset's settings for --model; or a short schedule "
                        f"{' / '.join(SCHEDULES)} on the data's own settings {schedule_help}"
                        f"(default: the model's settings for the dataset and feature set)")
    p.add_argument("--epochs", type=int, help="stage-1 epochs (preset: 50)")
    p.add_argument("--n-batches", type=int, help="batches per epoch (preset: 500)")
    p.add_argument("--batch-size", type=int, help="batch size (preset: 256, VGGSound main 64)")
    p.add_argument("--lr", type=float, help="learning rate (preset: 1e-3)")
    p.add_argument("--seed", type=int, help="random seed (preset: 42)")
    p.add_argument("--text-pairing", default=None, choices=TEXT_PAIRINGS,
                   help="'reference' reproduces the authors' class/label-vector mis-pairing "
                        "(default own)")
    p.add_argument("--strategy", default=None, choices=STRATEGIES,
                   help="distribution: default (one device), mirrored (all local GPUs) or "
                        "multi-worker (TF_CONFIG names the workers)")


def overrides(args, **more) -> RunOverrides:
    """RunOverrides of the flags above (plus `more`, e.g. a command's own switches)."""
    preset, schedule = args.preset, None
    if preset in SCHEDULES:
        preset, schedule = None, args.preset
    fields = dict(model=args.model, preset=preset, schedule=schedule, epochs=args.epochs,
                  n_batches=args.n_batches, batch_size=args.batch_size, lr=args.lr,
                  seed=args.seed, text_pairing=args.text_pairing,
                  strategy=args.strategy)
    fields.update({k: v for k, v in more.items() if v is not None})
    return RunOverrides(**fields)
