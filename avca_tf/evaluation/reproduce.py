"""Regenerate the seed's Tables 1, 3 and 4, or the ClipClap-GZSL table, on the user's features.

For every dataset of the table found under the benchmark root, every model
row and every seed, one full protocol run (avca_tf.training.protocol.run_protocol)
lives in OUT/runs/<dataset>/<feature set>/<model>/seed<k>[-reference][-quick], so
tables on different features never share a run dir in one OUT. The runs are
the elements of one Beam job (avca_tf.beam.sweep: DirectRunner with one
worker per core by default, any runner through pipeline options); a run
whose results.json exists is reused, an interrupted one is resumed, both
only when the run dir's config.json is the planned config (else ConfigError). The
table (mean and std over seeds of the test metrics, in percent, beside the
published numbers) is then assembled from the run dirs and written as
OUT/table<N>.md and OUT/table<N>.csv (table_clipclap.*); `assemble_only`
re-assembles it alone.
OUT may be any filesystem TensorFlow reads (local, gs://).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os

import numpy as np

from avca_tf.evaluation import published
from avca_tf.data.formats.benchmark import Layout
from avca_tf.errors import ConfigError
from avca_tf.io_utils import atomic_path
from avca_tf.training.presets import RunOverrides, run_config as resolve_run_config

BASE_SEED = 42   # the reference's default seed; seed k of N is BASE_SEED + k


@dataclasses.dataclass(frozen=True)
class ReproduceConfig:
    """What `avca reproduce` runs."""
    root: str
    table: int | str                 # a published.TABLES key: 1, 3, 4 or "clipclap"
    out: str
    seeds: int = 1
    quick: bool = False
    text_pairing: str = "own"
    models: tuple[str, ...] = ()     # rows of the table to run; () = all


def table_spec(table) -> dict:
    key = published.table_key(table)
    if key not in published.TABLES:
        raise ConfigError(f"--table must be one of {list(published.TABLE_CHOICES)}, got {table}")
    return published.TABLES[key]


def table_label(table) -> str:
    """'Table 3' for the seed's tables, 'the clipclap table' for another paper's."""
    key = published.table_key(table)
    return f"Table {key}" if isinstance(key, int) else f"the {key} table"


def table_stem(table) -> str:
    """File name stem of the written table: table3, table_clipclap."""
    key = published.table_key(table)
    return f"table{key}" if isinstance(key, int) else f"table_{key}"


def available_datasets(root: str, feature_set: str, temporal: bool = False) -> list[str]:
    """The seed's datasets that `root` holds for `feature_set` (class split and features;
    `temporal`: the non-averaged per-step features of sequence models)."""
    from avca_tf.data.formats.temporal import TemporalLayout
    found = []
    for ds in published.DATASETS:
        layout = (TemporalLayout if temporal else Layout)(root, ds, feature_set)
        if layout.split_dir.is_dir() and layout.features_dir.is_dir():
            found.append(ds)
    return found


def synthetic_datasets(root: str, feature_set: str) -> dict:
    """{dataset: marker file} of the datasets under `root` whose `feature_set` features
    `avca synth` wrote (it leaves `<dataset>/synth_<feature set>[_non_averaged].json`)."""
    import tensorflow as tf
    found = {}
    for ds in published.DATASETS:
        for suffix in ("", "_non_averaged"):
            marker = f"{root.rstrip('/')}/{ds}/synth_{feature_set}{suffix}.json"
            if tf.io.gfile.exists(marker):
                found.setdefault(ds, marker)
    return found


def run_name(dataset: str, model: str, seed: int, cfg: ReproduceConfig) -> str:
    """runs/<dataset>/<feature set>/<model>/seed<k>[-reference][-quick], relative to OUT."""
    name = f"seed{seed}" + ("-reference" if cfg.text_pairing == "reference" else "")
    feature_set = table_spec(cfg.table)["feature_set"]
    return f"runs/{dataset}/{feature_set}/{model}/{name}" + ("-quick" if cfg.quick else "")


def run_dir(out: str, dataset: str, model: str, seed: int, cfg: ReproduceConfig) -> str:
    """OUT/runs/<dataset>/<feature set>/<model>/seed<k>[-reference][-quick]."""
    from avca_tf.beam.sweep import join
    return join(out, run_name(dataset, model, seed, cfg))


def run_config(model: str, dataset: str, feature_set: str, seed: int, cfg: ReproduceConfig):
    return resolve_run_config(
        dataset, feature_set,
        RunOverrides(model=model, seed=seed, text_pairing=cfg.text_pairing,
                     schedule="quick" if cfg.quick else None),
        root=os.path.abspath(cfg.root))


def table_models(cfg: ReproduceConfig) -> list[str]:
    """The table's model rows, restricted to cfg.models when given."""
    rows = [model for model, _ in table_spec(cfg.table)["rows"]]
    unknown = sorted(set(cfg.models) - set(rows))
    if unknown:
        raise ConfigError(f"--models {unknown} are not rows of {table_label(cfg.table)}; "
                          f"expected some of {rows}")
    return [m for m in rows if not cfg.models or m in cfg.models]


