"""AVCA accuracy side by side: ours (`avca train`) and the authors' PyTorch code (issue 15).

    python benchmarks/avca_accuracy.py --root /data/bench --configs ActivityNet-main \
        --seeds 0 1 2 --epochs 10 --n-batches 100 --work /tmp/acc \
        --reference-repo /work/ref/AVCA-GZSL --torch-python /work/refvenv/bin/python \
        [--variant NAME="--avca-train-flags" ...] [--no-reference] --table out.md

`--root` holds one benchmark per dataset (`<root>/<DS>/...`, e.g. from `avca synth`);
`--root-for CONFIG=DIR` (repeatable) gives a configuration its own root, e.g. data written
at a different `--scale`.
For each configuration and seed it runs
- ours: `avca train` with the configuration's preset, the schedule and seed, once per
  variant (default: only our defaults, named "ours"); `--variant name="--flag ..."` adds a
  run with extra `avca train` flags, e.g. `bn="--bn-double-update"`;
- theirs: stage 1 `main.py`, stage 2 `main.py --retrain_all --save_checkpoints` and
  `get_evaluation.py` from `run_scripts/<DS>-GZSL/avca.sh` (settings from our preset table
  `avca_tf.models.avca.SCRIPTS`, which mirrors those scripts) with `--epochs/--n_batches`
  overridden and `--device cpu --seed S`, through `benchmarks/reference/run_reference.py`
  (run-time shims; `--pairing corrected` by default). Each of their runs gets a fresh
  working directory, so their feature cache (`./avgzsl_benchmark_datasets/<DS>/
  _features_processed`, not under --root_dir) is never reused; it is deleted afterwards.
Results (test S/U/HM/ZSL in %, wall seconds, 1-min load at start/end, the schedule, the
root and, for ours, the git commit and best stage-1 epoch) go to `<work>/results.jsonl`
(a run already there with the same configuration, implementation, seed and schedule is
not rerun) and a markdown table of mean ± std (n-1) per configuration and implementation
to `--table` (per-seed rows with `--per-seed`); `--plot` draws HM and ZSL per run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

FEATURES = {"main": ("main_features", "main_split", 512, 512),
            "cls": ("cls_features", "cls_split", 128, 4096)}
PERF = re.compile(r"Seen performance=([\d.]+), Unseen performance=([\d.]+), "
                  r"GZSL performance=([\d.]+), ZSL performance=([\d.]+)")


def load() -> str:
    return open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"


def run_cmd(cmd, cwd, log, env=None):
    with open(log, "a") as f:
        f.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        f.flush()
        subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, check=True, env=env)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def ours(args, dataset, short, seed, flags, out_dir, log, root):
    features = FEATURES[short][0]
    shutil.rmtree(out_dir, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=REPO)
    run_cmd([args.python, "-m", "avca_tf.cli", "train", "--root", root, "--dataset", dataset,
             "--features", features, "--out", out_dir, "--epochs", str(args.epochs),
             "--n-batches", str(args.n_batches), "--seed", str(seed), "-q", *flags],
            REPO, log, env)
    with open(os.path.join(out_dir, "results.json")) as f:
        r = json.load(f)
    return {k: 100 * r["test"][k] for k in ("S", "U", "HM", "ZSL")} | {
        "best_epoch": r["stage1"]["best_epoch"], "commit": git_commit()}


def theirs(args, dataset, short, seed, work, log, root):
    from avca_tf.models.avca import SCRIPTS
    features, split, a_dim, v_dim = FEATURES[short]
    d_enc, d_dec, d_add, torch_m, bs = SCRIPTS[(dataset, features)]
    shutil.rmtree(work, ignore_errors=True)  # their feature cache lives under the cwd
    os.makedirs(work)
    common = ["--root_dir", os.path.join(root, dataset), "--feature_extraction_method",
              features, "--input_size_audio", str(a_dim), "--input_size_video", str(v_dim),
              "--epochs", str(args.epochs), "--lr_scheduler", "--dataset_name", dataset,
              "--zero_shot_split", split, "--AVCA", "--lr", "0.001", "--n_batches",
              str(args.n_batches), "--bs", str(bs), "--embeddings_hidden_size", "512",
              "--decoder_hidden_size", "512", "--embedding_dropout", str(d_enc),
              "--decoder_dropout", str(d_dec), "--additional_dropout", str(d_add),
              "--depth_transformer", "1", "--additional_triplets_loss",
              "--first_additional_triplet", "1", "--second_additional_triplet", "1",
              "--momentum", str(torch_m), "--reg_loss", "--device", "cpu", "--seed", str(seed)]
    launcher = [args.torch_python, os.path.join(HERE, "reference", "run_reference.py"),
                "--reference-repo", args.reference_repo, "--pairing", args.pairing, "--"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
    run_cmd(launcher + ["main.py", *common, "--exp_name", "val"], work, log, env)
    run_cmd(launcher + ["main.py", *common, "--retrain_all", "--save_checkpoints",
                        "--exp_name", "all"], work, log, env)
    run_cmd(launcher + ["get_evaluation.py", "--load_path_stage_A", "runs/val",
                        "--load_path_stage_B", "runs/all", "--dataset_name", dataset, "--AVCA",
                        "--device", "cpu"], work, log, env)
    with open(os.path.join(work, "runs", "all", "eval.log")) as f:
        found = PERF.findall(f.read())
    if not found:
        raise RuntimeError(f"no test performance in {work}/runs/all/eval.log")
    s, u, hm, zsl = map(float, found[-1])
    best = sorted(os.listdir(os.path.join(work, "runs", "val")))
    shutil.rmtree(os.path.join(work, "avgzsl_benchmark_datasets"), ignore_errors=True)
    return {"S": s, "U": u, "HM": hm, "ZSL": zsl,
            "best_file": [b for b in best if b.endswith("_score.pt")]}


def schedule(row) -> str:
    return f"{row.get('epochs', '?')}x{row.get('n_batches', '?')}"


def table(rows, configs, impls, per_seed=False) -> str:
    """Mean ± std (n-1) per configuration, implementation and schedule; with per_seed, one
    row per run instead."""
    if per_seed:
        out = ["| config | implementation | schedule | seed | S | U | HM | ZSL | best epoch | "
               "wall s | load start / end |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for cfg in configs:
            for impl in impls:
                for r in sorted((r for r in rows if r["config"] == cfg and r["impl"] == impl),
                                key=lambda r: (schedule(r), r["seed"])):
                    out.append(f"| {cfg} | {impl} | {schedule(r)} | {r['seed']} | {r['S']:.2f} | "
                               f"{r['U']:.2f} | {r['HM']:.2f} | {r['ZSL']:.2f} | "
                               f"{r.get('best_epoch', '')} | {r['wall_s']:.0f} | "
                               f"{r['load_start']} / {r['load_end']} |")
        return "\n".join(out) + "\n"
    out = ["| config | implementation | schedule | seeds | S | U | HM | ZSL | wall s per run |",
           "|---|---|---|---|---|---|---|---|---|"]
    for cfg in configs:
        for impl in impls:
            for sched in sorted({schedule(r) for r in rows
                                 if r["config"] == cfg and r["impl"] == impl}):
                out.extend(_mean_row(cfg, impl, sched, [
                    r for r in rows if r["config"] == cfg and r["impl"] == impl
                    and schedule(r) == sched]))
    return "\n".join(out) + "\n"


def plot(rows, configs, impls, path, metrics=("HM", "ZSL")) -> None:
    """One panel per metric: every run as a dot, each implementation's mean as a bar, per
    configuration and schedule."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = [(cfg, sched) for cfg in configs
              for sched in sorted({schedule(r) for r in rows if r["config"] == cfg})]
    width = 0.8 / max(len(impls), 1)
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(6, 1.6 * len(groups)),
                                                       3.2 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics):
        labelled = set()
        for k, impl in enumerate(impls):
            color = f"C{k}"
            for g, (cfg, sched) in enumerate(groups):
                vals = [r[metric] for r in rows if r["config"] == cfg and r["impl"] == impl
                        and schedule(r) == sched]
                if not vals:
                    continue
                x = g - 0.4 + width * (k + 0.5)
                ax.bar(x, statistics.mean(vals), width * 0.9, color=color, alpha=0.35,
                       label=None if impl in labelled else impl)
                labelled.add(impl)
                ax.plot([x] * len(vals), vals, "o", color=color, markersize=4)
        ax.set_ylabel(f"test {metric} (%)")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{c}\n{s}" for c, s in groups], fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].set_title("bars: mean over seeds; dots: one run each")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _mean_row(cfg, impl, sched, sel) -> list[str]:
    def ms(key, digits=2):
        vals = [r[key] for r in sel]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        return f"{statistics.mean(vals):.{digits}f} ± {sd:.{digits}f}"
    seeds = ", ".join(str(r["seed"]) for r in sorted(sel, key=lambda r: r["seed"]))
    return [f"| {cfg} | {impl} | {sched} | {seeds} | {ms('S')} | {ms('U')} | "
            f"{ms('HM')} | {ms('ZSL')} | {ms('wall_s', 0)} |"]


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="benchmark root holding <DS>/ folders")
    p.add_argument("--root-for", action="append", default=[], metavar="CONFIG=DIR",
                   help="a configuration's own benchmark root (repeatable)")
    p.add_argument("--configs", nargs="+", default=["ActivityNet-main"],
                   help="<UCF|ActivityNet|VGGSound>-<main|cls>")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--n-batches", type=int, default=100)
    p.add_argument("--work", required=True, help="run directories, logs and results.jsonl")
    p.add_argument("--variant", action="append", default=[],
                   help='NAME="avca train flags" (repeatable); "ours" = defaults is always run')
    p.add_argument("--python", default=sys.executable, help="Python with avca_tf's dependencies")
    p.add_argument("--reference-repo", help="checkout of ExplainableML/AVCA-GZSL")
    p.add_argument("--torch-python", help="Python with torch for the authors' code")
    p.add_argument("--pairing", choices=("corrected", "published"), default="corrected")
    p.add_argument("--threads", type=int, default=2, help="OMP threads of their runs")
    p.add_argument("--no-reference", action="store_true", help="run ours only")
    p.add_argument("--no-ours", action="store_true", help="run theirs only")
    p.add_argument("--table", help="markdown table to write")
    p.add_argument("--per-seed", action="store_true", help="table: one row per run")
    p.add_argument("--plot", help="PNG: HM and ZSL per run and mean, per configuration")
    args = p.parse_args(argv)
    args.root = os.path.abspath(args.root)
    roots = {c: os.path.abspath(d) for c, d in (v.split("=", 1) for v in args.root_for)}
    if not args.no_reference and not (args.reference_repo and args.torch_python):
        p.error("--reference-repo and --torch-python are needed (or --no-reference)")
    variants = [("ours", [])] + [(v.split("=", 1)[0], shlex.split(v.split("=", 1)[1]))
                                 for v in args.variant]
    os.makedirs(args.work, exist_ok=True)
    results_path = os.path.join(args.work, "results.jsonl")
    rows = []
    if os.path.exists(results_path):
        with open(results_path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    done = {(r["config"], r["impl"], r["seed"], r.get("epochs"), r.get("n_batches"))
            for r in rows}
    ref_name = f"authors' ({args.pairing} pairing)"
    impls = ([] if args.no_ours else [n for n, _ in variants]) + \
        ([] if args.no_reference else [ref_name])
    for cfg in args.configs:
        dataset, short = cfg.split("-")
        for seed in args.seeds:
            for impl in impls:
                if (cfg, impl, seed, args.epochs, args.n_batches) in done:
                    continue
                root = roots.get(cfg, args.root)
                tag = f"{cfg}_{re.sub(r'[^A-Za-z0-9]+', '_', impl)}_s{seed}"
                if (args.epochs, args.n_batches) != (10, 100):
                    tag += f"_{args.epochs}x{args.n_batches}"
                log = os.path.join(args.work, tag + ".log")
                l0, t0 = load(), time.time()
                if impl == ref_name:
                    res = theirs(args, dataset, short, seed, os.path.join(args.work, tag), log,
                                 root)
                else:
                    flags = dict(variants)[impl]
                    res = ours(args, dataset, short, seed, flags, os.path.join(args.work, tag),
                               log, root)
                row = {"config": cfg, "impl": impl, "seed": seed, "epochs": args.epochs,
                       "n_batches": args.n_batches, "root": root, **res,
                       "wall_s": round(time.time() - t0, 1), "load_start": l0, "load_end": load()}
                rows.append(row)
                with open(results_path, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    text = table(rows, args.configs, impls, per_seed=args.per_seed)
    print(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text)
    if args.plot:
        plot(rows, args.configs, impls, args.plot)


if __name__ == "__main__":
    main()
