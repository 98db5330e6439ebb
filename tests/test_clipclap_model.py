"""ClipClap-GZSL model, presets, beta grid and training on the clip_clap toy benchmark."""
import dataclasses
import json

import keras
import numpy as np
import pytest

from avca_tf.config import RunConfig, TrainConfig
from avca_tf.data.formats.benchmark import load_benchmark
from avca_tf.data.synthesis.synth import FeatureModel, synthesize
from avca_tf.metrics import BETAS
from avca_tf.models import build_model
from avca_tf.models.registry import get_preset, model_names, presets

PUBLISHED_PARAMS = 2.24e6


@pytest.fixture(scope="module")
def toy_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_clip_clap")
    synthesize(root, feature_set="clip_clap", seed=0, scale=0.3, model=FeatureModel(noise=2.5))
    return root


def _model(seed=0):
    cfg = get_preset("clipclap", "UCF", "clip_clap")
    keras.utils.set_random_seed(seed)
    return build_model("clipclap", cfg.model, cfg.loss), cfg


def test_parameter_count_matches_the_authors_model():
    model, _ = _model()
    n = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    # O_enc 1536*512+512+2*512, O_proj 512-512-64, D_o 64-512-512, W_enc like O_enc,
    # W_proj 512-64, D_w 64-512, each Linear + BatchNorm(weight, bias)
    assert n == 2 * (1536 * 512 + 512 + 1024) + (512 * 512 + 512 + 1024 + 512 * 64 + 64 + 128) \
        + (64 * 512 + 512 + 1024 + 512 * 512 + 512 + 1024) + (512 * 64 + 64 + 128) \
        + (64 * 512 + 512 + 1024) == 2_237_824
    assert abs(n - PUBLISHED_PARAMS) / PUBLISHED_PARAMS < 0.005


def test_registry_presets_and_beta_grid():
    assert "clipclap" in model_names()
    assert {("clipclap", d, "clip_clap") for d in ("UCF", "ActivityNet", "VGGSound")} <= set(presets())
    ucf, anet, vgg = (get_preset("clipclap", d, "clip_clap") for d in ("UCF", "ActivityNet",
                                                                        "VGGSound"))
    assert (ucf.train.epochs, ucf.train.lr) == (20, 7e-5)
    assert (anet.train.epochs, anet.train.lr) == (vgg.train.epochs, vgg.train.lr) == (15, 1e-4)
    for cfg in (ucf, anet, vgg):
        assert (cfg.train.batch_size, cfg.train.n_batches, cfg.train.weight_decay) == (64, 300, 1e-5)
        grid = cfg.train.beta_grid()
        assert len(grid) == 76 and grid[0] == 0.0 and grid[-1] == 5.0
        np.testing.assert_allclose(np.diff(grid), 1 / 15)
        assert RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    # Toy (no published preset) gets UCF's; AVCA has a clip_clap preset with the new widths
    assert get_preset("clipclap", "Toy", "clip_clap").train.epochs == 20
    avca = get_preset("avca", "UCF", "clip_clap").model
    assert (avca.audio_dim, avca.video_dim, avca.text_dim) == (1024, 512, 1536)
    # every other model keeps its grid and its config.json
    np.testing.assert_array_equal(TrainConfig().beta_grid(), BETAS)
    np.testing.assert_array_equal(get_preset("avca", "UCF", "main_features").train.beta_grid(),
                                  BETAS)
    from avca_tf.errors import ConfigError
    with pytest.raises(ConfigError, match="beta_steps >= 1"):
        TrainConfig(beta_steps=0).validate()


