"""What the evaluator component computes, as a plain function.

Test metrics are recomputed here from the trained model and the ingested test
folders (not copied from the trainer's results.json), with the stage-1 beta.
Validation metrics are those of the best stage-1 epoch: the final model was
trained on the validation classes, so re-scoring it there would be
meaningless. Every number is in percent, like the published tables.
"""
import numpy as np

from avca_tf.errors import AvcaError
from components.pipeline_data import load_pipeline_benchmark

HEADLINE = ("S", "U", "HM", "ZSL")


class EvaluationError(AvcaError):
    """The trained run and the evaluation data do not fit together."""


def _percent(d: dict) -> dict:
    return {k: 100.0 * float(d[k]) for k in HEADLINE}


def evaluate_run(examples_dir: str, class_embeddings_dir: str, run_dir: str) -> dict:
    """{"val", "test": S/U/HM/ZSL, "test_per_class_recall": {class: percent}, "beta", ...}."""
    from avca_tf.training.protocol import evaluate_test, load_run
    run = load_run(run_dir)
    bench = load_pipeline_benchmark(examples_dir, class_embeddings_dir,
                                    run.run_config.data.text_pairing)
    if tuple(bench.class_names) != tuple(run.class_names):
        raise EvaluationError(f"{run_dir} was trained on other classes than {examples_dir} holds")
    if not np.allclose(bench.label_embeddings, run.label_embeddings, atol=1e-6):
        raise EvaluationError(f"{run_dir} was trained with other label embeddings than "
                              f"{class_embeddings_dir} holds")
    data = bench.protocol(2)
    test = evaluate_test(run.model, run.run_config, bench, run.beta)
    recall = {bench.class_names[i]: 100.0 * float(r)
              for i, r in enumerate(test.per_class_recall) if np.isfinite(r)}
    stage1 = run.results["stage1"]
    return {
        "dataset": bench.dataset, "feature_set": bench.feature_set,
        "model": run.run_config.model.name,
        "text_pairing": bench.text_pairing, "beta": float(run.beta),
        "val": {**_percent(stage1["best"]), "epoch": int(stage1["best_epoch"])},
        "test": {**_percent(test.to_dict()), "num_seen_samples": len(data.eval_seen),
                 "num_unseen_samples": len(data.eval_unseen)},
        "test_per_class_recall": recall,
        "test_seen_classes": [bench.class_names[i] for i in data.seen_class_ids],
        "test_unseen_classes": [bench.class_names[i] for i in data.unseen_class_ids],
        "classes_without_samples": [bench.class_names[i] for i in test.classes_without_samples],
    }
