"""GZSL evaluator: S/U/HM/ZSL and per-class recall into ModelEvaluation, plus the blessing.

Stands in for the standard Evaluator (it needs tensorflow_data_validation and
TFMA slicing that GZSL metrics do not fit). Outputs follow its conventions:
`evaluation` (metrics.json; the headline numbers also as custom properties so
MLMD queries see them) and `blessing` with the `blessed`, `current_model` and
`current_model_id` properties that Pusher and LatestBlessedModelStrategy read.
"""
import json
import os

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import io_utils as tfx_io

from components import blessing as bl
from components.artifact_io import local_input
from components.artifacts import ClassEmbeddings

METRICS_FILE = "metrics.json"


@component
def GZSLEvaluator(
    examples: InputArtifact[standard_artifacts.Examples],
    class_embeddings: InputArtifact[ClassEmbeddings],
    model: InputArtifact[standard_artifacts.Model],
    model_run: InputArtifact[standard_artifacts.ModelRun],
    evaluation: OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    hm_threshold: Parameter[float],
    code_version: Parameter[str],
    baseline_blessing: InputArtifact[standard_artifacts.ModelBlessing] = None,
    serving_model_dir: Parameter[str] = "",
):
    """`code_version`: a hash of the code that evaluates (part of the cache key).
    `serving_model_dir`: where Pusher pushes; a model whose serving inputs differ from
    the newest version there is not blessed."""
    from components.gzsl_evaluation import HEADLINE, evaluate_run
    with local_input(examples.uri) as ex_dir, local_input(class_embeddings.uri) as emb_dir, \
            local_input(model_run.uri) as run_dir:
        metrics = evaluate_run(ex_dir, emb_dir, run_dir)
    baseline = None
    if baseline_blessing is not None:
        baseline = bl.Baseline(
            model_id=baseline_blessing.get_int_custom_property(bl.CURRENT_MODEL_ID),
            test_hm=baseline_blessing.get_float_custom_property(bl.TEST_HM))
    problem = None
    if serving_model_dir:
        from avca_tf.serving.export import signature_mismatch
        from components.train_step import SERVING_SUBDIR
        problem = signature_mismatch(serving_model_dir, os.path.join(model.uri, SERVING_SUBDIR))
    decision = bl.decide_blessing(metrics["test"]["HM"], hm_threshold, model.id, baseline,
                                  problem)
    metrics["blessing"] = {"blessed": decision.blessed, "reason": decision.reason,
                           "hm_threshold": hm_threshold, "model_id": model.id,
                           "baseline_model_id": baseline and baseline.model_id,
                           "baseline_test_hm": baseline and baseline.test_hm}
    tfx_io.write_string_file(os.path.join(evaluation.uri, METRICS_FILE),
                             json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    for split in ("val", "test"):
        for key in HEADLINE:
            evaluation.set_float_custom_property(f"{split}_{key}", metrics[split][key])
    evaluation.set_float_custom_property("beta", metrics["beta"])
    print(f"GZSLEvaluator: {decision.reason} -> {'BLESSED' if decision.blessed else 'not blessed'}",
          flush=True)
    blessing.set_int_custom_property(bl.BLESSED, int(decision.blessed))
    blessing.set_string_custom_property(bl.CURRENT_MODEL, model.uri)
    blessing.set_int_custom_property(bl.CURRENT_MODEL_ID, model.id)
    blessing.set_float_custom_property(bl.TEST_HM, metrics["test"]["HM"])
    blessing.set_float_custom_property(bl.THRESHOLD, hm_threshold)
    blessing.set_string_custom_property(bl.REASON, decision.reason)
    if baseline is not None:
        blessing.set_float_custom_property(bl.BASELINE_HM, baseline.test_hm)
    # Marker files, as the standard Evaluator writes them.
    tfx_io.write_string_file(os.path.join(blessing.uri, "BLESSED" if decision.blessed
                                          else "NOT_BLESSED"), "")
