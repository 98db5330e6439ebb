"""The recipe of docs/ARCHITECTURE.md ("Adding a model"), followed by a test: a small
model registers its class and a preset, and `avca train` / `avca evaluate`
run it without any other change to the package."""
import json

import keras
import numpy as np
import pytest
from keras import ops

from avca_tf import cli
from avca_tf.config import FEATURE_SETS, DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from avca_tf.errors import ConfigError
from avca_tf.models import registry
from avca_tf.models.base import ConfiguredModel, serializable
from avca_tf.models.losses import triplet_margin_loss


@serializable
class ConcatLinear(ConfiguredModel):
    """One Dense layer on the concatenated audio-visual input, one on the label vectors."""

    default_name = "concat_linear"

    def __init__(self, c: ModelConfig, loss_config: LossConfig | None = None, **kwargs):
        super().__init__(c, loss_config, **kwargs)
        self.margin = self.loss_config.margin
        self.av = keras.layers.Dense(c.output_dim, name="av")
        self.w = keras.layers.Dense(c.output_dim, name="w")
        self.av.build((None, c.audio_dim + c.video_dim))
        self.w.build((None, c.text_dim))
        self.built = True

    def embed(self, audio, video, training=False):
        return self.av(ops.concatenate([audio, video], axis=-1))

    def embed_classes(self, class_embeddings, training=False):
        return self.w(class_embeddings)

    def compute_losses(self, batch, training=True):
        total = triplet_margin_loss(self.embed(batch["audio"], batch["video"]),
                                    self.w(batch["text"]), self.w(batch["neg_text"]), self.margin)
        return {"total": total}


def ucf_main(root):
    fs = FEATURE_SETS["main_features"]
    return RunConfig(data=DataConfig(root=root, dataset="UCF"),
                     model=ModelConfig(name="concat-linear", audio_dim=fs.audio_dim,
                                       video_dim=fs.video_dim, output_dim=32),
                     train=TrainConfig(lr=1e-2, weight_decay=0.0), preset="UCF-concat-linear")


@pytest.fixture
def registered(monkeypatch):
    """What a model module's decorators do, undone after the test (the registry is global)."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    monkeypatch.setattr(registry, "_PRESETS", dict(registry._PRESETS))
    registry.register_model("concat-linear", ConcatLinear)
    registry.register_preset("concat-linear", "UCF", "main_features")(ucf_main)
    return "concat-linear"


def test_a_registered_model_trains_and_evaluates_through_the_cli(registered, toy_root, tmp_path,
                                                                 capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--root", str(toy_root), "--dataset", "Toy", "--model", registered,
                     "--quick", "--out", str(run), "-q"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["name"] == registered and cfg["model"]["output_dim"] == 32
    assert cfg["preset"] == "UCF-concat-linear" and cfg["data"]["dataset"] == "Toy"
    assert cfg["train"]["epochs"] == 2 and cfg["train"]["lr"] == 1e-2
    assert cli.main(["evaluate", str(run)]) == 0
    assert "matches results.json" in capsys.readouterr().out
    # and it is a Keras object: the trained model round-trips through a .keras file
    import avca_tf as avca
    trained = avca.load_run(run).model
    trained.save(tmp_path / "m.keras")
    loaded = avca.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(3, 1024)).astype("float32")
    classes = np.random.default_rng(1).normal(size=(4, 300)).astype("float32")
    assert type(loaded) is ConcatLinear and loaded.get_config() == trained.get_config()
    np.testing.assert_array_equal(loaded.class_distances(x[:, :512], x[:, 512:], classes),
                                  trained.class_distances(x[:, :512], x[:, 512:], classes))


def test_unknown_combinations_name_the_model_and_the_valid_choices(registered, toy_root,
                                                                   capsys):
    with pytest.raises(ConfigError, match=r"model 'concat-linear' has no preset for "
                                          r"VGGSound/cls_features; valid .*\('UCF', 'main_features'\)"):
        registry.get_preset(registered, "VGGSound", "cls_features")
    assert cli.main(["train", "--root", str(toy_root), "--dataset", "Toy", "--model", "nope",
                     "--out", "unused"]) == 2
    assert "unknown model 'nope'; expected one of" in capsys.readouterr().err
