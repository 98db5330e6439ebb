"""`avca stats`: trainable parameters and FLOPs per model and feature set."""
from __future__ import annotations

from avca_tf.errors import ConfigError
from avca_tf.training.presets import FEATURE_WIDTHS

COLUMNS = ("model", "features", "trainable params", "seed params", "fwd MFLOP/sample",
           "loss fwd GFLOP", "train step GFLOP", "seed GFLOPS")


def add_arguments(p):
    p.add_argument("--features", choices=sorted(FEATURE_WIDTHS),
                   help="feature set (default: both)")
    p.add_argument("--models", help="comma-separated model names (default: all registered)")
    p.add_argument("--batch-size", type=int, default=256,
                   help="training batch (positives; as many negatives) for the step FLOPs")
    p.add_argument("--no-flops", action="store_true", help="parameters only (fast)")


def collect(models, feature_sets, batch_size=256, flops=True, progress=True):
    """One row dict per (model, feature set), keyed by COLUMNS."""
    import keras
    from tqdm import tqdm

    from avca_tf.evaluation import flops as fl
    from avca_tf.evaluation import published
    from avca_tf.models import build_model
    from avca_tf.models.model_presets import preset_for

    rows = []
    jobs = [(m, fs) for fs in feature_sets for m in models]
    for model_name, fs in tqdm(jobs, desc="models", disable=not progress):
        try:
            cfg = preset_for(model_name, "UCF", fs)
        except ConfigError:  # the model has no configuration for this feature set
            if len(models) == 1 and len(feature_sets) == 1:
                raise
            continue
        keras.utils.set_random_seed(0)
        model = build_model(model_name, cfg.model, cfg.loss)
        a, v = FEATURE_WIDTHS[fs]
        selavi = fs == "main_features"
        row = {"model": model_name, "features": fs,
               "trainable params": fl.trainable_params(model),
               "seed params": published.PARAMS_AS_PRINTED.get(model_name, "") if selavi else "",
               "seed GFLOPS": published.GFLOPS.get(model_name, "") if selavi else ""}
        if flops:
            row["fwd MFLOP/sample"] = fl.forward_flops(model, a, v) / 1e6
            row["loss fwd GFLOP"] = fl.loss_forward_flops(model, a, v, batch_size) / 1e9
            row["train step GFLOP"] = fl.train_step_flops(model, a, v, batch_size) / 1e9
        rows.append(row)
        keras.backend.clear_session()
    return rows


def format_table(rows, batch_size=256) -> str:
    """Markdown table; FLOP columns say the batch they were measured on."""
    def cell(key, value):
        if value == "" or value is None:
            return ""
        if key == "trainable params":
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:.3f}" if key == "fwd MFLOP/sample" else f"{value:.2f}"
        return str(value)
    keys = [k for k in COLUMNS if any(k in r for r in rows)]
    batched = ("loss fwd GFLOP", "train step GFLOP")
    head = [k.replace("GFLOP", f"GFLOP (B={batch_size})") if k in batched else k for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(k, r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def run(args) -> int:
    from avca_tf.models import MODELS
    models = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
              else list(MODELS))
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; expected names from {sorted(MODELS)}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    feature_sets = [args.features] if args.features else list(FEATURE_WIDTHS)
    rows = collect(models, feature_sets, args.batch_size, flops=not args.no_flops)
    print(format_table(rows, args.batch_size))
    if not args.no_flops:
        print(f"\nFLOPs: TF profiler (tf.compat.v1.profiler float_operation) on the graph of a "
              f"concrete function. fwd = model.embed of one sample (inference); loss fwd = "
              f"forward of all loss terms on {args.batch_size} positives + {args.batch_size} "
              f"negatives; train step = loss fwd + backward (no optimizer update). Seed columns: "
              f"Appendix B.4 (SeLaVi features only).")
    return 0
