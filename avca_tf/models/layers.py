"""Keras 3 building blocks of AVCA (and of the baselines that reuse them).

The cross-modal attention works on exactly two tokens (audio, video). Instead
of a [B, 2, D] tensor through keras.layers.MultiHeadAttention (whose einsums
and transposes dominate a CPU training step) the tokens are stacked along the
batch: q/k/v come from one 2-D matmul, viewed as [2 tokens, B, heads,
head_dim] without a transpose, and the 2x2 attention per head is elementwise
products summed over the head width. The parameters are those of the
reference's pre-norm block (to_qkv without bias, to_out with bias).
"""
from __future__ import annotations

import contextlib
import math

import keras
from keras import layers, ops

from avca_tf.models.base import serializable

_MATMUL_DTYPE: list[str | None] = [None]


@contextlib.contextmanager
def matmul_dtype(dtype: str | None):
    """Within the block, TorchDense layers traced or run multiply in `dtype` (e.g.
    "bfloat16": inputs and kernel cast, product cast back, bias added in the layer's
    compute dtype); None: the layer's own dtype. The Trainer traces its step in this
    block for precision "bf16-matmul", so evaluation and export stay float32."""
    previous, _MATMUL_DTYPE[0] = _MATMUL_DTYPE[0], dtype
    try:
        yield
    finally:
        _MATMUL_DTYPE[0] = previous


