"""The Keras building blocks of AVCA against independent NumPy formulas."""
import math

import keras
import numpy as np
import pytest

import tensorflow as tf

from avca_tf.models.layers import (CrossModalTransformer, DenseBlock, EmbeddingMLP, FastDropout,
                            PositionEmbedding, TorchBatchNorm, TorchDense, TwoTokenAttentionBlock)


def _layer_norm(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _reference_block(tokens, w, heads, head_dim):
    """Pre-norm ViT block on [B, n, D] tokens, written the textbook way (softmax over keys)."""
    b, n, _ = tokens.shape
    h = _layer_norm(tokens, w["ln1_g"], w["ln1_b"])
    qkv = h @ w["qkv"]
    q, k, v = np.split(qkv, 3, axis=-1)
    split = lambda t: t.reshape(b, n, heads, head_dim).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    dots = q @ k.transpose(0, 1, 3, 2) * head_dim ** -0.5
    attn = np.exp(dots - dots.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(b, n, heads * head_dim)
    x = tokens + out @ w["out_k"] + w["out_b"]
    f = _gelu(_layer_norm(x, w["ln2_g"], w["ln2_b"]) @ w["ff1_k"] + w["ff1_b"])
    return x + f @ w["ff2_k"] + w["ff2_b"]


def test_two_token_block_equals_textbook_attention():
    dim, heads, head_dim, mlp = 12, 3, 4, 5
    block = TwoTokenAttentionBlock(dim, heads, head_dim, mlp, dropout=0.5)
    block.build((None, dim))
    rng = np.random.default_rng(0)
    for var in block.weights:  # non-trivial norms and biases too
        var.assign(rng.normal(size=var.shape).astype("float32") * 0.5)
    w = {"ln1_g": block.norm_attn.gamma, "ln1_b": block.norm_attn.beta,
         "qkv": block.to_qkv.kernel, "out_k": block.to_out.kernel, "out_b": block.to_out.bias,
         "ln2_g": block.norm_ff.gamma, "ln2_b": block.norm_ff.beta,
         "ff1_k": block.ff.ff_in.kernel, "ff1_b": block.ff.ff_in.bias,
         "ff2_k": block.ff.ff_out.kernel, "ff2_b": block.ff.ff_out.bias}
    w = {k: keras.ops.convert_to_numpy(v).astype(np.float64) for k, v in w.items()}
    a = rng.normal(size=(7, dim)).astype("float32")
    v = rng.normal(size=(7, dim)).astype("float32")
    out_a, out_v = block(a, v, training=False)
    ref = _reference_block(np.stack([a, v], axis=1).astype(np.float64), w, heads, head_dim)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out_a), ref[:, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out_v), ref[:, 1], rtol=1e-4, atol=1e-4)
    # the qkv projection has no bias; the output projection has one (as the reference)
    assert block.to_qkv.bias is None and block.to_out.bias is not None
    # dropout is active in training only
    ta, _ = block(a, v, training=True)
    assert not np.allclose(keras.ops.convert_to_numpy(ta), keras.ops.convert_to_numpy(out_a))


def test_transformer_depth_stacks_blocks():
    t = CrossModalTransformer(depth=2, dim=6, heads=2, head_dim=3, mlp_dim=4)
    t.build((None, 6))
    assert len(t.blocks) == 2
    # params per block: 2 LN (4*6) + qkv 6*18 + out 6*6+6 + ff 6*4+4 + 4*6+6
    per_block = 4 * 6 + 6 * 18 + 6 * 6 + 6 + 6 * 4 + 4 + 4 * 6 + 6
    assert sum(int(np.prod(w.shape)) for w in t.trainable_weights) == 2 * per_block


def test_torch_dense_init_bounds():
    layer = TorchDense(300)
    layer.build((None, 64))
    bound = 1 / math.sqrt(64)
    for var in (layer.kernel, layer.bias):
        values = keras.ops.convert_to_numpy(var)
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.9 * bound  # uniform over the whole range, not glorot


def test_embedding_mlp_momentum_placement():
    two = EmbeddingMLP(64, hidden=512, dropout=0.3, momentum=0.01, default_momentum=0.9)
    two.build((None, 300))
    assert [b.bn.momentum for b in two.blocks] == [0.9, 0.01]
    assert [b.units for b in two.blocks] == [512, 64]
    one = EmbeddingMLP(300, hidden=None, momentum=0.01, default_momentum=0.9)
    one.build((None, 64))
    assert [b.bn.momentum for b in one.blocks] == [0.9]  # the reference ignores momentum here
    assert all(b.bn.epsilon == 1e-5 for b in two.blocks + one.blocks)


