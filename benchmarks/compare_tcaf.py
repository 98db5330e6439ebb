"""Side by side: our TCaF and the authors' TCaF code on identical synthetic temporal data.

For each config (UCF-main, UCF-cls) the data is written once by
`avca synth --temporal` (the packaged UCF splits, --scale of the real per-class
counts); then for each seed, sequentially:

  ours          `avca train --model tcaf --temporal` (the preset, intended behaviour)
  ours-quirks   the same run with the authors' quirks that change the tested model:
                `reference_quirks(cfg)` (video normalised over time, integer
                positions at evaluation, BN statistics updated twice per step,
                ActivityNet-style audio window) plus `--text-pairing reference`
                (their UCF loader gives 79 of 101 classes another class's word
                vector, as AVCA's), minus `stage2_all_epochs_when_best_first`
                (theirs only wastes time with it: see ours_quirks_main)
  authors       their code as published, through benchmarks/reference/tcaf_run.py
                (their main.py two-stage protocol on CPU, run-time shims only)
  authors-fixed their code with its quirks fixed: tcaf_run.py --fix-quirks (run-time
                patches: video normalised over features, evaluation positions as in
                training, BN statistics moved once per step, stage 2 for best + 1
                epochs also after a best epoch 0, text vectors in class-id order)

All runs use the same reduced schedule (--epochs stage-1 epochs x --n-batches
batches of 64; stage 2 for the best epoch count) and one thread each
(TF_NUM_INTRAOP/INTEROP_THREADS, torch.set_num_threads). Writes <out>/tcaf_compare.md
(table of test S/U/HM/ZSL mean +- sample std over seeds, wall times) and
<out>/summary.json; also checks that our same-seed run is bit-reproducible
(results.json of two identical runs compared byte for byte). Runs whose result
file exists are not repeated (delete <out>/runs/... to redo).

    PYTHONPATH=. .venv/bin/python benchmarks/compare_tcaf.py \
        --reference-repo /work/ref/TCAF-GZSL --torch-python /work/refvenv/bin/python \
        --configs UCF-main,UCF-cls --seeds 0,1,2 --epochs 3 --n-batches 10 --out /tmp/cmp
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_common import (HERE, machine, our_env, sh, table, torch_env,  # noqa: E402
                            write_report)

IMPLS = ("ours", "ours-quirks", "authors", "authors-fixed")
FEATURES = {"main": "main_features", "cls": "cls_features"}


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-repo", required=True, help="checkout of ExplainableML/TCAF-GZSL")
    p.add_argument("--torch-python", required=True, help="python with torch for their code")
    p.add_argument("--configs", default="UCF-main,UCF-cls")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=3, help="stage-1 epochs (published: 50)")
    p.add_argument("--n-batches", type=int, default=10, help="batches per epoch (published: 300)")
    p.add_argument("--lr", type=float, help="learning rate for every run (default: each "
                   "implementation's preset/config value)")
    p.add_argument("--scale", type=float, default=0.1, help="avca synth --scale")
    p.add_argument("--synth-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--no-repro", action="store_true", help="skip the bit-reproducibility rerun")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def train_args(root, ds, features, epochs, n_batches, seed, out, lr=None):
    return (["--lr", str(lr)] if lr else []) + ["--root", root, "--dataset", ds, "--features", features, "--model", "tcaf",
            "--temporal", "--epochs", str(epochs), "--n-batches", str(n_batches),
            "--seed", str(seed), "--out", out, "-q"]


def ours_quirks_main(argv):
    """Internal: `avca train` with reference_quirks(cfg) (no CLI flag for all quirks)."""
    from avca_tf.commands import train as train_cmd
    from avca_tf.models.tcaf import reference_quirks
    from avca_tf.training.protocol import train
    p = argparse.ArgumentParser(allow_abbrev=False)
    train_cmd.add_arguments(p)
    a = p.parse_args(argv)
    # every quirk of their code that changes the tested model: reference_quirks, plus their
    # text pairing (the same as AVCA's: UCF 79 of 101 classes get another class's vector),
    # minus stage2_all_epochs_when_best_first: in their code that one only costs time (their
    # get_evaluation.py tests the stage-2 checkpoint of the best stage-1 epoch, whatever
    # the number of stage-2 epochs), while ours would test the model after all epochs.
    cfg = reference_quirks(train_cmd.build_config(a)).replace(
        data__text_pairing="reference", train__stage2_all_epochs_when_best_first=False)
    r = train(cfg, a.out, verbose=0)
    t = r["test"]
    print(f"quirks on: test S {100 * t['S']:.2f} U {100 * t['U']:.2f} HM {100 * t['HM']:.2f} "
          f"ZSL {100 * t['ZSL']:.2f} (best epoch {r['stage1']['best_epoch']})")
    return 0


def run_one(impl, a, cfg, seed, data_root, run_dir):
    ds, kind = cfg.split("-")
    features = FEATURES[kind]
    result = os.path.join(run_dir, "result.json")
    if os.path.exists(result):
        with open(result) as f:
            return json.load(f)
    os.makedirs(run_dir, exist_ok=True)
    log = os.path.join(run_dir, "log.txt")
    py = sys.executable
    if impl in ("ours", "ours-quirks"):
        out = os.path.join(run_dir, "run")
        targs = train_args(data_root, ds, features, a.epochs, a.n_batches, seed, out, a.lr)
        cmd = ([py, "-m", "avca_tf.cli", "train"] if impl == "ours"
               else [py, os.path.abspath(__file__), "--_ours-quirks"]) + targs
        wall = sh(cmd, log, our_env(a.threads))
        with open(os.path.join(out, "results.json")) as f:
            r = json.load(f)
        res = dict(implementation=impl, config=cfg, seed=seed, test={k: r["test"][k] for k in
                                                                     ("S", "U", "HM", "ZSL")},
                   beta=r["test"].get("beta"), best_epoch_1based=r["stage1"]["best_epoch"],
                   stage2_epochs=len(r["stage2"]["epochs"]), wall_s=wall, command=cmd)
    else:
        cmd = [a.torch_python, os.path.join(HERE, "reference", "tcaf_run.py"),
               "--reference-repo", a.reference_repo, "--root", os.path.join(data_root, ds),
               "--config", cfg, "--seed", str(seed), "--epochs", str(a.epochs),
               "--n-batches", str(a.n_batches), "--threads", str(a.threads),
               *(["--lr", str(a.lr)] if a.lr else []),
               "--workdir", os.path.join(run_dir, "work"), "--out", os.path.join(run_dir, "theirs.json"),
               *(["--fix-quirks"] if impl == "authors-fixed" else [])]
        wall = sh(cmd, log, torch_env(a.threads))
        with open(os.path.join(run_dir, "theirs.json")) as f:
            r = json.load(f)
        res = dict(implementation=impl, config=cfg, seed=seed, test=r["test"], beta=r["beta"],
                   best_epoch_1based=r["best_epoch_0based"] + 1, stage2_epochs=r["stage2_epochs"],
                   wall_s=wall, command=cmd,
                   phases_s={k: r[k] for k in ("stage1_s", "stage2_s", "eval_s")})
    with open(result, "w") as f:
        json.dump(res, f, indent=1)
    print(f"{cfg} {impl} seed {seed}: HM {100 * res['test']['HM']:.2f} "
          f"({wall:.0f} s)", flush=True)
    return res


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_ours-quirks":
        return ours_quirks_main(argv[1:])
    a = parse_args(argv)
    a.reference_repo = os.path.abspath(a.reference_repo)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    configs = a.configs.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    impls = a.impls.split(",")
    before = machine()
    results, synth_cmds = [], []
    for cfg in configs:
        ds, kind = cfg.split("-")
        data_root = os.path.join(out, "data", cfg)
        if not os.path.isdir(os.path.join(data_root, ds)):
            cmd = [sys.executable, "-m", "avca_tf.cli", "synth", "--temporal", "--dataset", ds,
                   "--features", FEATURES[kind], "--scale", str(a.scale), "--seed",
                   str(a.synth_seed), "--out", data_root]
            os.makedirs(os.path.join(out, "data"), exist_ok=True)
            sh(cmd, os.path.join(out, "data", f"{cfg}.log"), our_env(a.threads))
            synth_cmds.append(cmd)
        for seed in seeds:
            for impl in impls:
                results.append(run_one(impl, a, cfg, seed, data_root,
                                       os.path.join(out, "runs", cfg, impl, f"seed{seed}")))
    repro = None
    if not a.no_repro and "ours" in impls:
        cfg, seed = configs[0], seeds[0]
        first = os.path.join(out, "runs", cfg, "ours", f"seed{seed}")
        again = os.path.join(out, "runs", cfg, "ours-repeat", f"seed{seed}")
        r2 = run_one("ours", a, cfg, seed, os.path.join(out, "data", cfg), again)
        same = filecmp.cmp(os.path.join(first, "run", "results.json"),
                           os.path.join(again, "run", "results.json"), shallow=False)
        repro = {"config": cfg, "seed": seed, "results_json_identical": same,
                 "wall_s": r2["wall_s"]}
    after = machine()
    md = [f"Schedule: stage 1 {a.epochs} epochs x {a.n_batches} batches of 64, stage 2 for "
          f"the best epoch count; learning rate {a.lr or 'of each preset'}; synthetic data `avca synth --temporal --scale {a.scale} "
          f"--seed {a.synth_seed}`; {a.threads} thread(s) per run; seeds {a.seeds}.", "",
          table(results, configs, impls), ""]
    write_report(out, "tcaf_compare", md, repro, before, after,
                 {"args": vars(a), "results": results, "synth_commands": synth_cmds})
    return 0


if __name__ == "__main__":
    sys.exit(main())
