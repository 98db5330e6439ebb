"""Regenerate the seed's Tables 1, 3 and 4 on the user's features.

For every dataset of the table found under the benchmark root, every model
row and every seed, one full protocol run (avca_tf.training.protocol.run_protocol)
lives in OUT/runs/<dataset>/<model>/seed<k>[-reference][-quick]; a run whose
results.json exists is reused, an interrupted one is resumed. The table
(mean and std over seeds of the test metrics, in percent, beside the
published numbers) is written as OUT/table<N>.md and OUT/table<N>.csv.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os

import numpy as np

from avca_tf.evaluation import published
from avca_tf.data.benchmark import Layout
from avca_tf.errors import ConfigError
from avca_tf.io_utils import atomic_path
from avca_tf.training.presets import RunOverrides, run_config as resolve_run_config

BASE_SEED = 42   # the reference's default seed; seed k of N is BASE_SEED + k


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    """What `avca reproduce` runs."""
    root: str
    table: int
    out: str
    seeds: int = 1
    quick: bool = False
    text_pairing: str = "own"


def table_spec(table: int) -> dict:
    if table not in published.TABLES:
        raise ConfigError(f"--table must be one of {sorted(published.TABLES)}, got {table}")
    return published.TABLES[table]


def available_datasets(root: str, feature_set: str) -> list[str]:
    """The seed's datasets that `root` holds for `feature_set` (class split and features)."""
    found = []
    for ds in published.DATASETS:
        layout = Layout(root, ds, feature_set)
        if layout.split_dir.is_dir() and layout.features_dir.is_dir():
            found.append(ds)
    return found


def run_dir(out: str, dataset: str, model: str, seed: int, cfg: ReproduceConfig) -> str:
    """OUT/runs/<dataset>/<model>/seed<k>[-reference][-quick]."""
    name = f"seed{seed}" + ("-reference" if cfg.text_pairing == "reference" else "")
    return os.path.join(out, "runs", dataset, model, name + ("-quick" if cfg.quick else ""))


def run_config(model: str, dataset: str, feature_set: str, seed: int, cfg: ReproduceConfig):
    return resolve_run_config(
        dataset, feature_set,
        RunOverrides(model=model, seed=seed, text_pairing=cfg.text_pairing,
                     schedule="quick" if cfg.quick else None),
        root=os.path.abspath(cfg.root))


def run_all(cfg: ReproduceConfig, verbose: int = 1) -> dict:
    """Runs (or reuses) every training of the table; returns
    {(model, dataset): [test metrics dict per seed]}."""
    from avca_tf.data.benchmark import load_benchmark
    from avca_tf.training.protocol import RESULTS_FILE, run_protocol

    spec = table_spec(cfg.table)
    if cfg.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {cfg.seeds}")
    feature_set = spec["feature_set"]
    datasets = available_datasets(cfg.root, feature_set)
    if not datasets:
        raise ConfigError(
            f"{cfg.root} holds none of {list(published.DATASETS)} with {feature_set} (Table "
            f"{cfg.table} needs <root>/<DATASET>/class-split/"
            f"{Layout(cfg.root, 'UCF', feature_set).split_dir.name} and "
            f"<root>/<DATASET>/features/{feature_set})")
    results = {}
    for dataset in datasets:
        bench = None
        for model, _ in spec["rows"]:
            for k in range(cfg.seeds):
                seed = BASE_SEED + k
                path = run_dir(cfg.out, dataset, model, seed, cfg)
                done = os.path.join(path, RESULTS_FILE)
                if os.path.exists(done):
                    if verbose:
                        print(f"[reproduce] {dataset} {model} seed {seed}: finished run in {path}")
                    with open(done) as f:
                        res = json.load(f)
                else:
                    if verbose:
                        print(f"[reproduce] {dataset} {model} seed {seed}: training -> {path}")
                    if bench is None:
                        bench = load_benchmark(cfg.root, dataset, feature_set,
                                               text_pairing=cfg.text_pairing)
                    run = run_config(model, dataset, feature_set, seed, cfg)
                    resume = os.path.exists(os.path.join(path, "config.json"))
                    res = run_protocol(bench, run, path, resume=resume, verbose=verbose)
                results.setdefault((model, dataset), []).append(res["test"])
    return results


def summarize(results: dict, table: int) -> list[dict]:
    """Long-format rows: one per (model, dataset, metric) of the table."""
    spec = table_spec(table)
    rows = []
    for model, label in spec["rows"]:
        for d_i, dataset in enumerate(published.DATASETS):
            runs = results.get((model, dataset), [])
            for m_i, metric in enumerate(spec["metrics"]):
                values = np.array([100.0 * r[metric] for r in runs])
                rows.append({
                    "table": table, "model": model, "row": label, "dataset": dataset,
                    "metric": metric, "n_seeds": len(values),
                    "mean": float(values.mean()) if len(values) else None,
                    "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                    "published": spec["published"][model][dataset][m_i]})
    return rows


def _cell(row) -> str:
    pub = f"{row['published']:.2f}"
    if row["mean"] is None:
        return f"– ({pub})"
    std = f" ± {row['std']:.2f}" if row["std"] is not None else ""
    return f"{row['mean']:.2f}{std} ({pub})"


def to_markdown(rows: list[dict], table: int, cfg: ReproduceConfig) -> str:
    spec = table_spec(table)
    metrics = spec["metrics"]
    by_key = {(r["model"], r["dataset"], r["metric"]): r for r in rows}
    n_seeds = sorted({r["n_seeds"] for r in rows if r["n_seeds"]})
    lines = [f"# Table {table} ({spec['feature_set']}): ours (published)", "",
             f"Test metrics in percent, mean ± std over seeds "
             f"{BASE_SEED}..{BASE_SEED + cfg.seeds - 1}"
             f" (runs per cell: {', '.join(map(str, n_seeds)) or 'none'}); in brackets the seed "
             f"paper's number. '–': dataset not in {cfg.root}. Label embeddings paired "
             f"'{cfg.text_pairing}'" + ("; QUICK runs (2 epochs x 5 batches), not comparable."
                                        if cfg.quick else "."), ""]
    header = ["Model"] + [f"{ds} {m}" for ds in published.DATASETS for m in metrics]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for model, label in spec["rows"]:
        cells = [_cell(by_key[(model, ds, m)]) for ds in published.DATASETS for m in metrics]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("table", "model", "row", "dataset", "metric", "n_seeds", "mean", "std", "published")


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def write_table(rows: list[dict], cfg: ReproduceConfig) -> tuple[str, str]:
    """Writes OUT/table<N>.md and .csv atomically; returns their paths."""
    paths = []
    for ext, text in (("md", to_markdown(rows, cfg.table, cfg)), ("csv", to_csv(rows))):
        path = os.path.join(cfg.out, f"table{cfg.table}.{ext}")
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write(text)
        paths.append(path)
    return tuple(paths)


def reproduce(cfg: ReproduceConfig, verbose: int = 1) -> tuple[str, str]:
    """Runs the table's trainings and writes it; returns the markdown and CSV paths."""
    rows = summarize(run_all(cfg, verbose), cfg.table)
    return write_table(rows, cfg)
