"""Runs the authors' TCaF two-stage protocol (their main.py `run()`) on CPU.

Their training script cannot run here unchanged: it needs CUDA (`.cuda()` in
their dataset's `map_embeddings_target`), `configargparse` for its arguments and
TensorBoard for logging. This driver imports their modules from the checkout
given by --reference-repo and calls their own functions: `main.main(args)` for
stage 1 (train, validation every epoch -> best epoch) and stage 2 (train+val,
checkpoints), then `get_evaluation.get_evaluation(eval_args)` (stage-1 model for
the calibration beta on validation, stage-2 checkpoint of the best epoch on test).
What `run()` does between them is restated below, including their
`if best_epoch:` test (a best epoch 0 makes stage 2 run all epochs).
Nothing of their code is copied here or changed on disk.

Run-time shims (this process only):
- `torch.Tensor.cuda` returns the tensor itself (CPU run);
- their DataLoaders run with num_workers=0 (the shared 2-core machine; their
  workers only draw the unused negative samples);
- `configargparse` (only its Namespace is used once the arguments are built),
  `torch.utils.tensorboard.SummaryWriter` (no-op) and `matplotlib` stubs;
- `ReduceLROnPlateau(verbose=...)` accepted (ref_step.install_shims);
- in their src/dataset.py, `np.array` of a list of different-length sequences
  gives the 1-D object array the numpy of their time (< 1.24) gave, instead of
  numpy 2's ValueError (their `all_data` stacks the ragged videos that way);
- their `setup_evaluation(args, config.__dict__.keys())` gets the keys as
  separate column names (current pandas rejects a dict_keys column name; the
  table only logs test stats).
Arguments: their config/default.yaml overridden by the config/best yaml (what
configargparse does with `-c`), then --seed/--epochs/--n-batches, device cpu;
options neither file sets read as None (configargparse's default).

Their loader caches processed features under the working directory
(`avgzsl_benchmark_non_averaged_datasets/<DS>/_features_processed`, their
issue 5), so --workdir must be new or empty: every run reads --root afresh.

    python benchmarks/reference/tcaf_run.py --reference-repo /work/ref/TCAF-GZSL \
        --torch-python /work/refvenv/bin/python --root D/UCF --config UCF-main \
        --seed 0 --epochs 3 --n-batches 20 --workdir W --out W/result.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_step  # noqa: E402  (same folder: shims, config table, re-exec)


class RefArgs(argparse.Namespace):
    """argparse Namespace whose unset options read as None (configargparse default)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-repo", required=True)
    p.add_argument("--torch-python")
    p.add_argument("--root", required=True, help="<benchmark root>/<DS> (their --root_dir)")
    p.add_argument("--config", required=True, choices=sorted(ref_step.TCAF_CONFIGS))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=int, help="stage-1 epochs (theirs: 50)")
    p.add_argument("--n-batches", type=int, help="batches per epoch (theirs: 300)")
    p.add_argument("--lr", type=float, help="learning rate (theirs: the config's)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--workdir", required=True, help="new or empty working directory")
    p.add_argument("--out", required=True, help="JSON result file")
    return p.parse_args(argv)


def install_more_shims(torch):
    ref_step.install_shims(torch)
    torch.Tensor.cuda = lambda self, *a, **k: self
    import torch.utils.data as tud
    orig = tud.DataLoader
    if not getattr(orig, "_tcaf_run_shim", False):
        class DataLoader(orig):
            _tcaf_run_shim = True

            def __init__(self, *a, **kw):
                kw["num_workers"] = 0
                super().__init__(*a, **kw)
        tud.DataLoader = DataLoader
    cap = types.ModuleType("configargparse")
    cap.Namespace = argparse.Namespace
    cap.ArgParser = None
    cap.YAMLConfigFileParser = None
    sys.modules.setdefault("configargparse", cap)
    tb = types.ModuleType("torch.utils.tensorboard")

    class SummaryWriter:
        def __init__(self, *a, **k):
            pass

        def __getattr__(self, name):
            return lambda *a, **k: None
    tb.SummaryWriter = SummaryWriter
    sys.modules["torch.utils.tensorboard"] = tb
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        mpl = types.ModuleType("matplotlib")
        mpl.pyplot = types.ModuleType("matplotlib.pyplot")
        sys.modules["matplotlib"] = mpl
        sys.modules["matplotlib.pyplot"] = mpl.pyplot


def ragged_numpy_compat():
    """A numpy module whose `array` builds an object array of ragged lists (numpy < 1.24)."""
    import numpy

    class Compat(types.ModuleType):
        def __getattr__(self, name):
            return getattr(numpy, name)

    def array(obj, *a, **kw):
        try:
            return numpy.array(obj, *a, **kw)
        except ValueError:
            if a or kw or not isinstance(obj, (list, tuple)):
                raise
            out = numpy.empty(len(obj), dtype=object)
            for i, x in enumerate(obj):
                out[i] = x
            return out
    m = Compat("numpy_ragged_compat")
    m.array = array
    return m


