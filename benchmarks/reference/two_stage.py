"""Shared driver of the authors' two-stage protocol (TCaF, ClipClap-GZSL) on CPU.

Both repositories have the same `main.py` (`main(args)` trains one stage and
returns its log folder and best epoch) and `get_evaluation.py`
(`get_evaluation(eval_args)`: stage-1 model for the calibration beta on
validation, stage-2 checkpoint of the best epoch on test). `run_two_stage`
imports them from the checkout and restates what their `run()` does between
them, including `if best_epoch:` for TCaF (a best epoch 0 makes stage 2 run all
its epochs) or `if best_epoch is not None:` for ClipClap-GZSL. Nothing of their
code is copied here or changed on disk; tcaf_run.py and clipclap_run.py build
the arguments.

Run-time shims (this process only):
- `torch.Tensor.cuda` returns the tensor itself (CPU run);
- their DataLoaders run with num_workers=0 (the shared 2-core machine; their
  workers only draw the unused negative samples);
- `configargparse` (only its Namespace is used once the arguments are built),
  `torch.utils.tensorboard.SummaryWriter` (no-op) and `matplotlib` stubs;
- `ReduceLROnPlateau(verbose=...)` accepted (ref_step.install_shims);
- in their src/dataset.py, `np.array` of a list of different-length sequences
  gives the 1-D object array the numpy of their time (< 1.24) gave, instead of
  numpy 2's ValueError (TCaF's `all_data` stacks the ragged videos that way);
- their `setup_evaluation(args, config.__dict__.keys())` gets the keys as
  separate column names (current pandas rejects a dict_keys column name; the
  table only logs test stats);
- their `log_hparams` (TensorBoard hparam logging into the no-op writer) is
  skipped: ClipClap-GZSL's deletes the keys `audio_hip_blocks`/`video_hip_blocks`,
  which its argument parser does not define, so their `get_evaluation` ends in a
  KeyError right after printing the test results.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_step  # noqa: E402  (same folder: shims, config tables, repo helpers)

# their args_main: eval namespace = these shared args + the eval group + the model group
EVAL_SHARED = ("root_dir", "dataset_name", "device", "batch_seqlen_test",
               "batch_seqlen_test_maxlen", "batch_seqlen_test_trim")
EVAL_KEYS = ("load_path_stage_A", "load_path_stage_B", "eval_name", "eval_bs",
             "eval_num_workers", "eval_save_performances")
MODEL_KEYS = ("baseline", "audio_baseline", "video_baseline", "concatenated_baseline", "cjme",
              "new_model", "new_model_early_fusion", "new_model_middle_fusion",
              "new_model_attention", "new_model_attention_both_heads", "new_model_sequence",
              "perceiver", "attention_fusion", "ale", "devise", "sje", "apn")


def parse_run_args(doc, argv, which, defaults, *extra):
    """The arguments of a driver script (tcaf_run.py, clipclap_run.py): the shared ones
    plus `which` and each of `extra` = (flag, argparse kwargs); `defaults` = help texts
    naming their schedule (keys epochs, lr)."""
    p = argparse.ArgumentParser(allow_abbrev=False, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-repo", required=True)
    p.add_argument("--torch-python")
    p.add_argument("--root", required=True, help="<benchmark root>/<DS> (their --root_dir)")
    for flag, kwargs in (which,) + extra:
        p.add_argument(flag, **kwargs)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=int, help=f"stage-1 epochs (theirs: {defaults['epochs']})")
    p.add_argument("--n-batches", type=int, help="batches per epoch (theirs: 300)")
    p.add_argument("--lr", type=float, help=f"learning rate (theirs: {defaults['lr']})")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--workdir", required=True, help="new or empty working directory")
    p.add_argument("--out", required=True, help="JSON result file")
    return p.parse_args(argv)


class RefArgs(argparse.Namespace):
    """argparse Namespace whose unset options read as None (configargparse default)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def eval_namespace(settings: dict, extra=()) -> RefArgs:
    """Their evaluation namespace from the resolved settings."""
    return RefArgs(**{k: settings.get(k) for k in EVAL_SHARED + EVAL_KEYS + MODEL_KEYS
                      + tuple(extra)})


def reexec(torch_python, argv, script, flag):
    """Re-run `script` under `torch_python` unless this already is that interpreter."""
    if not torch_python or os.path.abspath(sys.executable) == os.path.abspath(torch_python) \
            or os.environ.get(flag) == "1":
        return
    env = dict(os.environ, **{flag: "1"})
    sys.exit(subprocess.run([torch_python, os.path.abspath(script)] + list(argv),
                            env=env).returncode)


def install_run_shims(torch):
    ref_step.install_shims(torch)
    torch.Tensor.cuda = lambda self, *a, **k: self
    import torch.utils.data as tud
    orig = tud.DataLoader
    if not getattr(orig, "_two_stage_shim", False):
        class DataLoader(orig):
            _two_stage_shim = True

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


def fresh_workdir(path):
    path = os.path.abspath(path)
    os.makedirs(path, exist_ok=True)
    if os.listdir(path):
        raise SystemExit(f"{path}: not empty (their feature cache must not be reused)")
    return path


def run_two_stage(repo, workdir, make_args, threads=0, stage2_if_zero=False, patch=None):
    """Their run(): stage 1, stage 2 for best epoch + 1 epochs, evaluation.

    `make_args()` -> (args, eval_args) is called after the shims are in place and
    the working directory is `workdir`. `stage2_if_zero`: TCaF's `if best_epoch:`
    (a best epoch 0 leaves stage 2 at all epochs); otherwise ClipClap-GZSL's
    `if best_epoch is not None:`. `patch()`, if given, runs once their modules are
    importable, before anything of theirs is built (tcaf_run.py --fix-quirks). Returns
    the result fields (test metrics, beta, epochs, phase times)."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    if threads:
        torch.set_num_threads(threads)
    install_run_shims(torch)
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

    def test_capture(*a, **kw):
        captured["results"] = orig_test(*a, **kw)
        return captured["results"]
    their_eval.test = test_capture
    their_eval.log_hparams = lambda *a, **kw: None
    if patch is not None:
        patch()

    args, eval_args = make_args()
    t = {}
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
    if (best_epoch if stage2_if_zero else best_epoch is not None):
        args.epochs = best_epoch + 1
    stage2_epochs = args.epochs
    path_stage_2, _ = their_main.main(args)
    eval_args.load_path_stage_B = path_stage_2
    t["stage2_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    their_eval.get_evaluation(eval_args)
    t["eval_s"] = time.perf_counter() - t0
    r = captured["results"]["both"]
    return dict(reference_commit=ref_step.repo_commit(repo), torch=torch.__version__,
                threads=torch.get_num_threads(), stage1_epochs=stage1_epochs,
                n_batches=args.n_batches, lr=args.lr, best_epoch_0based=best_epoch,
                stage2_epochs=stage2_epochs, beta=r["beta"],
                test={"S": r["seen"], "U": r["unseen"], "HM": r["hm"], "ZSL": r["zsl"]}, **t)
