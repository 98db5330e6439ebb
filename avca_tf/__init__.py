"""avca-tf: audio-visual generalised zero-shot video classification on TensorFlow/Keras.

`import avca_tf as avca` gives the Python API (avca_tf.api, README "Python"):
synthesize, load_benchmark, model_names, presets, run_config, set_threads,
train -> Run, load_run, evaluate, export, load_model. The names load on first
use, so importing the package stays cheap (no TensorFlow until needed).
"""
from __future__ import annotations

__all__ = ["Run", "evaluate", "export", "load_benchmark", "load_model", "load_run",
           "model_names", "presets", "run_config", "set_threads", "synthesize", "train"]


def __getattr__(name: str):
    if name in __all__:
        from avca_tf import api
        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avca_tf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
