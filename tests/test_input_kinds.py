"""Input kinds (avca_tf/inputs): a model declares its kind on its class, and the kind alone
decides its batches; a new kind is one module (here: one test) plus a model that names it.

The extra kind below feeds positives only (no negatives) from the averaged features, with
the training classes' vectors; the model trained on it is a two-tower cross-entropy model.
Both are registered for the test only (monkeypatch restores the registries).
"""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from avca_tf.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from avca_tf.data.batching.sampling import ClassAwareSampler
from avca_tf.data.formats.benchmark import load_benchmark
from avca_tf.errors import ConfigError
from avca_tf.inputs import base, input_kind, kind_of
from avca_tf.inputs.averaged import AveragedBatching, AveragedKind
from avca_tf.models import registry
from avca_tf.models.base import GZSLModel
from avca_tf.training.protocol import run_protocol

SEEN_KEYS = []


class PositivesBatching(AveragedBatching):
    """Averaged evaluation batches; training batches of positives and class tables only."""

    def training_input(self, split, label_embeddings, training_classes):
        tensors = (tf.constant(split.audio), tf.constant(split.video),
                   tf.constant(split.labels), tf.constant(label_embeddings, tf.float32),
                   *base.training_classes(split.labels, len(label_embeddings)))

        def gather(indices, audio, video, labels, emb, ids, position):
            idx = indices["index"]
            label = tf.gather(labels, idx)
            batch = {"audio": tf.gather(audio, idx), "video": tf.gather(video, idx),
                     "label": label, "text": tf.gather(emb, label)}
            return base.add_training_classes(batch, emb, ids, position)
        return base.TrainingInput(ClassAwareSampler, gather, tensors)


class PositivesKind(AveragedKind):
    name = "positives"
    description = "one averaged vector per video, positives only"

    def batching(self, cfg, benchmark):
        return PositivesBatching()


class TwoTower(GZSLModel):
    """audio-visual tower and text tower into 32-d, cross-entropy over the training classes."""

    input_kind = "positives"
    uses_training_classes = True

    def __init__(self, model_config, loss_config=None, **kwargs):
        super().__init__(name="two_tower", **kwargs)
        c = self.model_config = model_config
        self.av = keras.layers.Dense(32, name="av")
        self.text = keras.layers.Dense(32, name="text")
        self.av.build((None, c.audio_dim + c.video_dim))
        self.text.build((None, c.text_dim))
        self.built = True

    def embed(self, audio, video, training=False):
        return self.av(tf.concat([audio, video], axis=1))

    def embed_classes(self, class_embeddings, training=False):
        return self.text(class_embeddings)

    def compute_losses(self, batch, training=True):
        SEEN_KEYS.append(sorted(batch))
        logits = tf.matmul(self.embed(batch["audio"], batch["video"]),
                           self.embed_classes(batch["class_text"]), transpose_b=True)
        ce = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
            batch["class_index"], logits, from_logits=True))
        return {"total": ce, "cross_entropy": ce}


@pytest.fixture
def positives_kind(monkeypatch):
    monkeypatch.setattr(base, "_KINDS", dict(base._KINDS))
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    base.register_input_kind(PositivesKind())
    registry.register_model("two-tower", TwoTower)
    return input_kind("positives")


def _config(root) -> RunConfig:
    return RunConfig(data=DataConfig(root=str(root), dataset="Toy"),
                     model=ModelConfig(name="two-tower", audio_dim=512, video_dim=512),
                     loss=LossConfig(),
                     train=TrainConfig(epochs=2, n_batches=30, batch_size=64, lr=1e-3, seed=0))


def test_a_model_trains_on_a_registered_extra_input_kind(positives_kind, toy_root, tmp_path):
    assert kind_of("two-tower") is positives_kind and kind_of("avca") is input_kind("averaged")
    cfg = _config(toy_root)
    bench = load_benchmark(toy_root, "Toy", "main_features")
    SEEN_KEYS.clear()
    results = run_protocol(bench, cfg, str(tmp_path / "run"), verbose=0)
    # the Trainer built its batches from the model's kind: positives and class tables only
    assert SEEN_KEYS and all(keys == ["audio", "class_index", "class_text", "label", "text",
                                      "video"] for keys in SEEN_KEYS)
    losses = [e["loss"]["total"] for e in results["stage1"]["epochs"]]
    assert losses[-1] < losses[0]
    test = results["test"]
    n_unseen = len(bench.protocol(2).unseen_class_ids)
    assert test["ZSL"] > 1.5 / n_unseen, test  # above chance on the unseen classes
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results


def test_the_kind_checks_the_data_it_is_given(positives_kind, toy_root):
    cfg = _config(toy_root).replace(data__temporal=True)
    bench = load_benchmark(toy_root, "Toy", "main_features")
    with pytest.raises(ConfigError, match="two-tower.*data.temporal"):
        kind_of("two-tower").check_benchmark(bench, cfg)
    with pytest.raises(ConfigError, match="unknown input kind 'nope'"):
        input_kind("nope")


def test_every_registered_model_names_a_registered_kind():
    kinds = {name: kind_of(name).name for name in registry.model_names()}
    assert kinds["tcaf"] == "sequences" and kinds["clipclap"] == kinds["avca"] == "averaged"
    assert set(kinds.values()) == {"averaged", "sequences"}
    assert np.all([registry.model_class(n).uses_training_classes == (n in ("tcaf", "clipclap"))
                   for n in kinds])
