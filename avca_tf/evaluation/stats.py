"""Trainable parameters and FLOPs per model and feature set (`avca stats`)."""
from __future__ import annotations

COLUMNS = ("model", "features", "trainable params", "seed params", "steps a/v",
           "fwd MFLOP/sample", "loss fwd GFLOP", "train step GFLOP", "seed GFLOPS")


def collect(models, feature_sets, batch_size=256, flops=True, progress=True, num_classes=30):
    """One row dict per (model, feature set), keyed by COLUMNS; models whose architecture
    differs per dataset (their input kind's `flops_rows`, e.g. TCaF) a row per dataset.
    Training batches carry `num_classes` training classes where the model uses them."""
    import keras
    from tqdm import tqdm

    from avca_tf.evaluation import flops as fl
    from avca_tf.evaluation import published
    from avca_tf.inputs import kind_of
    from avca_tf.models import build_model, get_preset, presets

    jobs = []
    for fs in feature_sets:
        for m in models:
            datasets = sorted({d for mm, d, f in presets() if mm == m and f == fs})
            if datasets:  # else the model has no settings for this feature set
                jobs += [(m, fs, d) for d in kind_of(m).flops_rows(datasets)]
    rows = []
    for model_name, fs, dataset in tqdm(jobs, desc="models", disable=not progress):
        cfg = get_preset(model_name, dataset or "UCF", fs)
        keras.utils.set_random_seed(0)
        model = build_model(model_name, cfg.model, cfg.loss)
        selavi = fs == "main_features"
        row = {"model": f"{model_name} ({dataset})" if dataset else model_name, "features": fs,
               "trainable params": fl.trainable_params(model),
               "seed params": published.PARAMS_AS_PRINTED.get(model_name, "") if selavi else "",
               "seed GFLOPS": published.GFLOPS.get(model_name, "") if selavi else ""}
        if flops:
            one, batch, steps = kind_of(model_name).flops_inputs(cfg, batch_size, num_classes)
            if steps:
                row["steps a/v"] = steps
            row["fwd MFLOP/sample"] = fl.forward_flops(model, one) / 1e6
            row["loss fwd GFLOP"] = fl.loss_forward_flops(model, batch) / 1e9
            row["train step GFLOP"] = fl.train_step_flops(model, batch) / 1e9
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


