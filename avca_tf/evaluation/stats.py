"""Trainable parameters and FLOPs per model and feature set (`avca stats`)."""
from __future__ import annotations

from avca_tf.config import FEATURE_SETS

COLUMNS = ("model", "features", "trainable params", "seed params", "steps a/v",
           "fwd MFLOP/sample", "loss fwd GFLOP", "train step GFLOP", "seed GFLOPS")


def collect(models, feature_sets, batch_size=256, flops=True, progress=True):
    """One row dict per (model, feature set), keyed by COLUMNS."""
    import keras
    from tqdm import tqdm

    from avca_tf.evaluation import flops as fl
    from avca_tf.evaluation import published
    from avca_tf.models import build_model, get_preset, presets
    from avca_tf.models.registry import takes_sequences

    rows = []
    jobs = []
    for fs in feature_sets:
        for m in models:
            # sequence models' architecture differs per dataset (TCaF): a row per dataset preset
            datasets = sorted({d for mm, d, f in presets() if mm == m and f == fs})
            if not datasets:  # the model has no settings for this feature set
                continue
            per_dataset = takes_sequences(m)
            jobs += [(m, fs, d) for d in datasets] if per_dataset else [(m, fs, None)]
    for model_name, fs, dataset in tqdm(jobs, desc="models", disable=not progress):
        cfg = get_preset(model_name, dataset or "UCF", fs)
        keras.utils.set_random_seed(0)
        model = build_model(model_name, cfg.model, cfg.loss)
        a, v = FEATURE_SETS[fs].audio_dim, FEATURE_SETS[fs].video_dim
        selavi = fs == "main_features"
        sequences = bool(getattr(model, "takes_sequences", False))
        row = {"model": f"{model_name} ({dataset})" if dataset else model_name, "features": fs,
               "trainable params": fl.trainable_params(model),
               "seed params": published.PARAMS_AS_PRINTED.get(model_name, "") if selavi else "",
               "seed GFLOPS": published.GFLOPS.get(model_name, "") if selavi else ""}
        if flops and sequences:  # at a typical video's length (`steps a/v`), per video
            ta, tv = fl.typical_steps(cfg)
            row["steps a/v"] = f"{ta}/{tv}"
            row["fwd MFLOP/sample"] = fl.sequence_forward_flops(model, a, v, ta, tv) / 1e6
            row["train step GFLOP"] = fl.sequence_train_step_flops(
                model, a, v, ta, tv, batch_size, num_classes=30) / 1e9
        elif flops:
            row["fwd MFLOP/sample"] = fl.forward_flops(model, a, v) / 1e6
            t = cfg.model.text_dim  # 300 (word2vec), 1536 ([CLIP; CLAP] on clip_clap)
            row["loss fwd GFLOP"] = fl.loss_forward_flops(model, a, v, batch_size, t) / 1e9
            row["train step GFLOP"] = fl.train_step_flops(model, a, v, batch_size, t) / 1e9
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


