"""Side by side: our ClipClap-GZSL and the authors' code on identical synthetic data.

The data is written once by `avca synth --dataset UCF --features clip_clap`
(the packaged UCF splits, --scale of the real per-class counts); then for each
seed, sequentially:

  ours              `avca train --model clipclap` (the preset, own class/vector pairing)
  ours-ref-pairing  the same with `--text-pairing reference`: the authors' UCF
                    loader pairs class ids with the sorted rows of each text file
                    (sorted CLIP prompt names), so most classes train and test with
                    another class's [CLIP; CLAP] vector; this is the run on equal
                    terms with theirs
  authors           their code as published, through benchmarks/reference/clipclap_run.py
                    (their main.py two-stage protocol and get_evaluation on CPU,
                    run-time shims only)

All runs use the same reduced schedule (--epochs stage-1 epochs x --n-batches
batches of 64, the preset's / their README's learning rate unless --lr; stage 2
for the best epoch count), one thread each (TF_NUM_INTRAOP/INTEROP_THREADS,
torch.set_num_threads) and one at a time. Writes <out>/clipclap_compare.md (the
mean ± sample std table and one row per run with its wall time and load average)
and <out>/summary.json. Runs whose result file exists are not repeated (delete
<out>/runs/... to redo). Our same-seed run is repeated once and its results.json
compared byte for byte (--no-repro skips it).

    PYTHONPATH=. .venv/bin/python benchmarks/compare_clipclap.py \
        --reference-repo /work/ref/ClipClap-GZSL --torch-python /work/refvenv/bin/python \
        --seeds 0,1,2 --epochs 8 --n-batches 100 --scale 0.5 --out /tmp/cmp_cc
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_common import (HERE, machine, our_env, per_seed_table, sh, table,  # noqa: E402
                            torch_env, write_report)

IMPLS = ("ours", "ours-ref-pairing", "authors")
FEATURES = "clip_clap"


def parse_args(argv):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-repo", required=True, help="checkout of dkurzend/ClipClap-GZSL")
    p.add_argument("--torch-python", required=True, help="python with torch for their code")
    p.add_argument("--dataset", default="UCF", choices=["UCF", "ActivityNet", "VGGSound"])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=8, help="stage-1 epochs (published: 20 UCF)")
    p.add_argument("--n-batches", type=int, default=100, help="batches per epoch (published: 300)")
    p.add_argument("--lr", type=float, help="learning rate for every run (default: the preset's "
                   "and their README's, 7e-5 UCF, 1e-4 others)")
    p.add_argument("--scale", type=float, default=0.5, help="avca synth --scale")
    p.add_argument("--synth-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--no-repro", action="store_true", help="skip the bit-reproducibility rerun")
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def run_one(impl, a, seed, data_root, run_dir):
    result = os.path.join(run_dir, "result.json")
    if os.path.exists(result):
        with open(result) as f:
            return json.load(f)
    os.makedirs(run_dir, exist_ok=True)
    log = os.path.join(run_dir, "log.txt")
    cfg = f"{a.dataset}-{FEATURES}"
    load_before = os.getloadavg()
    if impl.startswith("ours"):
        out = os.path.join(run_dir, "run")
        cmd = [sys.executable, "-m", "avca_tf.cli", "train", "--root", data_root,
               "--dataset", a.dataset, "--features", FEATURES, "--model", "clipclap",
               "--epochs", str(a.epochs), "--n-batches", str(a.n_batches), "--seed", str(seed),
               *(["--lr", str(a.lr)] if a.lr else []),
               *(["--text-pairing", "reference"] if impl == "ours-ref-pairing" else []),
               "--out", out, "-q"]
        wall = sh(cmd, log, our_env(a.threads))
        with open(os.path.join(out, "results.json")) as f:
            r = json.load(f)
        res = dict(test={k: r["test"][k] for k in ("S", "U", "HM", "ZSL")},
                   beta=r["test"].get("beta"), best_epoch_1based=r["stage1"]["best_epoch"],
                   stage2_epochs=len(r["stage2"]["epochs"]))
    else:
        theirs = os.path.join(run_dir, "theirs.json")
        cmd = [a.torch_python, os.path.join(HERE, "reference", "clipclap_run.py"),
               "--reference-repo", a.reference_repo, "--root", os.path.join(data_root, a.dataset),
               "--dataset", a.dataset, "--seed", str(seed), "--epochs", str(a.epochs),
               "--n-batches", str(a.n_batches), "--threads", str(a.threads),
               *(["--lr", str(a.lr)] if a.lr else []),
               "--workdir", os.path.join(run_dir, "work"), "--out", theirs]
        wall = sh(cmd, log, torch_env(a.threads))
        with open(theirs) as f:
            r = json.load(f)
        res = dict(test=r["test"], beta=r["beta"], best_epoch_1based=r["best_epoch_0based"] + 1,
                   stage2_epochs=r["stage2_epochs"],
                   phases_s={k: r[k] for k in ("stage1_s", "stage2_s", "eval_s")})
    res = dict(implementation=impl, config=cfg, seed=seed, **res, wall_s=wall,
               load_avg=[load_before[0], os.getloadavg()[0]], command=cmd)
    with open(result, "w") as f:
        json.dump(res, f, indent=1)
    print(f"{cfg} {impl} seed {seed}: S {100 * res['test']['S']:.2f} U {100 * res['test']['U']:.2f} "
          f"HM {100 * res['test']['HM']:.2f} ZSL {100 * res['test']['ZSL']:.2f} ({wall:.0f} s)",
          flush=True)
    return res


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    a.reference_repo = os.path.abspath(a.reference_repo)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    seeds = [int(s) for s in a.seeds.split(",")]
    impls = a.impls.split(",")
    cfg = f"{a.dataset}-{FEATURES}"
    before = machine()
    data_root = os.path.join(out, "data")
    synth_cmd = [sys.executable, "-m", "avca_tf.cli", "synth", "--dataset", a.dataset,
                 "--features", FEATURES, "--scale", str(a.scale), "--seed", str(a.synth_seed),
                 "--out", data_root]
    if not os.path.isdir(os.path.join(data_root, a.dataset)):
        sh(synth_cmd, os.path.join(out, "synth.log"), our_env(a.threads))
    results = []
    for seed in seeds:
        for impl in impls:
            results.append(run_one(impl, a, seed, data_root,
                                   os.path.join(out, "runs", impl, f"seed{seed}")))
    repro = None
    if not a.no_repro and "ours" in impls:
        seed = seeds[0]
        first = os.path.join(out, "runs", "ours", f"seed{seed}")
        again = os.path.join(out, "runs", "ours-repeat", f"seed{seed}")
        r2 = run_one("ours", a, seed, data_root, again)
        same = filecmp.cmp(os.path.join(first, "run", "results.json"),
                           os.path.join(again, "run", "results.json"), shallow=False)
        repro = {"seed": seed, "results_json_identical": same, "wall_s": r2["wall_s"]}
    after = machine()
    md = [f"Schedule: stage 1 {a.epochs} epochs x {a.n_batches} batches of 64, stage 2 for the "
          f"best epoch count; learning rate {a.lr or 'of the preset / their README'}; "
          f"synthetic data `{' '.join(['avca'] + synth_cmd[3:-2])}`; {a.threads} thread(s) per "
          f"run, runs one at a time; seeds {a.seeds}. Test metrics in percent, mean ± sample "
          f"std over seeds.", "", table(results, [cfg], impls), "", "Per run:", "",
          per_seed_table(results), ""]
    write_report(out, "clipclap_compare", md, repro, before, after,
                 {"args": vars(a), "results": results, "synth_command": synth_cmd})
    return 0


if __name__ == "__main__":
    sys.exit(main())
