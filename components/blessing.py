"""The blessing rule of the GZSL evaluator, separate from TFX so it is unit-tested.

A model is blessed (Pusher pushes it) when its test HM reaches the threshold
and is not worse than the HM of the last blessed model of the same pipeline.
Re-evaluating the very model that is already blessed blesses nothing new, so
a re-run with unchanged inputs does not push a duplicate version. A model
whose serving inputs differ from the serving model's current version is
never blessed (clients of one serving name send one input signature).
"""
from dataclasses import dataclass
from typing import Optional

# Custom properties on the ModelBlessing artifact. `blessed`, `current_model`
# and `current_model_id` are what Pusher and LatestBlessedModelStrategy read.
BLESSED = "blessed"
CURRENT_MODEL = "current_model"
CURRENT_MODEL_ID = "current_model_id"
TEST_HM = "test_hm"
THRESHOLD = "hm_threshold"
BASELINE_HM = "baseline_hm"
REASON = "reason"


@dataclass(frozen=True)
class Baseline:
    """The last blessed model of the pipeline, as the resolver found it."""
    model_id: int
    test_hm: float


@dataclass(frozen=True)
class BlessingDecision:
    blessed: bool
    reason: str


def decide_blessing(test_hm: float, threshold: float, model_id: int,
                    baseline: Optional[Baseline],
                    signature_problem: Optional[str] = None) -> BlessingDecision:
    """Applies the rule above; HM values are in percent like every reported metric.
    `signature_problem`: why the model cannot be a new version of the serving model."""
    if signature_problem:
        return BlessingDecision(False, f"{signature_problem}; not pushed (pick another "
                                       "--serving-name)")
    if test_hm < threshold:
        return BlessingDecision(False, f"test HM {test_hm:.2f} < threshold {threshold:.2f}")
    if baseline is None:
        return BlessingDecision(True, f"test HM {test_hm:.2f} >= threshold {threshold:.2f}; "
                                      "no model was blessed before")
    if baseline.model_id == model_id:
        return BlessingDecision(False, f"model #{model_id} is already the blessed model "
                                       f"(test HM {baseline.test_hm:.2f}); nothing new to push")
    if test_hm < baseline.test_hm:
        return BlessingDecision(False, f"test HM {test_hm:.2f} < last blessed model "
                                       f"#{baseline.model_id}'s {baseline.test_hm:.2f}")
    return BlessingDecision(True, f"test HM {test_hm:.2f} >= threshold {threshold:.2f} and >= last "
                                  f"blessed model #{baseline.model_id}'s {baseline.test_hm:.2f}")
