"""The run-setting flags shared by `avca train` and `avca pipeline run|compile`.

Same flag, same meaning everywhere; `overrides(args)` is the one mapping of
these flags onto avca_tf.training.presets.RunOverrides (-> RunConfig fields).
Building the flags and checking their values imports no TensorFlow: only the
help text (`-h`) resolves the registered presets, to show each model's values.
"""
from __future__ import annotations

import argparse

from avca_tf.config import SEED_LIMIT, STRATEGIES, TEXT_PAIRINGS, limit
from avca_tf.training.presets import SCHEDULES, RunOverrides


def bounded_int(low: int = 1, limit_name: str | None = None, below: int | None = None):
    """argparse type: a whole number >= low (below `below`, within config.LIMITS[limit_name])."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(f"must be < {below}, got {value}")
        if limit_name is not None:
            from avca_tf.config import LIMITS
            if value > limit(limit_name):
                raise argparse.ArgumentTypeError(
                    f"{value} is over the {limit_name} limit {limit(limit_name)} (set "
                    f"{LIMITS[limit_name][0]} to raise it, if the machine has the memory)")
        return value
    parse.__name__ = "int"
    return parse


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


positive_float.__name__ = "float"


class PresetHelp(str):
    """Help text completed with every model's preset values of one TrainConfig field when
    argparse formats the help (so that parsing never imports the models)."""

    def __new__(cls, text: str, field: str, fmt=str):
        self = super().__new__(cls, text)
        self.field, self.fmt = field, fmt
        return self

    def __mod__(self, params):
        return (str(self) + f" ({preset_values(self.field, self.fmt)})") % params


def preset_values(field: str, fmt=str) -> str:
    """'preset: 1e-3; tcaf 5e-5 (UCF-main), 7e-5 (...)': the value of train.<field> in the
    registered presets, most common first, then each model's own values."""
    from collections import Counter, defaultdict

    from avca_tf.cli import quiet_tensorflow_start
    quiet_tensorflow_start()  # the models import TensorFlow
    from avca_tf.models.registry import get_preset, presets
    from avca_tf.training.presets import preset_name
    values = defaultdict(dict)  # model -> {preset name: value}
    for model, dataset, feature_set in presets():
        cfg = get_preset(model, dataset, feature_set)
        values[model][preset_name(dataset, feature_set)] = getattr(cfg.train, field)
    common = Counter(v for per in values.values() for v in per.values()).most_common(1)[0][0]
    models_of = defaultdict(list)  # description of a model's own values -> models
    for model, per in values.items():
        odd = {p: v for p, v in per.items() if v != common}
        if not odd:
            continue
        if len(set(per.values())) == 1:  # the model's one value
            models_of[fmt(next(iter(odd.values())))].append(model)
            continue
        by_value = defaultdict(list)
        for p, v in odd.items():
            by_value[v].append(p)
        models_of[", ".join(f"{fmt(v)} on {'/'.join(ps)}"
                            for v, ps in by_value.items())].append(model)
    parts = [f"preset: {fmt(common)}"] + [f"{', '.join(models)} {desc}"
                                          for desc, models in models_of.items()]
    return "; ".join(parts)


def _lr(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-")


def add_run_arguments(p: argparse.ArgumentParser, schedule_help: str = "") -> None:
    p.add_argument("--model", default="avca", help="registered model name (default avca)")
    p.add_argument("--preset", default=None, metavar="NAME",
                   help=f"'<dataset>-<main|cls|clipclap>' (e.g. UCF-main, VGGSound-cls): that "
                        f"dataset's settings for --model; or a short schedule "
                        f"{' / '.join(SCHEDULES)} on the data's own settings {schedule_help}"
                        f"(default: the model's settings for the dataset and feature set)")
    p.add_argument("--epochs", type=bounded_int(), help=PresetHelp("stage-1 epochs", "epochs"))
    p.add_argument("--n-batches", type=bounded_int(),
                   help=PresetHelp("batches per epoch", "n_batches"))
    p.add_argument("--batch-size", type=bounded_int(limit_name="batch size"),
                   help=PresetHelp("batch size (at most AVCA_MAX_BATCH_SIZE, default 8192)",
                                   "batch_size"))
    p.add_argument("--lr", type=positive_float, help=PresetHelp("learning rate", "lr", _lr))
    p.add_argument("--seed", type=bounded_int(0, below=SEED_LIMIT),
                   help=PresetHelp("random seed", "seed"))
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