def _torch_uniform(fan_in: int):
    """PyTorch nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


@serializable
class TorchDense(layers.Dense):
    """Dense initialised as PyTorch's nn.Linear (kernel and bias uniform in ±1/sqrt(fan_in)),
    multiplying in the dtype of an enclosing `matmul_dtype` block if there is one."""

    def build(self, input_shape):
        self.kernel_initializer = _torch_uniform(int(input_shape[-1]))
        self.bias_initializer = _torch_uniform(int(input_shape[-1]))
        super().build(input_shape)

    def call(self, inputs, training=None):
        dtype = _MATMUL_DTYPE[0]
        if dtype is None or self.lora_enabled or self.quantization_mode:
            return super().call(inputs, training=training)
        x = ops.cast(ops.matmul(ops.cast(inputs, dtype), ops.cast(self.kernel, dtype)),
                     self.compute_dtype)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x) if self.activation is not None else x


@serializable
class FastDropout(layers.Dropout):
    """keras.layers.Dropout whose TensorFlow training path draws 16 random bits per element.

    Keras draws a float32 uniform per element with Philox, a fifth of a CPU
    training step in AVCA. Here one 32-bit draw is reinterpreted as two 16-bit
    draws, so the keep probability is rounded to a multiple of 1/65536 (off by
    at most 7.6e-6); survivors are scaled by 1/(1-rate) as in torch. Same
    seed generator as Keras' Dropout, so layer seeds behave alike.
    """

    def call(self, inputs, training=False):
        if (not training or self.rate <= 0 or self.noise_shape is not None
                or keras.backend.backend() != "tensorflow"):
            return super().call(inputs, training=training)
        import tensorflow as tf
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        size = tf.size(inputs)
        bits = tf.random.stateless_uniform([(size + 1) // 2], seed=seed, minval=None, maxval=None,
                                           dtype=tf.uint32)
        bits = tf.bitcast(bits, tf.uint16)                     # [(size + 1) // 2, 2]
        if inputs.shape.num_elements() is None or inputs.shape.num_elements() % 2:
            bits = tf.reshape(bits, [-1])[:size]
        threshold = tf.constant(min(round(self.rate * 65536), 65535), tf.uint16)
        keep = tf.reshape(bits, tf.shape(inputs)) >= threshold
        # one select for the scaled mask, one multiply (and one for its gradient); the same
        # bits, signed zeros included, as inputs * keep * scale
        scale = tf.constant(1.0 / (1.0 - self.rate), inputs.dtype)
        return inputs * tf.where(keep, scale, tf.zeros([], inputs.dtype))


def _fused_batch_norm_applies() -> bool:
    """TensorFlow outside XLA: XLA's CPU lowering of FusedBatchNormV3 made a
    training step 7x slower than the composed ops, which XLA fuses well."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf
    if tf.executing_eagerly():
        return True
    try:
        from tensorflow.python.ops.control_flow_util import GraphOrParentsInXlaContext
    except ImportError:  # private API moved: keep the fused op
        return True
    return not GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _replica_context():
    """The tf.distribute replica context when training runs on more than one replica, else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf
    ctx = tf.distribute.get_replica_context()
    return ctx if ctx is not None and ctx.num_replicas_in_sync > 1 else None


def _global_moments(x, ctx):
    """Mean, biased variance and row count of `x` [n, d] over all replicas' batches
    (sums all-reduced), so every replica normalises with, and updates its moving
    averages from, the statistics of the global batch."""
    import tensorflow as tf
    n = tf.cast(tf.shape(x)[0], tf.float32)
    total, squares, count = ctx.all_reduce(
        tf.distribute.ReduceOp.SUM,
        [tf.reduce_sum(x, 0), tf.reduce_sum(tf.square(x), 0), tf.reshape(n, [1])])
    mean = total / count
    return mean, tf.maximum(squares / count - tf.square(mean), 0.0), count[0]


@serializable
class TorchBatchNorm(layers.BatchNormalization):
    """BatchNormalization of [batch, features] whose training step is torch's BatchNorm1d.

    Training normalises with the biased batch variance and updates the moving
    variance with the unbiased one (as torch; Keras uses the biased one for
    both). With TensorFlow outside XLA a training call is one FusedBatchNormV3
    op, which also updates the moving averages, and its gradient is one op;
    the batch is laid out as one image of N x 1 pixels (statistics over N
    either way), which oneDNN runs faster than N 1x1 images. Under XLA and
    other backends the same statistics come from composed ops. Inference and
    masks use Keras' own path. Under a distribution strategy with several
    replicas the statistics are those of the global batch (synchronised BN).
    """

    def call(self, inputs, training=None, mask=None):
        if (not (training and self.trainable) or mask is not None or self.renorm
                or len(inputs.shape) != 2):
            return super().call(inputs, training=training, mask=mask)
        x = ops.cast(inputs, "float32")
        width = x.shape[-1]
        gamma = self.gamma if self.scale else ops.ones([width])
        beta = self.beta if self.center else ops.zeros([width])
        replicas = _replica_context()
        if replicas is not None:  # data-parallel training: statistics of the global batch
            mean, variance, n = _global_moments(x, replicas)
        elif _fused_batch_norm_applies():
            import tensorflow as tf
            y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=tf.reshape(x, [1, -1, 1, width]), scale=gamma, offset=beta,
                mean=self.moving_mean, variance=self.moving_variance, epsilon=self.epsilon,
                exponential_avg_factor=1.0 - self.momentum, data_format="NHWC", is_training=True)
            self.moving_mean.assign(mean)       # already the updated moving averages
            self.moving_variance.assign(variance)
            return ops.cast(ops.reshape(y, ops.shape(inputs)), self.compute_dtype)
        else:
            mean, variance = ops.moments(x, axes=[0])
            n = ops.cast(ops.shape(x)[0], "float32")
        unbiased = variance * n / ops.maximum(n - 1.0, 1.0)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + unbiased * (1.0 - m))
        y = ops.batch_normalization(x, mean, variance, axis=-1, offset=beta, scale=gamma,
                                    epsilon=self.epsilon)
        return ops.cast(y, self.compute_dtype)


@serializable
class DenseBlock(layers.Layer):
    """Dense -> [BatchNorm] -> [ReLU] -> [Dropout] (the reference's EmbeddingNet stage).

    `dropout=None`: no dropout layer; `relu=False`: linear output. `stock=True`
    uses Keras' own BatchNormalization and Dropout (the baselines' behaviour)
    instead of TorchBatchNorm and FastDropout.
    """

    def __init__(self, units, dropout=0.0, momentum=0.9, epsilon=1e-5, use_bn=True, relu=True,
                 stock=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout, self.momentum, self.epsilon, self.use_bn = (
            units, dropout, momentum, epsilon, use_bn)
        self.relu, self.stock = relu, stock
        self.dense = TorchDense(units, name="dense")
        bn, drop = ((layers.BatchNormalization, layers.Dropout) if stock
                    else (TorchBatchNorm, FastDropout))
        self.bn = bn(momentum=momentum, epsilon=epsilon, name="bn") if use_bn else None
        self.drop = drop(dropout, name="dropout") if dropout is not None else None

    def build(self, input_shape):
        self.dense.build(input_shape)
        if self.bn is not None:
            self.bn.build(tuple(input_shape[:-1]) + (self.units,))

    def call(self, x, training=False):
        x = self.dense(x)
        if self.bn is not None:
            x = self.bn(x, training=training)
        if self.relu:
            x = ops.relu(x)
        return self.drop(x, training=training) if self.drop is not None else x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout,
                "momentum": self.momentum, "epsilon": self.epsilon, "use_bn": self.use_bn,
                "relu": self.relu, "stock": self.stock}


@serializable
class EmbeddingMLP(layers.Layer):
    """[DenseBlock(hidden)] -> DenseBlock(units): the reference's EmbeddingNet, for AVCA
    and the baselines.

    As in the reference, the hidden block's batch norm uses the default
    momentum and only the output block of a two-layer net uses `momentum`.
    `output`: "block" (AVCA: the output block has batch norm, ReLU and
    dropout), "linear" or "relu" (the baselines' EmbeddingNet / EmbeddingNetCJME:
    a plain Linear output, optionally followed by ReLU). `use_bn` and `stock`
    (Keras' own BatchNormalization/Dropout) as in DenseBlock.
    """

    def __init__(self, units, hidden=None, dropout=0.0, momentum=0.9, default_momentum=0.9,
                 epsilon=1e-5, output="block", use_bn=True, stock=False, **kwargs):
        super().__init__(**kwargs)
        self.units, self.hidden, self.dropout = units, hidden, dropout
        self.momentum, self.default_momentum, self.epsilon = momentum, default_momentum, epsilon
        self.output_kind, self.use_bn, self.stock = output, use_bn, stock
        block = dict(epsilon=epsilon, use_bn=use_bn, stock=stock)
        self.blocks = []
        if hidden:
            self.blocks.append(DenseBlock(hidden, dropout, default_momentum, name="hidden",
                                          **block))
        if output == "block":
            self.blocks.append(DenseBlock(units, dropout, momentum if hidden else default_momentum,
                                          name="out", **block))
        else:
            self.blocks.append(DenseBlock(units, None, use_bn=False, relu=output == "relu",
                                          name="out"))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, x, training=False):
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "hidden": self.hidden,
                "dropout": self.dropout, "momentum": self.momentum,
                "default_momentum": self.default_momentum, "epsilon": self.epsilon,
                "output": self.output_kind, "use_bn": self.use_bn, "stock": self.stock}


@serializable
class PositionEmbedding(layers.Layer):
    """Learned embeddings of the audio and video token (standard normal init, like torch.randn)."""

    def __init__(self, dim, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            shape=(2, self.dim), initializer=keras.initializers.RandomNormal(stddev=1.0),
            trainable=self.trainable, name="embeddings")

    def call(self, audio, video):
        emb = ops.cast(self.embeddings, audio.dtype)
        return audio + emb[0], video + emb[1]

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@serializable
class FeedForward(layers.Layer):
    """A transformer's feed-forward sublayer (AVCA's and TCaF's):
    Linear(dim -> hidden), exact GELU, Dropout, Linear(hidden -> dim), Dropout."""

    def __init__(self, dim=300, hidden=64, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.hidden, self.dropout = dim, hidden, dropout
        self.ff_in = TorchDense(hidden, name="ff_in")
        self.drop_ff_hidden = FastDropout(dropout, name="drop_ff_hidden")
        self.ff_out = TorchDense(dim, name="ff_out")
        self.drop_ff = FastDropout(dropout, name="drop_ff")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.ff_in.build(shape)
        self.ff_out.build(shape[:-1] + (self.hidden,))

    def call(self, x, training=False):
        h = ops.gelu(self.ff_in(x), approximate=False)
        return self.drop_ff(self.ff_out(self.drop_ff_hidden(h, training=training)),
                            training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.dim,)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden": self.hidden,
                "dropout": self.dropout}


@serializable
class TwoTokenAttentionBlock(layers.Layer):
    """One pre-norm transformer block over the two tokens (audio, video).

    x <- x + Drop(W_o · MHA(LN(x)));  x <- x + FFN(LN(x)),
    FFN = Linear(dim->mlp) GELU Drop Linear(mlp->dim) Drop.
    """

    def __init__(self, dim=300, heads=3, head_dim=100, mlp_dim=64, dropout=0.0,
                 epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads, self.head_dim, self.mlp_dim = dim, heads, head_dim, mlp_dim
        self.dropout, self.epsilon = dropout, epsilon
        inner = heads * head_dim
        self.norm_attn = layers.LayerNormalization(epsilon=epsilon, name="norm_attn")
        self.to_qkv = TorchDense(3 * inner, use_bias=False, name="to_qkv")
        self.to_out = TorchDense(dim, name="to_out")
        self.drop_attn = FastDropout(dropout, name="drop_attn")
        self.norm_ff = layers.LayerNormalization(epsilon=epsilon, name="norm_ff")
        self.ff = FeedForward(dim, mlp_dim, dropout, name="ff")

    def build(self, input_shape):
        shape = tuple(input_shape)
        inner = self.heads * self.head_dim
        self.norm_attn.build(shape)
        self.to_qkv.build(shape)
        self.to_out.build(shape[:-1] + (inner,))
        self.norm_ff.build(shape)
        self.ff.build(shape)

    def _tokens(self, t):
        """[2B, heads*head_dim] (audio rows, then video rows) -> [2 tokens, B, heads, head_dim]."""
        return ops.reshape(t, (2, -1, self.heads, self.head_dim))

    def call(self, audio, video, training=False):
        x = ops.concatenate([audio, video], axis=0)            # [2B, dim]
        q, k, v = map(self._tokens, ops.split(self.to_qkv(self.norm_attn(x)), 3, axis=-1))
        sign = ops.reshape(ops.convert_to_tensor([1.0, -1.0], dtype=x.dtype), (2, 1, 1, 1))
        # softmax over two keys == sigmoid of the score difference q.(k_own - k_other)
        k_own_minus_other = ops.sum(k * sign, axis=0, keepdims=True) * sign
        w_own = ops.sigmoid(ops.sum(q * k_own_minus_other, axis=-1, keepdims=True)
                            * self.head_dim ** -0.5)
        # out_i = sum_j mix[i, j] v_j with mix = w_own on the diagonal, 1 - w_own off it.
        # Each of q, k, v is read once: the form with separate audio/video
        # tensors read several times gave run-to-run different gradients on a
        # loaded CPU (TF 2.21; 75 of 600 repeats), this one none in 1200.
        w_own = ops.expand_dims(w_own, 1)                      # [2, 1, B, heads, 1]
        eye = ops.reshape(ops.eye(2, dtype=x.dtype), (2, 2, 1, 1, 1))
        mix = (1.0 - w_own) + eye * (2.0 * w_own - 1.0)
        att = ops.reshape(ops.sum(mix * ops.expand_dims(v, 0), axis=1),
                          (-1, self.heads * self.head_dim))
        x = x + self.drop_attn(self.to_out(att), training=training)
        x = x + self.ff(self.norm_ff(x), training=training)
        # split, not slicing: its gradient is one concat, a slice's a zero-padded copy plus a sum
        audio, video = ops.split(x, 2, axis=0)
        return audio, video

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads,
                "head_dim": self.head_dim, "mlp_dim": self.mlp_dim,
                "dropout": self.dropout, "epsilon": self.epsilon}


@serializable
class CrossModalTransformer(layers.Layer):
    """`depth` TwoTokenAttentionBlocks; returns the transformed (audio, video) tokens."""

    def __init__(self, depth=1, dim=300, heads=3, head_dim=100, mlp_dim=64, dropout=0.0,
                 epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.dim, self.heads, self.head_dim = depth, dim, heads, head_dim
        self.mlp_dim, self.dropout, self.epsilon = mlp_dim, dropout, epsilon
        self.blocks = [TwoTokenAttentionBlock(dim, heads, head_dim, mlp_dim, dropout, epsilon,
                                              name=f"block_{i}") for i in range(depth)]

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)

    def call(self, audio, video, training=False):
        for block in self.blocks:
            audio, video = block(audio, video, training=training)
        return audio, video

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "dim": self.dim,
                "heads": self.heads, "head_dim": self.head_dim, "mlp_dim": self.mlp_dim,
                "dropout": self.dropout, "epsilon": self.epsilon}