def build_args(repo, config, root, seed, epochs, n_batches, log_dir, lr=None):
    import pathlib
    s = ref_step.read_yaml(os.path.join(repo, "config/default.yaml"))
    s.update(ref_step.read_yaml(os.path.join(repo, ref_step.TCAF_CONFIGS[config]["yaml"])))
    for k in ("lr", "embedding_dropout", "decoder_dropout", "additional_dropout",
              "transformer_dropout", "transformer_embedding_dropout",
              "transformer_embedding_fourier_scale"):
        s[k] = float(s[k])
    s.update(root_dir=pathlib.Path(root), log_dir=pathlib.Path(log_dir), seed=seed,
             device="cpu", run="all", exp_name="",
             feature_extraction_method=pathlib.Path(s["feature_extraction_method"]))
    if epochs:
        s["epochs"] = epochs
    if n_batches:
        s["n_batches"] = n_batches
    if lr:
        s["lr"] = lr
    args = RefArgs(**s)
    # their args_main: eval namespace = shared args + eval group + model group
    shared = ["root_dir", "dataset_name", "device", "batch_seqlen_test",
              "batch_seqlen_test_maxlen", "batch_seqlen_test_trim"]
    eval_keys = ["load_path_stage_A", "load_path_stage_B", "eval_name", "eval_bs",
                 "eval_num_workers", "eval_save_performances"]
    model_keys = ["baseline", "audio_baseline", "video_baseline", "concatenated_baseline", "cjme",
                  "new_model", "new_model_early_fusion", "new_model_middle_fusion",
                  "new_model_attention", "new_model_attention_both_heads", "new_model_sequence",
                  "perceiver", "attention_fusion", "ale", "devise", "sje", "apn"]
    eval_args = RefArgs(**{k: s.get(k) for k in shared + eval_keys + model_keys})
    return args, eval_args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    if a.torch_python and os.path.abspath(sys.executable) != os.path.abspath(a.torch_python) \
            and os.environ.get("TCAF_RUN_REEXEC") != "1":
        import subprocess
        env = dict(os.environ, TCAF_RUN_REEXEC="1")
        sys.exit(subprocess.run([a.torch_python, os.path.abspath(__file__)] + list(argv),
                                env=env).returncode)
    repo = os.path.abspath(a.reference_repo)
    root = os.path.abspath(a.root)
    out = os.path.abspath(a.out)
    workdir = os.path.abspath(a.workdir)
    os.makedirs(workdir, exist_ok=True)
    if os.listdir(workdir):
        raise SystemExit(f"{workdir}: not empty (their feature cache lives in the working directory)")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    install_more_shims(torch)
    ref_step.import_reference(repo)
    os.chdir(workdir)
    import main as their_main           # their main.py
    import get_evaluation as their_eval  # their get_evaluation.py
    import src.dataset as their_dataset
    their_dataset.np = ragged_numpy_compat()

    orig_setup = their_eval.setup_evaluation

    def setup_evaluation_compat(args, *stats):
        flat = []
        for st in stats:
            flat.extend(st if isinstance(st, type({}.keys())) else [st])
        return orig_setup(args, *flat)
    their_eval.setup_evaluation = setup_evaluation_compat

    captured = {}
    orig_test = their_eval.test

    def test_capture(*args, **kw):
        captured["results"] = orig_test(*args, **kw)
        return captured["results"]
    their_eval.test = test_capture

    args, eval_args = build_args(repo, a.config, root, a.seed, a.epochs, a.n_batches,
                                 os.path.join(workdir, "runs"), a.lr)
    t = {}
    # their run(): stage 1, stage 2 (best epoch + 1 epochs unless best epoch is 0), eval
    t0 = time.perf_counter()
    args.retrain_all = False
    args.save_checkpoints = False
    path_stage_1, best_epoch = their_main.main(args)
    eval_args.load_path_stage_A = path_stage_1
    t["stage1_s"] = time.perf_counter() - t0
    stage1_epochs = args.epochs
    t0 = time.perf_counter()
    args.retrain_all = True
    args.save_checkpoints = True
    if best_epoch:
        args.epochs = best_epoch + 1
    stage2_epochs = args.epochs
    path_stage_2, _ = their_main.main(args)
    eval_args.load_path_stage_B = path_stage_2
    t["stage2_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    their_eval.get_evaluation(eval_args)
    t["eval_s"] = time.perf_counter() - t0
    r = captured["results"]["both"]
    result = dict(implementation="authors", config=a.config, seed=a.seed,
                  reference_commit=ref_step.repo_commit(repo), torch=torch.__version__,
                  threads=torch.get_num_threads(), stage1_epochs=stage1_epochs,
                  n_batches=args.n_batches, lr=args.lr, best_epoch_0based=best_epoch,
                  stage2_epochs=stage2_epochs, beta=r["beta"],
                  test={"S": r["seen"], "U": r["unseen"], "HM": r["hm"], "ZSL": r["zsl"]},
                  **t)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
