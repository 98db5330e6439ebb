"""AVCA model: exact parameter counts, momentum conversion, interface behaviour."""
import dataclasses

import keras
import numpy as np
import pytest

from avca_tf.config import LossConfig, ModelConfig, keras_momentum
from avca_tf.errors import ConfigError
from avca_tf.models import build_model, get_preset, model_names, presets


def n_trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def expected_params(d_a, d_v, hidden=512, emb=300, out=64, mlp=64, text=300):
    """The reference's AVCA parameter count, layer by layer (Linear + BN gamma/beta)."""
    dense_bn = lambda i, o: i * o + o + 2 * o  # noqa: E731
    enc = lambda d: dense_bn(d, hidden) + dense_bn(hidden, emb)  # noqa: E731
    attention = 2 * 2 * emb + emb * 3 * emb + emb * emb + emb + emb * mlp + mlp + mlp * emb + emb
    proj = dense_bn(emb, hidden) + dense_bn(hidden, out)
    return (enc(d_a) + enc(d_v) + attention + dense_bn(text, out) + dense_bn(out, text)
            + 2 * proj + 2 * dense_bn(out, emb) + 2 * emb)


@pytest.fixture(scope="module")
def selavi():
    keras.utils.set_random_seed(0)
    return build_model("avca", ModelConfig())


def test_selavi_parameter_count_is_exact(selavi):
    assert n_trainable(selavi) == 1_693_108 == expected_params(512, 512)
    frozen = build_model("avca", ModelConfig(freeze_position_embeddings=True))
    assert n_trainable(frozen) == 1_692_508  # what the reference actually updates


def test_cls_feature_parameter_count():
    cfg = get_preset("avca", "UCF", "cls_features").model
    assert n_trainable(build_model("avca", cfg)) == expected_params(128, 4096)


def test_presets_convert_batch_norm_momentum():
    assert keras_momentum(0.1) == pytest.approx(0.9)
    ucf = build_model("avca", get_preset("avca", "UCF", "main_features").model)
    anet = build_model("avca", get_preset("avca", "ActivityNet", "main_features").model)
    assert ucf.a_enc.blocks[-1].bn.momentum == pytest.approx(0.9)
    assert anet.a_enc.blocks[-1].bn.momentum == pytest.approx(0.01)  # torch 0.99
    assert anet.a_enc.blocks[0].bn.momentum == pytest.approx(0.9)   # torch default 0.1
    assert anet.w_proj.blocks[0].bn.momentum == pytest.approx(0.9)
    assert get_preset("avca", "VGGSound", "main_features").train.batch_size == 64
    assert {get_preset(*p).train.n_batches for p in presets() if p[0] == "avca"} == {500}
    with pytest.raises(ConfigError, match="unknown feature set 'nope_features'"):
        get_preset("avca", "UCF", "nope_features")


def test_embed_is_visual_projection_and_distances(selavi):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 512)).astype("float32")
    v = rng.normal(size=(5, 512)).astype("float32")
    w = rng.normal(size=(7, 300)).astype("float32")
    theta_a, theta_v = selavi((a, v), training=False)
    emb = keras.ops.convert_to_numpy(selavi.embed(a, v))
    np.testing.assert_allclose(emb, keras.ops.convert_to_numpy(theta_v), rtol=1e-6)
    cls = keras.ops.convert_to_numpy(selavi.embed_classes(w))
    assert emb.shape == (5, 64) and cls.shape == (7, 64)
    d = keras.ops.convert_to_numpy(selavi.class_distances(a, v, w))
    ref = np.sqrt(((emb[:, None, :] - cls[None]) ** 2).sum(-1))
    np.testing.assert_allclose(d, ref, rtol=1e-4, atol=1e-4)
    # inference is deterministic; the audio branch is a different projection
    np.testing.assert_array_equal(emb, keras.ops.convert_to_numpy(selavi.embed(a, v)))
    assert not np.allclose(keras.ops.convert_to_numpy(theta_a), emb)


def test_compute_losses_and_toggles():
    cfg = dataclasses.replace(ModelConfig(), audio_dim=16, video_dim=24, encoder_hidden=32,
                              decoder_hidden=32)
    rng = np.random.default_rng(1)
    batch = {"audio": rng.normal(size=(8, 16)), "video": rng.normal(size=(8, 24)),
             "text": rng.normal(size=(8, 300)), "neg_audio": rng.normal(size=(8, 16)),
             "neg_video": rng.normal(size=(8, 24)), "neg_text": rng.normal(size=(8, 300))}
    batch = {k: v.astype("float32") for k, v in batch.items()}
    full = build_model("avca", cfg).compute_losses(batch, training=True)
    assert set(full) == {"reconstruction", "reconstruction_triplet", "embedding_triplet",
                         "additional_triplet", "regression", "total"}
    assert all(np.isfinite(float(v)) and float(v) >= 0 for v in full.values())
    part = build_model("avca", cfg, LossConfig(regression=False, additional_triplets=False))
    assert set(part.compute_losses(batch)) == {"reconstruction", "reconstruction_triplet",
                                               "embedding_triplet", "total"}


def test_registry_errors_and_entries():
    assert "avca" in model_names()
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        get_preset("nope", "UCF", "main_features")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        build_model("nope", ModelConfig())