def test_losses_follow_the_formulas():
    model, _ = _model()
    rng = np.random.default_rng(0)
    b, k = 8, 5
    batch = {"audio": rng.standard_normal((b, 1024)).astype(np.float32),
             "video": rng.standard_normal((b, 512)).astype(np.float32),
             "class_text": rng.standard_normal((k, 1536)).astype(np.float32),
             "class_index": rng.integers(0, k, b)}
    batch["text"] = batch["class_text"][batch["class_index"]]
    losses = {key: float(v) for key, v in model.compute_losses(batch, training=False).items()}
    theta_o = model.embed(batch["audio"], batch["video"]).numpy()
    w = model.projection.w_enc(batch["text"]).numpy()
    theta_w = model.projection.w_proj(w).numpy()
    classes = model.embed_classes(batch["class_text"]).numpy()
    logits = theta_o @ classes.T
    logp = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1,
                                                                             keepdims=True)) \
        - logits.max(1, keepdims=True)
    ce = -logp[np.arange(b), batch["class_index"]].mean()
    rec = (np.mean((w - model.projection.d_o(theta_o).numpy()) ** 2)
           + np.mean((w - model.projection.d_w(theta_w).numpy()) ** 2))
    reg = np.mean((theta_o - theta_w) ** 2)
    np.testing.assert_allclose(losses["cross_entropy"], ce, rtol=1e-4)
    np.testing.assert_allclose(losses["reconstruction"], rec, rtol=1e-4)
    np.testing.assert_allclose(losses["regression"], reg, rtol=1e-4)
    np.testing.assert_allclose(losses["total"], ce + rec + reg, rtol=1e-4)
    # the audio-visual input is [video; audio]: O_enc's first 512 input rows see the video
    kernel = model.o_enc.blocks[0].dense.kernel
    before = model.embed(batch["audio"], batch["video"]).numpy()
    kernel.assign(np.concatenate([np.zeros((512, 512), np.float32), kernel.numpy()[512:]]))
    after_zero_video = model.embed(batch["audio"], batch["video"] * 0).numpy()
    np.testing.assert_allclose(model.embed(batch["audio"], batch["video"]).numpy(),
                               after_zero_video, atol=1e-6)
    assert not np.allclose(before, after_zero_video)


def _cfg(root, **train):
    cfg = get_preset("clipclap", "Toy", "clip_clap", str(root))
    return cfg.replace(train=dataclasses.replace(cfg.train, **train))


def test_training_steps_repeat_bit_for_bit(toy_clip):
    from avca_tf.training.trainer import Trainer
    bench = load_benchmark(toy_clip, "Toy", "clip_clap")
    cfg = _cfg(toy_clip, n_batches=4)
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(cfg.train.seed)
        model = build_model("clipclap", cfg.model, cfg.loss)
        trainer = Trainer(model, cfg.train, bench.protocol(1).train, bench.label_embeddings)
        trainer.train_epoch(0, verbose=0)
        weights.append([v.numpy() for v in model.variables])
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    # W_enc's batch norm sees the batch's class vectors and then the training classes
    bn = model.projection.w_enc.blocks[0].bn
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)


def test_training_learns(toy_clip, tmp_path):
    from avca_tf.training.protocol import run_protocol
    bench = load_benchmark(toy_clip, "Toy", "clip_clap")
    cfg = _cfg(toy_clip, epochs=2, n_batches=30, lr=1e-3)
    res = run_protocol(bench, cfg, str(tmp_path / "run"), verbose=0)
    data = bench.protocol(2)
    chance = 1.0 / (len(data.seen_class_ids) + len(data.unseen_class_ids))
    test = res["test"]
    assert test["HM"] > 4 * chance and test["ZSL"] > 2.0 / len(data.unseen_class_ids), test
    # the search ran over the 76-value grid
    assert all(abs(e["beta"] * 15 - round(e["beta"] * 15)) < 1e-9 for e in res["stage1"]["epochs"])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train"]["beta_steps"] == 76 and saved["model"]["name"] == "clipclap"


def test_text_width_mismatch_is_refused(toy_clip, tmp_path):
    from avca_tf.errors import ConfigError
    from avca_tf.training.protocol import run_protocol
    bench = load_benchmark(toy_clip, "Toy", "clip_clap")
    cfg = _cfg(toy_clip)
    cfg = cfg.replace(model=dataclasses.replace(cfg.model, text_dim=300))
    with pytest.raises(ConfigError, match="text_dim=300"):
        run_protocol(bench, cfg, str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r").exists()
