"""Runs the authors' ClipClap-GZSL protocol (their main.py `run()`: stage 1, stage 2,
get_evaluation) on CPU through two_stage.run_two_stage, with its run-time shims
(listed in two_stage.py). Nothing of their code is copied here or changed on disk.

Arguments: their config/default.yaml overridden by config/clipclap.yaml (what
configargparse does with `--cfg`), then their README command line for the dataset
(--epochs, --lr, --use_wavcaps_embeddings True, --modality both, --word_embeddings
both; ref_step.clipclap_settings), then --seed/--epochs/--n-batches/--lr, device cpu;
options neither file sets read as None (configargparse's default). Stage 2 runs for
the best stage-1 epoch (0-based) + 1 epochs, as their `run()` does.

Their loader caches the processed features in `<root_dir>/_features_processed`,
i.e. beside the data. So that every run reads the benchmark afresh, the run's
--root_dir is a view made in the new --workdir: `<workdir>/data/<DS>` with
symbolic links to the benchmark's `class-split` and `features` folders; the cache
lands in `<workdir>/data/<DS>/_features_processed` and nothing is written under --root.

    /work/refvenv/bin/python benchmarks/reference/clipclap_run.py \
        --reference-repo /work/ref/ClipClap-GZSL --root D/UCF --dataset UCF \
        --seed 0 --epochs 8 --n-batches 50 --workdir W --out W/result.json
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_step  # noqa: E402  (same folder: clipclap_settings)
import two_stage  # noqa: E402  (same folder: shims and their run())


def parse_args(argv):
    return two_stage.parse_run_args(
        __doc__, argv,
        ("--dataset", dict(default="UCF", choices=sorted(ref_step.CLIPCLAP_CONFIGS))),
        {"epochs": "20 UCF, 15 others", "lr": "7e-5 UCF, 1e-4 others"})


def data_view(root, workdir, dataset):
    """<workdir>/data/<DS> linking the benchmark's class-split and features folders."""
    view = os.path.join(workdir, "data", dataset)
    os.makedirs(view)
    for name in ("class-split", "features"):
        src = os.path.join(root, name)
        if not os.path.isdir(src):
            raise SystemExit(f"{root}: no {name}/ folder")
        os.symlink(src, os.path.join(view, name))
    return view


def build_args(repo, dataset, root, seed, epochs, n_batches, log_dir, lr=None):
    import pathlib
    s = ref_step.clipclap_settings(repo, dataset)
    s.update(root_dir=pathlib.Path(root), log_dir=pathlib.Path(log_dir), seed=seed,
             device="cpu", run="all", exp_name="",
             feature_extraction_method=pathlib.Path(s["feature_extraction_method"]))
    for key, value in (("epochs", epochs), ("n_batches", n_batches), ("lr", lr)):
        if value:
            s[key] = value
    return two_stage.RefArgs(**s), two_stage.eval_namespace(s)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    two_stage.reexec(a.torch_python, argv, __file__, "CLIPCLAP_RUN_REEXEC")
    repo = os.path.abspath(a.reference_repo)
    out = os.path.abspath(a.out)
    workdir = two_stage.fresh_workdir(a.workdir)
    root = data_view(os.path.abspath(a.root), workdir, a.dataset)
    r = two_stage.run_two_stage(
        repo, workdir, threads=a.threads, stage2_if_zero=False,
        make_args=lambda: build_args(repo, a.dataset, root, a.seed, a.epochs, a.n_batches,
                                     os.path.join(workdir, "runs"), a.lr))
    result = dict(implementation="authors", model="clipclap", dataset=a.dataset, seed=a.seed, **r)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
