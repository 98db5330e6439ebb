"""The training loop: coupled weight decay, LR plateau, determinism, evaluation, precision."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from avca_tf.data.formats.benchmark import Split
from avca_tf.config import ModelConfig, TrainConfig
from avca_tf.models import build_model
from avca_tf.models.base import GZSLModel
from avca_tf.training.optimizers import CoupledAdam
from avca_tf.training.trainer import (DistanceFn, PlateauScheduler, Trainer, cpu_bf16_units,
                                      resolve_precision)

SMALL = ModelConfig(audio_dim=16, video_dim=24, encoder_hidden=32, decoder_hidden=32)


def _split(n=120, classes=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % classes
    return Split("stage_1_train", rng.normal(size=(n, 16)).astype("float32"),
                 rng.normal(size=(n, 24)).astype("float32"), labels,
                 np.array([f"v{i}" for i in range(n)], object), np.arange(classes))


EMB = np.random.default_rng(9).normal(size=(6, 300)).astype("float32")
CFG = TrainConfig(batch_size=16, n_batches=3, seed=0)


class ZeroGradModel(GZSLModel):
    """A model whose loss does not depend on its weight: only weight decay moves it."""

    def __init__(self):
        super().__init__()
        self.w = self.add_weight(shape=(4,), initializer="ones")

    def compute_losses(self, batch, training=True):
        total = tf.reduce_mean(batch["audio"]) * 0.0 + 0.0 * tf.reduce_sum(tf.stop_gradient(self.w))
        return {"total": total + tf.reduce_sum(self.w) * 0.0}


def test_weight_decay_is_coupled_l2_in_adam():
    model = ZeroGradModel()
    model.w.assign([1.0, -2.0, 0.5, 3.0])
    trainer = Trainer(model, dataclasses.replace(CFG, lr=0.01, weight_decay=1e-3), _split(), EMB)
    trainer.train_step(trainer.sampler.batch_indices(0, 0))
    w = model.w.numpy()
    # grad = wd * w; Adam's first step is lr * g / (|g| + eps) = lr * sign(w) (AdamW would move
    # w by lr*wd*w = 1e-5, no decay would not move it at all)
    g = 1e-3 * np.array([1.0, -2.0, 0.5, 3.0])
    expected = np.array([1.0, -2.0, 0.5, 3.0]) - 0.01 * g / (np.abs(g) + 1e-8)
    # (Keras adds epsilon to the un-corrected sqrt(v): a 1e-5-level difference to torch)
    np.testing.assert_allclose(w, expected, atol=2e-5)


@pytest.mark.parametrize("l2", [0.0, 1e-2])
def test_fused_coupled_adam_equals_keras_adam_on_decayed_gradient(l2):
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=(5, 3)).astype("float32") for _ in range(4)]
    start = rng.normal(size=(5, 3)).astype("float32")
    fused, plain = keras.Variable(start), keras.Variable(start)
    ours = CoupledAdam(learning_rate=0.05, l2=l2, epsilon=1e-8)
    keras_adam = keras.optimizers.Adam(learning_rate=0.05, epsilon=1e-8)

    @tf.function
    def step(g):  # the fused op runs in a compiled step, as in training
        ours.apply([g], [fused])

    for g in grads:
        step(tf.constant(g))
        keras_adam.apply([tf.constant(g) + l2 * plain.value], [plain])
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(fused.numpy(), start)


def test_plateau_scheduler_follows_torch_semantics():
    s = PlateauScheduler(1e-3, factor=0.1, patience=3)
    lrs = [s.step(v) for v in [0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3]]
    # best 0.2 at epoch 2; epochs 3-6 are 4 bad epochs > patience 3 -> reduce after epoch 6
    assert lrs[:5] == [1e-3] * 5
    assert lrs[5] == pytest.approx(1e-4) and lrs[6] == pytest.approx(1e-4)
    # a relative gain below the threshold is not an improvement
    s = PlateauScheduler(1.0, patience=0, threshold=0.1)
    assert s.step(1.0) == 1.0 and s.step(1.05) == pytest.approx(0.1)


def _losses_after(steps, seed, cfg=CFG):
    keras.utils.set_random_seed(seed)
    model = build_model("avca", SMALL)
    trainer = Trainer(model, cfg, _split(), EMB)
    out = [trainer.train_epoch(e, verbose=0) for e in range(steps)]
    return out, model


def test_bf16_matmul_step_is_deterministic_close_to_float32_and_keeps_eval_float32():
    bf16 = dataclasses.replace(CFG, precision="bf16-matmul")
    a, model = _losses_after(2, seed=0, cfg=bf16)
    b, _ = _losses_after(2, seed=0, cfg=bf16)
    assert a == b
    fp32, fp32_model = _losses_after(2, seed=0)
    assert a != fp32  # the step really multiplies in bfloat16 ...
    for x, y in zip(a, fp32):  # ... and stays close to float32 over two epochs
        assert x["total"] == pytest.approx(y["total"], rel=0.05)
    assert model.a_enc.blocks[0].dense.kernel.dtype == "float32"  # variables stay float32


def test_auto_precision_is_bf16_matmul_only_with_cpu_bf16_units():
    amx = "flags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16 amx_int8\n"
    assert cpu_bf16_units(amx) == "amx_bf16"
    assert cpu_bf16_units("flags\t\t: fpu avx512f avx512_bf16\n") == "avx512_bf16"
    assert cpu_bf16_units("flags\t\t: fpu avx2 avx512f avx512_bf16x\n") is None
    expected = ("bf16-matmul" if cpu_bf16_units() and not tf.config.list_physical_devices("GPU")
                else "float32")
    assert resolve_precision("auto") == expected
    for explicit in ("float32", "bf16-matmul", "mixed"):
        assert resolve_precision(explicit) == explicit
    # a Trainer given "auto" steps as the resolved precision does, to the bit
    auto, _ = _losses_after(1, seed=0, cfg=dataclasses.replace(CFG, precision="auto"))
    same, _ = _losses_after(1, seed=0, cfg=dataclasses.replace(CFG, precision=expected))
    assert auto == same


def test_training_is_deterministic_and_learns():
    a, model = _losses_after(2, seed=0)
    b, _ = _losses_after(2, seed=0)
    assert a == b  # bitwise identical for the same seed
    c, _ = _losses_after(2, seed=1)
    assert a != c
    assert all(np.isfinite(v) for e in a for v in e.values())


def test_mixed_bfloat16_step_is_finite():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        losses, model = _losses_after(1, seed=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(losses[0]["total"])
    assert model.a_enc.blocks[0].dense.kernel.dtype == "float32"  # variables stay fp32


def test_distance_fn_chunks_equal_one_call():
    keras.utils.set_random_seed(0)
    model = build_model("avca", SMALL)
    split = _split(n=50)
    whole = DistanceFn(model, batch_size=1000)(split, EMB)
    chunked = DistanceFn(model, batch_size=7)(split, EMB)
    assert whole.shape == (50, 6)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-5)