def plan_runs(cfg: ReproduceConfig) -> list:
    """The table's protocol runs as sweep elements: [SweepRun(name relative to OUT, RunConfig)]."""
    from avca_tf.beam.sweep import SweepRun
    spec = table_spec(cfg.table)
    if cfg.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {cfg.seeds}")
    models = table_models(cfg)
    feature_set = spec["feature_set"]
    from avca_tf.inputs import kind_of
    datasets = {m: available_datasets(cfg.root, feature_set, kind_of(m).temporal) for m in models}
    if not any(datasets.values()):
        from avca_tf.config import FEATURE_SETS
        folder = FEATURE_SETS[feature_set].folder
        needs = [f"<root>/<DATASET>/features/{folder}" + (
            "_non_averaged" if temporal and not folder.endswith("_non_averaged") else "")
            for temporal in sorted({kind_of(m).temporal for m in models})]
        raise ConfigError(
            f"{cfg.root} holds none of {list(published.DATASETS)} with {feature_set} ("
            f"{table_label(cfg.table)} needs <root>/<DATASET>/class-split/"
            f"{Layout(cfg.root, 'UCF', feature_set).split_dir.name} and "
            f"{' or '.join(needs)})")
    return [SweepRun(run_name(dataset, model, BASE_SEED + k, cfg),
                     run_config(model, dataset, feature_set, BASE_SEED + k, cfg))
            for dataset in published.DATASETS for model in models
            if dataset in datasets[model] for k in range(cfg.seeds)]


def collect(cfg: ReproduceConfig, runs=None) -> tuple[dict, list[str]]:
    """Test metrics of the finished runs read from their run dirs:
    ({(model, dataset): [test metrics per seed]}, names of the runs not finished);
    ConfigError for a run dir of another configuration."""
    from avca_tf.beam.sweep import check_run_config, read_results, run_dir as sweep_run_dir
    results, missing = {}, []
    for run in plan_runs(cfg) if runs is None else runs:
        path = sweep_run_dir(cfg.out, run.name)
        check_run_config(path, run.config)
        res = read_results(path)
        if res is None:
            missing.append(run.name)
            continue
        key = (run.config.model.name, run.config.data.dataset)
        results.setdefault(key, []).append(res["test"])
    return results, missing


def run_all(cfg: ReproduceConfig, verbose: int = 1, beam_args=()) -> dict:
    """Runs (or reuses) every training of the table as one Beam job; returns
    {(model, dataset): [test metrics dict per seed]}."""
    from avca_tf.beam.sweep import run_sweep
    runs = plan_runs(cfg)
    run_sweep(runs, cfg.out, beam_args, verbose=bool(verbose))
    results, missing = collect(cfg, runs)
    if missing:
        raise ConfigError(f"runs not finished after the job: {missing}")
    return results


def summarize(results: dict, table) -> list[dict]:
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
    pub = "n/p" if row["published"] is None else f"{row['published']:.2f}"
    if row["mean"] is None:
        return f"– ({pub})"
    std = f" ± {row['std']:.2f}" if row["std"] is not None else ""
    return f"{row['mean']:.2f}{std} ({pub})"


