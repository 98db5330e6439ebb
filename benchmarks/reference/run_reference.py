"""Runs one script of the authors' AVCA-GZSL checkout (main.py or get_evaluation.py) under
a Python with torch, with run-time shims only (nothing of their code is copied here).

    TORCH_PYTHON benchmarks/reference/run_reference.py --reference-repo /work/ref/AVCA-GZSL \
        --pairing corrected -- main.py --root_dir ... (their arguments)

Run it with the working directory where their outputs should go: their loader caches
processed features under `./avgzsl_benchmark_datasets/<DS>/_features_processed` (not
under --root_dir), and runs go to `./runs/<exp_name>`; `benchmarks/avca_accuracy.py`
gives every run a fresh working directory for that reason.

Shims (environment only, no change to the model, losses, sampler or protocol):
- torchvision: a stub module (their model module imports it, unused; not installed).
- Tensor.cuda(): returns the tensor itself (their baselines' loss and class-embedding
  lookup call it unconditionally; CPU run).
- ReduceLROnPlateau(verbose=...): accepted and ignored (removed from current torch).
- PD_Stats(columns=(dict_keys,)): get_evaluation.py passes the config's dict_keys as one
  column, which pandas 3 rejects; the keys become the columns of that never-filled frame.
- --pairing corrected: the text vectors `get_data_by_modality("text")` returns are put in
  class-id order (row i = the vector of class i), as the features were generated from;
  the published code orders them by the sorted `manual` names of the w2v csv, which pairs
  most classes with another class's vector (benchmarks/results/reference_torch.md).

Option that changes their protocol (off by default; used to measure one difference):
- --gzsl-beta both: the test calibrates with the validation beta of the audio-visual
  ("both") evaluation alone, our rule, instead of their mean of the audio, video and both
  betas (src/test.py). Only AVGZSLNet and CJME have three different betas; ALE, SJE,
  DeViSE, APN and AVCA report one beta three times, so the option leaves them unchanged.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_step  # noqa: E402  (same folder: correct_text_pairing)


def install_shims(pairing: str, gzsl_beta: str = "averaged") -> None:
    import torch
    ref_step.install_shims(torch)
    torch.Tensor.cuda = lambda self, *a, **k: self

    import src.logger
    import src.utils

    class PD_Stats(src.logger.PD_Stats):
        def __init__(self, path, columns):
            flat = []
            for c in columns:
                flat.extend(c if isinstance(c, type({}.keys())) else [c])
            super().__init__(path, flat)
    src.logger.PD_Stats = src.utils.PD_Stats = PD_Stats

    if pairing == "corrected":
        import src.dataset
        ref_step.correct_text_pairing(src.dataset)

    if gzsl_beta == "both":
        import src.test
        evaluate = src.test.evaluate_dataset

        def evaluate_dataset(*a, best_beta=None, **kw):
            result = evaluate(*a, best_beta=best_beta, **kw)
            if best_beta is None:  # the validation pass: every mean of betas = both's
                both = result["both"]["beta"]
                result = {**result, "audio": {**result["audio"], "beta": both},
                          "video": {**result["video"], "beta": both}}
            return result
        src.test.evaluate_dataset = evaluate_dataset


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: run_reference.py --reference-repo DIR [--pairing P] [--gzsl-beta B] "
                         "-- SCRIPT ARGS")
    split = argv.index("--")
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("--reference-repo", required=True)
    p.add_argument("--pairing", choices=("published", "corrected"), default="corrected")
    p.add_argument("--gzsl-beta", choices=("averaged", "both"), default="averaged",
                   help="test calibration: their mean of the audio/video/both validation "
                        "betas (default) or the both beta alone (ours)")
    args = p.parse_args(argv[:split])
    script, rest = argv[split + 1], argv[split + 2:]
    repo = os.path.abspath(args.reference_repo)
    sys.path.insert(0, repo)
    install_shims(args.pairing, args.gzsl_beta)
    sys.argv = [script] + rest
    runpy.run_path(os.path.join(repo, script), run_name="__main__")


if __name__ == "__main__":
    main()
