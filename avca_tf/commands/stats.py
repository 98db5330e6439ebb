"""`avca stats`: trainable parameters and FLOPs per model and feature set."""
from __future__ import annotations

import sys

from avca_tf.config import FEATURE_SETS
from avca_tf.errors import ConfigError


def add_arguments(p):
    p.add_argument("--features", choices=sorted(FEATURE_SETS),
                   help="feature set (default: every one)")
    p.add_argument("--models", help="comma-separated model names (default: all registered)")
    p.add_argument("--batch-size", type=int, default=256,
                   help="training batch (positives; as many negatives) for the step FLOPs")
    p.add_argument("--no-flops", action="store_true", help="parameters only (fast)")


def run(args) -> int:
    from avca_tf.models import model_names
    models = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
              else model_names())
    unknown = [m for m in models if m not in model_names()]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; expected names from "
                          f"{sorted(model_names())}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    import logging
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # the v1 profiler's deprecations
    from avca_tf.evaluation.stats import collect, format_table
    feature_sets = [args.features] if args.features else list(FEATURE_SETS)
    rows = collect(models, feature_sets, args.batch_size, flops=not args.no_flops,
                   progress=sys.stderr.isatty())  # no bar in a log file
    print(format_table(rows, args.batch_size))
    if not args.no_flops:
        print(f"\nFLOPs: TF profiler (tf.compat.v1.profiler float_operation) on the graph of a "
              f"concrete function. fwd = model.embed of one sample (inference); loss fwd = "
              f"forward of all loss terms on {args.batch_size} positives + {args.batch_size} "
              f"negatives; train step = loss fwd + backward (no optimizer update). Seed columns: "
              f"Appendix B.4 (SeLaVi features only). Sequence models (tcaf): fwd = one video of "
              f"`steps a/v` audio/video steps (a typical video of the dataset: median duration "
              f"at the step rates; ActivityNet its fixed test window), loss fwd and train step "
              f"= a padded batch of {args.batch_size} such videos. Models with a cross-entropy "
              f"over the training classes (tcaf, clipclap): 30 classes.")
    return 0