def to_markdown(rows: list[dict], table, cfg: ReproduceConfig) -> str:
    spec = table_spec(table)
    metrics = spec["metrics"]
    by_key = {(r["model"], r["dataset"], r["metric"]): r for r in rows}
    n_seeds = sorted({r["n_seeds"] for r in rows if r["n_seeds"]})
    sources = "".join(f" ({label}: {published.ROW_SOURCES[m]})" for m, label in spec["rows"]
                      if m in published.ROW_SOURCES)
    title = spec.get("title", table_label(table))
    paper = spec.get("paper", "seed paper's number")
    synthetic = synthetic_datasets(cfg.root, spec["feature_set"])
    kind = ", SYNTHETIC features (avca synth)" if synthetic else ""
    lines = [f"# {title} ({spec['feature_set']}){kind}: ours (published)", ""]
    if synthetic:
        lines += [f"**Synthetic features:** {', '.join(synthetic)} under {cfg.root} "
                  f"{'was' if len(synthetic) == 1 else 'were'} written by `avca synth` "
                  f"({', '.join(synthetic.values())}): these numbers check the pipeline and "
                  f"say nothing about the models; the numbers in brackets are the papers', on "
                  f"the real features.", ""]
    lines += [
             f"Test metrics in percent, mean ± std over seeds "
             f"{BASE_SEED}..{BASE_SEED + cfg.seeds - 1}"
             f" (runs per cell: {', '.join(map(str, n_seeds)) or 'none'}); in brackets the "
             f"{paper}{sources}. "
             f"'–': dataset (for sequence models: its per-step "
             f"features) not in {cfg.root}. Label embeddings paired "
             f"'{cfg.text_pairing}'" + ("; QUICK runs (2 epochs x 5 batches), not comparable."
                                        if cfg.quick else "."), ""]
    header = ["Model"] + [f"{ds}{' (synthetic)' if ds in synthetic else ''} {m}"
                          for ds in published.DATASETS for m in metrics]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for model, label in spec["rows"]:
        cells = [_cell(by_key[(model, ds, m)]) for ds in published.DATASETS for m in metrics]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("table", "model", "row", "dataset", "metric", "n_seeds", "mean", "std", "published",
              "features")


def to_csv(rows: list[dict], synthetic=()) -> str:
    """Long format; `features` is "synthetic" for the datasets in `synthetic`, else "real"."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row = {**row, "features": "synthetic" if row["dataset"] in synthetic else "real"}
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def write_table(rows: list[dict], cfg: ReproduceConfig) -> tuple[str, str]:
    """Writes OUT/table<N>.md and .csv (atomically on a local disk); returns their paths."""
    import tensorflow as tf
    from avca_tf.beam.sweep import join
    paths = []
    synthetic = synthetic_datasets(cfg.root, table_spec(cfg.table)["feature_set"])
    for ext, text in (("md", to_markdown(rows, cfg.table, cfg)),
                      ("csv", to_csv(rows, synthetic))):
        path = join(cfg.out, f"{table_stem(cfg.table)}.{ext}")
        if "://" in path:  # object stores: one object, written whole
            with tf.io.gfile.GFile(path, "w") as f:
                f.write(text)
        else:
            with atomic_path(path) as tmp:
                with open(tmp, "w") as f:
                    f.write(text)
        paths.append(path)
    return tuple(paths)


def reproduce(cfg: ReproduceConfig, verbose: int = 1, beam_args=(),
              assemble_only: bool = False) -> tuple[str, str]:
    """Runs the table's trainings (a Beam job) and writes the table from the run dirs;
    `assemble_only`: no training, the table from the runs finished so far.
    Returns the markdown and CSV paths."""
    if assemble_only:
        results, missing = collect(cfg)
        if not results:
            raise ConfigError(f"{cfg.out} holds no finished run of {table_label(cfg.table)} "
                              f"(expected e.g. {plan_runs(cfg)[0].name}/results.json)")
        if missing and verbose:
            print(f"[reproduce] {len(missing)} runs not finished, left out: "
                  f"{', '.join(missing)}")
    else:
        results = run_all(cfg, verbose, beam_args)
    return write_table(summarize(results, cfg.table), cfg)