def test_dense_block_order_and_config_roundtrip():
    block = DenseBlock(8, dropout=0.0)
    block.build((None, 4))
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(block(x, training=True))
    # training-mode BN then ReLU: non-negative, and about half the units are zeroed
    assert y.min() >= 0 and 0.2 < (y == 0).mean() < 0.8
    clone = DenseBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    for cls, layer in ((EmbeddingMLP, EmbeddingMLP(3, hidden=5)),
                       (CrossModalTransformer, CrossModalTransformer(2, 6, 2, 3, 4, 0.1)),
                       (PositionEmbedding, PositionEmbedding(6))):
        assert cls.from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize("trainable", [True, False])
def test_position_embedding_adds_per_token(trainable):
    pos = PositionEmbedding(4, trainable=trainable)
    pos.build()
    emb = keras.ops.convert_to_numpy(pos.embeddings)
    a, v = pos(np.zeros((2, 4), "float32"), np.ones((2, 4), "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a), np.broadcast_to(emb[0], (2, 4)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(v), 1 + np.broadcast_to(emb[1], (2, 4)))
    assert len(pos.trainable_weights) == (1 if trainable else 0)


@pytest.mark.parametrize("mode", ["eager", "xla"])  # the fused op, the composed ops
def test_torch_batch_norm_trains_like_torch_batchnorm1d(mode):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (64, 7)).astype("float32")
    gamma, beta = np.linspace(0.5, 2, 7), np.linspace(-1, 1, 7)
    bn = TorchBatchNorm(momentum=0.9, epsilon=1e-5)
    bn.build((None, 7))
    bn.gamma.assign(gamma)
    bn.beta.assign(beta)
    xt = tf.constant(x)

    def forward_backward(xt):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = bn(xt, training=True)
            loss = tf.reduce_sum(y * tf.range(7.0))
        return y, tape.gradient(loss, xt)

    if mode == "xla":
        forward_backward = tf.function(forward_backward, jit_compile=True)
    y, dx = forward_backward(xt)
    dx = dx.numpy()
    xhat = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(y.numpy(), xhat * gamma + beta, atol=1e-5)
    # d/dx of sum(c * (gamma * xhat)) with batch statistics (the textbook formula)
    dxhat = np.arange(7.0) * gamma * np.ones_like(x)
    expected = (dxhat - dxhat.mean(0) - xhat * (dxhat * xhat).mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(dx, expected, atol=1e-4)
    # torch: running_var uses the unbiased batch variance (Keras' own BN the biased one)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-5)
    mean, var = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    np.testing.assert_allclose(bn(xt, training=False).numpy(),
                               (x - mean) / np.sqrt(var + 1e-5) * gamma + beta, atol=1e-5)


def test_fast_dropout_rate_scale_and_seed():
    x = tf.ones([400, 500])
    drop = FastDropout(0.3, seed=7)
    y = drop(x, training=True).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.005
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert not np.array_equal(drop(x, training=True).numpy(), y)  # a fresh mask per call
    again = FastDropout(0.3, seed=7)
    np.testing.assert_array_equal(again(x, training=True).numpy(), y)  # seeded: repeatable
    np.testing.assert_array_equal(drop(x, training=False).numpy(), x.numpy())
    odd = FastDropout(0.5, seed=1)(tf.ones([3, 5]), training=True)  # odd element count
    assert odd.shape == (3, 5)


def test_torch_dense_multiplies_in_the_matmul_dtype_block_only():
    from avca_tf.models.layers import TorchDense, matmul_dtype
    dense = TorchDense(64)
    x = tf.constant(np.random.default_rng(0).normal(size=(8, 96)).astype("float32"))
    exact = dense(x).numpy()
    with matmul_dtype("bfloat16"):
        low = dense(x)
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(dense(x))
        grads = tape.gradient(y, dense.trainable_variables)
    assert low.dtype == tf.float32 and all(g.dtype == tf.float32 for g in grads)
    assert not np.array_equal(low.numpy(), exact)
    np.testing.assert_allclose(low.numpy(), exact, rtol=0.05, atol=0.05)
    np.testing.assert_array_equal(dense(x).numpy(), exact)  # float32 again after the block
