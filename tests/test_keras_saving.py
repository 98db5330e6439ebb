"""Every registered model round-trips through Keras' own format: `model.save("m.keras")`,
then `keras.saving.load_model` in a fresh process (only `import avca_tf.models` there)
gives the same model class and config and the same outputs, bit for bit."""
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from avca_tf.models import build_model, get_preset, model_names, presets, registry

BATCH, CLASSES, STEPS = 5, 7, 4


def _config(name):
    """The model's preset on its first registered dataset/feature set."""
    dataset, feature_set = next((d, f) for m, d, f in presets() if m == name)
    return get_preset(name, dataset, feature_set)


def _inputs(cfg, sequences, rng):
    m = cfg.model
    shape = (BATCH, STEPS) if sequences else (BATCH,)
    x = {"audio": rng.normal(size=shape + (m.audio_dim,)).astype("float32"),
         "video": rng.normal(size=shape + (m.video_dim,)).astype("float32"),
         "classes": rng.normal(size=(CLASSES, m.text_dim)).astype("float32")}
    if sequences:
        mask = np.ones((BATCH, STEPS), "float32")
        mask[0, -1] = 0.0
        for kind in ("audio", "video"):
            x[f"{kind}_mask"] = mask
            x[f"{kind}_time"] = np.tile(np.arange(STEPS, dtype="float32"), (BATCH, 1))
    return x


def outputs(model, x):
    """What a served model computes: the embeddings and the class distances (inference)."""
    seq = {k: v for k, v in x.items() if k.endswith(("_mask", "_time"))}
    return {"embed": np.asarray(model.embed(x["audio"], x["video"], **seq)),
            "classes": np.asarray(model.embed_classes(x["classes"])),
            "distances": np.asarray(model.class_distances(x["audio"], x["video"], x["classes"],
                                                          **seq))}


CHILD = """
import json, sys
import keras, numpy as np
import avca_tf.models  # registers the classes with Keras
sys.path.insert(0, sys.argv[2])
from test_keras_saving import outputs
report = {}
for name, path in json.loads(sys.argv[1]).items():
    model = keras.saving.load_model(path + ".keras")
    x = dict(np.load(path + ".inputs.npz"))
    want = dict(np.load(path + ".outputs.npz"))
    got = outputs(model, x)
    report[name] = {"class": type(model).__name__, "config": model.get_config(),
                    "equal": {k: bool(np.array_equal(got[k], want[k])) for k in want},
                    "weights": len(model.weights)}
print(json.dumps(report))
"""


def test_every_registered_model_round_trips_through_a_keras_file(tmp_path):
    rng = np.random.default_rng(0)
    saved, expected = {}, {}
    for name in model_names():
        cfg = _config(name)
        keras.utils.set_random_seed(0)
        model = build_model(name, cfg.model, cfg.loss)
        # move every variable (batch-norm statistics included) off its initial value, so
        # a variable that is not saved or not restored shows in the outputs
        for v in model.weights:
            v.assign(v * 1.1 + 0.01)
        x = _inputs(cfg, registry.model_class(name).input_kind == "sequences", rng)
        path = str(tmp_path / name)
        model.save(path + ".keras")
        np.savez(path + ".inputs.npz", **x)
        np.savez(path + ".outputs.npz", **outputs(model, x))
        saved[name] = path
        expected[name] = {"class": type(model).__name__, "config": model.get_config(),
                          "weights": len(model.weights)}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(saved),
                           str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(report) == sorted(model_names())
    for name, want in expected.items():
        got = report[name]
        assert got["class"] == want["class"], name
        assert got["config"] == json.loads(json.dumps(want["config"])), name
        assert got["weights"] == want["weights"], name
        assert all(got["equal"].values()), (name, got["equal"])


@pytest.mark.parametrize("name", ["avca", "tcaf"])
def test_the_config_rebuilds_the_model(name):
    cfg = _config(name)
    model = build_model(name, cfg.model, cfg.loss)
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [v.path for v in clone.weights] == [v.path for v in model.weights]


LEGACY = Path(__file__).parent / "data" / "legacy_weights"


@pytest.mark.parametrize("name", ["avca", "tcaf", "clipclap"])
def test_weights_saved_before_the_layers_were_regrouped_still_load(name):
    """Tiny models saved by the code before issue 26 grouped layers into FeedForward and
    ProjectionHeads (tests/data/legacy_weights): `load_run`'s loader maps their weights by
    layer names and the outputs are those the old code computed."""
    from avca_tf.config import ModelConfig
    from avca_tf.models.base import load_weights
    cfg = ModelConfig(**json.loads((LEGACY / f"{name}.json").read_text()))
    x = dict(np.load(LEGACY / f"{name}.npz"))
    path = str(LEGACY / f"{name}.weights.h5")
    with pytest.raises(ValueError):
        build_model(name, cfg).load_weights(path)   # Keras' own loader sees another layout
    model = build_model(name, cfg)
    load_weights(model, path)
    np.testing.assert_array_equal(
        np.asarray(model.class_distances(x["audio"], x["video"], x["classes"])), x["distances"])
