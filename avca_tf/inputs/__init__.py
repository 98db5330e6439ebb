"""Input kinds: how a model reads a video's features (avca_tf.inputs.base.InputKind).

Importing the package registers the kinds shipped: "averaged" (averaged.py) and
"sequences" (sequence.py).
"""
from avca_tf.inputs.base import (Batching, InputKind, TrainingInput, input_kind, kind_of,
                                 register_input_kind)
from avca_tf.inputs import averaged, sequence  # noqa: F401,E402  (registers the kinds)

__all__ = ["Batching", "InputKind", "TrainingInput", "input_kind", "kind_of",
           "register_input_kind"]
