"""Runs the authors' TCaF two-stage protocol (their main.py `run()`) on CPU.

Their training script cannot run here unchanged: it needs CUDA (`.cuda()` in
their dataset's `map_embeddings_target`), `configargparse` for its arguments and
TensorBoard for logging. This driver imports their modules from the checkout
given by --reference-repo and calls their own functions: `main.main(args)` for
stage 1 (train, validation every epoch -> best epoch) and stage 2 (train+val,
checkpoints), then `get_evaluation.get_evaluation(eval_args)` (stage-1 model for
the calibration beta on validation, stage-2 checkpoint of the best epoch on test).
What `run()` does between them is restated in two_stage.run_two_stage, including their
`if best_epoch:` test (a best epoch 0 makes stage 2 run all epochs).
Nothing of their code is copied here or changed on disk.

Run-time shims (this process only): those of two_stage.py (shared with
clipclap_run.py): `.cuda()` as identity, DataLoader workers 0,
configargparse/TensorBoard/matplotlib stubs, `ReduceLROnPlateau(verbose=...)`,
numpy < 1.24 ragged `np.array` in their src/dataset.py, pandas column names in
their `setup_evaluation`.
Arguments: their config/default.yaml overridden by the config/best yaml (what
configargparse does with `-c`), then --seed/--epochs/--n-batches, device cpu;
options neither file sets read as None (configargparse's default).

--fix-quirks runs their code with the quirks of docs/tcaf.md ("The authors' quirks") fixed, by run-time
patches of this process only (fix_quirks below), for the "theirs with quirks fixed"
row of benchmarks/compare_tcaf.py:
- video normalised over the feature axis: their model module's `F.normalize(v)`
  (torch's default dim=1 is the time axis of [B, T, D]) gets dim=-1;
- positions at evaluation as in training: their `get_embeddings` ignores the step
  times it is given (integer positions); it becomes their `forward` with those times
  (theta_o and theta_w are what it returns);
- batch-norm statistics moved once per step: the train-mode `get_embeddings` their
  loop runs after each optimizer step (only for logged metrics) runs in eval mode
  without gradients;
- stage 2 for best epoch + 1 epochs also when the best epoch is 0;
- text vectors in class-id order (ref_step.correct_text_pairing; their UCF loader
  has AVCA's pairing defect).

Their loader caches processed features under the working directory
(`avgzsl_benchmark_non_averaged_datasets/<DS>/_features_processed`, their
issue 5), so --workdir must be new or empty: every run reads --root afresh.

    python benchmarks/reference/tcaf_run.py --reference-repo /work/ref/TCAF-GZSL \
        --torch-python /work/refvenv/bin/python --root D/UCF --config UCF-main \
        --seed 0 --epochs 3 --n-batches 20 --workdir W --out W/result.json
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_step  # noqa: E402  (same folder: config table)
import two_stage  # noqa: E402  (same folder: shims and their run())
from two_stage import RefArgs  # noqa: E402


def parse_args(argv):
    return two_stage.parse_run_args(
        __doc__, argv, ("--config", dict(required=True, choices=sorted(ref_step.TCAF_CONFIGS))),
        {"epochs": "50", "lr": "the config's"},
        ("--fix-quirks", dict(action="store_true", help="their code with its quirks fixed")))


def fix_quirks():
    """Patches their modules (this process) so that their code runs without its quirks."""
    import contextlib
    import types

    import torch
    import src.dataset
    import src.model_sequence as their_model
    ref_step.correct_text_pairing(src.dataset)

    functional = their_model.F

    class FeatureAxisNormalize(types.ModuleType):
        def __getattr__(self, name):
            return getattr(functional, name)

        @staticmethod
        def normalize(x, *a, **kw):
            if not a and "dim" not in kw:
                kw["dim"] = -1
            return functional.normalize(x, *a, **kw)
    their_model.F = FeatureAxisNormalize("F_feature_axis")

    def get_embeddings(self, a, v, w, masks, timesteps):
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad() if was_training else contextlib.nullcontext():
                out = self.forward(a, v, w, masks, timesteps)
        finally:
            self.train(was_training)
        return out["theta_o"], out["theta_o"], out["theta_w"]
    their_model.Multimodal_Sequence_Transformer.get_embeddings = get_embeddings


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
    return RefArgs(**s), two_stage.eval_namespace(s)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    two_stage.reexec(a.torch_python, argv, __file__, "TCAF_RUN_REEXEC")
    repo = os.path.abspath(a.reference_repo)
    root = os.path.abspath(a.root)
    out = os.path.abspath(a.out)
    workdir = two_stage.fresh_workdir(a.workdir)
    r = two_stage.run_two_stage(
        repo, workdir, threads=a.threads, stage2_if_zero=not a.fix_quirks,
        patch=fix_quirks if a.fix_quirks else None,
        make_args=lambda: build_args(repo, a.config, root, a.seed, a.epochs, a.n_batches,
                                     os.path.join(workdir, "runs"), a.lr))
    result = dict(implementation="authors-fixed" if a.fix_quirks else "authors", config=a.config, seed=a.seed, **r)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
