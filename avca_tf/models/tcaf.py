"""TCaF: temporal cross-modal attention over per-step audio and video features (docs/tcaf.md).

Pipeline: audio * audio_scale, video L2-normalised per step; per-step
encoders (EmbeddingMLP over B*T rows; padded steps enter the batch-norm
statistics, as the authors'); a position/modality embedding (learned
modality vector + Linear over fixed random Fourier features of the step
time + a learned padding vector on padded steps) concatenated to each step
and projected back to the token width per modality; tokens [cls; audio;
video]; L pre-norm layers with one LayerNorm shared by the attention and the
feed-forward sublayer, masked cross-modal attention (audio attends to cls
and video, video to cls and audio, cls to everything valid); the output is
the cls token. Heads: O_proj (theta_o), W_proj (theta_w), decoders D_o, D_w.
Losses (weight 1 each): cross-entropy of theta_o . W_proj(E_train)^T, MSE(theta_o,
theta_w), MSE(w, D_o(theta_o)) + MSE(w, D_w(theta_w)).

The authors' quirks are options of ModelConfig/TrainConfig/DataConfig,
defaulting to the intended behaviour: `video_norm="time"`,
`eval_positions="steps"`, `bn_double_update=True`,
`stage2_all_epochs_when_best_first=True`, `audio_window="reference"`.
"""
from __future__ import annotations

import math

import keras
from keras import layers, ops

from avca_tf.config import (FEATURE_SETS, DataConfig, LossConfig, ModelConfig, RunConfig,
                            TrainConfig, keras_momentum)
from avca_tf.data.formats.temporal import step_seconds
from avca_tf.errors import ConfigError
from avca_tf.models.base import ConfiguredModel, serializable
from avca_tf.models.heads import ProjectionHeads
from avca_tf.models.layers import EmbeddingMLP, FastDropout, FeedForward, TorchDense
from avca_tf.models.registry import register_model, register_preset

VIDEO_NORMS = ("none", "feature", "time")
EVAL_POSITIONS = ("seconds", "steps")
SEQUENCE_KEYS = ("audio", "audio_mask", "audio_time", "video", "video_mask", "video_time")


@serializable
class StepEncoder(layers.Layer):
    """An EmbeddingMLP applied to every step of [B, T, D] (as one [B*T, D] batch)."""

    def __init__(self, units, hidden=None, dropout=0.0, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.units, self.hidden, self.dropout = units, hidden, dropout
        self.momentum, self.epsilon = momentum, epsilon
        self.mlp = EmbeddingMLP(units, hidden=hidden, dropout=dropout, momentum=momentum,
                                default_momentum=momentum, epsilon=epsilon, name="mlp")

    def build(self, input_shape):
        self.mlp.build((None, int(input_shape[-1])))

    def call(self, x, training=False):
        shape = ops.shape(x)
        y = self.mlp(ops.reshape(x, (-1, x.shape[-1])), training=training)
        return ops.reshape(y, (shape[0], shape[1], self.units))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "hidden": self.hidden,
                "dropout": self.dropout, "momentum": self.momentum, "epsilon": self.epsilon}


@serializable
class FourierPositionEmbedding(layers.Layer):
    """modality[m] + Linear([sin, cos](2 pi t (R_0 + R_1))) + pad on padded steps, width `dim`.

    R [2, dim/2] is a fixed buffer drawn N(0, scale^2) when the layer is built
    (from the global seed) and saved with the weights; the time t enters as
    [t, t] @ R, as the authors'.
    """

    def __init__(self, dim=64, scale=10.0, **kwargs):
        super().__init__(**kwargs)
        if dim % 2:
            raise ConfigError(f"position_dim must be even, got {dim}")
        self.dim, self.scale = dim, scale
        self.proj = TorchDense(dim, name="fourier_proj")

    def build(self, input_shape=None):
        normal = keras.initializers.RandomNormal(stddev=1.0)
        self.modality = self.add_weight(shape=(2, self.dim), initializer=normal, name="modality")
        self.pad = self.add_weight(shape=(self.dim,), initializer=normal, name="pad")
        self.fourier_r = self.add_weight(
            shape=(2, self.dim // 2), initializer=keras.initializers.RandomNormal(stddev=self.scale),
            trainable=False, name="fourier_r")
        self.proj.build((None, self.dim))

    def call(self, time, mask, modality: int):
        """time, mask [B, T] -> [B, T, dim]."""
        t = ops.cast(time, "float32")[..., None]
        r = ops.cast(ops.sum(self.fourier_r, axis=0), "float32")       # [t, t] @ R
        phase = 2.0 * math.pi * t * r
        emb = self.proj(ops.cast(ops.concatenate([ops.sin(phase), ops.cos(phase)], -1),
                                 self.compute_dtype))
        padded = ops.cast(1.0 - ops.cast(mask, "float32"), emb.dtype)[..., None]
        return (emb + ops.cast(self.modality[modality], emb.dtype)
                + padded * ops.cast(self.pad, emb.dtype))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale}


@serializable
class SequenceTokenizer(layers.Layer):
    """Encoded steps + position embedding -> tokens [cls; audio; video] and the attention mask."""

    def __init__(self, dim=300, position_dim=64, fourier_scale=10.0, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.position_dim, self.fourier_scale, self.dropout = (
            dim, position_dim, fourier_scale, dropout)
        self.position = FourierPositionEmbedding(position_dim, fourier_scale, name="position")
        self.proj_audio = TorchDense(dim, name="proj_audio")
        self.proj_video = TorchDense(dim, name="proj_video")
        self.drop = FastDropout(dropout, name="dropout")

    def build(self, input_shape=None):
        self.cls_token = self.add_weight(shape=(self.dim,), name="cls_token",
                                         initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.position.build()
        self.proj_audio.build((None, self.dim + self.position_dim))
        self.proj_video.build((None, self.dim + self.position_dim))

    def _project(self, x, time, mask, modality, proj, training):
        e = self.position(time, mask, modality=modality)
        return self.drop(proj(ops.concatenate([x, ops.cast(e, x.dtype)], axis=-1)),
                         training=training)

    def call(self, audio, audio_time, audio_mask, video, video_time, video_mask, training=False):
        a = self._project(audio, audio_time, audio_mask, 0, self.proj_audio, training)
        v = self._project(video, video_time, video_mask, 1, self.proj_video, training)
        b = ops.shape(a)[0]
        cls = ops.broadcast_to(ops.cast(self.cls_token, a.dtype)[None, None, :], (b, 1, self.dim))
        tokens = ops.concatenate([cls, a, v], axis=1)
        valid = ops.concatenate([ops.ones((b, 1), "bool"), ops.cast(audio_mask, "bool"),
                                 ops.cast(video_mask, "bool")], axis=1)            # [B, N]
        kind = ops.concatenate([ops.zeros((1,), "int32"),
                                ops.ones((ops.shape(a)[1],), "int32"),
                                ops.full((ops.shape(v)[1],), 2, "int32")], axis=0)  # [N]
        same = ops.logical_and(ops.equal(kind[:, None], kind[None, :]), kind[:, None] > 0)
        allowed = ops.logical_and(ops.logical_and(valid[:, :, None], valid[:, None, :]),
                                  ops.logical_not(same)[None])
        return tokens, allowed

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "position_dim": self.position_dim,
                "fourier_scale": self.fourier_scale, "dropout": self.dropout}


@serializable
class MaskedAttentionLayer(layers.Layer):
    """x += Drop(W_o MHA(LN x, mask)); x += FF(LN x) with ONE LayerNorm for both sublayers.

    q/k/v without bias, scale head_dim^-0.5, no attention dropout; disallowed
    logits are set to the lowest float32 (fully masked rows become uniform);
    FF = Linear(dim->ff) exact GELU Drop Linear(ff->dim) Drop.
    """

    def __init__(self, dim=300, heads=8, head_dim=64, ff_dim=128, dropout=0.0, epsilon=1e-5,
                 **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads, self.head_dim, self.ff_dim = dim, heads, head_dim, ff_dim
        self.dropout, self.epsilon = dropout, epsilon
        self.norm = layers.LayerNormalization(epsilon=epsilon, name="norm")
        self.to_qkv = TorchDense(3 * heads * head_dim, use_bias=False, name="to_qkv")
        self.to_out = TorchDense(dim, name="to_out")
        self.drop_attn = FastDropout(dropout, name="drop_attn")
        self.ff = FeedForward(dim, ff_dim, dropout, name="ff")

    def build(self, input_shape):
        shape = (None, None, self.dim)
        self.norm.build(shape)
        self.to_qkv.build(shape)
        self.to_out.build((None, None, self.heads * self.head_dim))
        self.ff.build(shape)

    def call(self, x, allowed, training=False):
        b, n = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self.to_qkv(self.norm(x)), (b, n, 3, self.heads, self.head_dim))
        # unstack, not qkv[:, :, i]: a strided slice's gradient was 44% of the step's op time
        q, k, v = ops.unstack(ops.transpose(qkv, (2, 0, 3, 1, 4)), 3, axis=0)  # [B, H, N, d]
        dots = ops.cast(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), "float32")
        dots = dots * self.head_dim ** -0.5
        dots = ops.where(allowed[:, None], dots, ops.full_like(dots, -3.4028234663852886e38))
        attn = ops.cast(ops.softmax(dots, axis=-1), v.dtype)
        out = ops.reshape(ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3)),
                          (b, n, self.heads * self.head_dim))
        x = x + self.drop_attn(self.to_out(out), training=training)
        return x + self.ff(self.norm(x), training=training)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads,
                "head_dim": self.head_dim, "ff_dim": self.ff_dim, "dropout": self.dropout,
                "epsilon": self.epsilon}


@serializable
class TCaF(ConfiguredModel):
    """Temporal cross-modal attention model (takes padded sequences + masks)."""

    input_kind = "sequences"       # padded per-step sequences + masks (avca_tf.inputs.sequence)
    uses_training_classes = True   # cross-entropy over the training classes
    default_name = "tcaf"

    def __init__(self, model_config: ModelConfig, loss_config: LossConfig | None = None, **kwargs):
        super().__init__(model_config, loss_config, **kwargs)
        c = model_config
        if c.video_norm not in VIDEO_NORMS:
            raise ConfigError(f"model.video_norm must be one of {VIDEO_NORMS}, got {c.video_norm!r}")
        if c.eval_positions not in EVAL_POSITIONS:
            raise ConfigError(f"model.eval_positions must be one of {EVAL_POSITIONS}, "
                              f"got {c.eval_positions!r}")
        m, eps = c.bn_default_momentum, c.bn_epsilon
        self.a_enc = StepEncoder(c.embed_dim, c.encoder_hidden, c.dropout_encoder, m, eps,
                                 name="A_enc")
        self.v_enc = StepEncoder(c.embed_dim, c.encoder_hidden, c.dropout_encoder, m, eps,
                                 name="V_enc")
        self.tokenizer = SequenceTokenizer(c.embed_dim, c.position_dim, c.fourier_scale,
                                           c.dropout_position, name="tokens")
        self.blocks = [MaskedAttentionLayer(c.embed_dim, c.heads, c.head_dim, c.mlp_dim,
                                            c.dropout_transformer, eps, name=f"layer_{i}")
                       for i in range(c.depth)]
        # O_proj, D_o, W_proj, D_w and the loss, as ClipClap-GZSL's (w: the label vector)
        self.projection = ProjectionHeads(c.output_dim, c.decoder_hidden, c.text_dim,
                                          c.dropout_decoder, c.dropout_additional, momentum=m,
                                          default_momentum=m, epsilon=eps, name="projection")
        self.build()

    def build(self, input_shape=None):
        c = self.model_config
        self.a_enc.build((None, None, c.audio_dim))
        self.v_enc.build((None, None, c.video_dim))
        self.tokenizer.build()
        for block in self.blocks:
            block.build((None, None, c.embed_dim))
        self.projection.build(((None, c.embed_dim), (None, c.text_dim)))
        self.built = True

    # ----------------------------------------------------------------- inputs
    def _prepare(self, audio, video):
        c = self.model_config
        audio = ops.cast(audio, "float32") * c.audio_scale
        video = ops.cast(video, "float32")
        if c.video_norm != "none":
            axis = -1 if c.video_norm == "feature" else 1
            norm = ops.sqrt(ops.sum(video * video, axis=axis, keepdims=True))
            video = video / ops.maximum(norm, 1e-12)
        return audio, video

    def _sequence_inputs(self, audio, video, seq, integer_positions):
        """Masks and step times, defaulting to all-valid and arange(T) * step seconds."""
        c = self.model_config
        out = {}
        for name, x, step in (("audio", audio, c.audio_step), ("video", video, c.video_step)):
            b, t = ops.shape(x)[0], ops.shape(x)[1]
            mask = seq.get(f"{name}_mask")
            out[f"{name}_mask"] = ops.ones((b, t), "float32") if mask is None else mask
            time = seq.get(f"{name}_time")
            if integer_positions or time is None:
                steps = ops.cast(ops.arange(t), "float32")
                time = ops.broadcast_to((steps * (1.0 if integer_positions else step))[None],
                                        (b, t))
            out[f"{name}_time"] = time
        return out

    def encode(self, audio, video, training=False, integer_positions=None, **seq):
        """The cls token [B, embed_dim] of padded sequences."""
        if integer_positions is None:
            integer_positions = (not training) and self.model_config.eval_positions == "steps"
        s = self._sequence_inputs(audio, video, seq, integer_positions)
        audio, video = self._prepare(audio, video)
        a = self.a_enc(ops.cast(audio, self.compute_dtype), training=training)
        v = self.v_enc(ops.cast(video, self.compute_dtype), training=training)
        x, allowed = self.tokenizer(a, s["audio_time"], s["audio_mask"], v, s["video_time"],
                                    s["video_mask"], training=training)
        for block in self.blocks:
            x = block(x, allowed, training=training)
        return x[:, 0]

    def call(self, inputs, training=False):
        """dict with audio, video (and optional masks/times) -> theta_o [B, output_dim]."""
        seq = {k: inputs[k] for k in SEQUENCE_KEYS[1:3] + SEQUENCE_KEYS[4:] if k in inputs}
        return self.projection.o_proj(
            self.encode(inputs["audio"], inputs["video"], training, **seq), training=training)

    # ------------------------------------------------------------------ losses
    def compute_losses(self, batch, training=True):
        seq = {k: batch[k] for k in ("audio_mask", "audio_time", "video_mask", "video_time")}
        theta_o = self.projection.o_proj(
            self.encode(batch["audio"], batch["video"], training, integer_positions=False,
                        **seq), training=training)
        return self.projection.compute_losses(theta_o, batch["text"], batch["class_text"],
                                              batch["class_index"], self.loss_config, training)

    def after_step(self, batch):
        """The authors' extra train-mode get_embeddings after each step (bn_double_update):
        moves the batch-norm statistics a second time; its outputs are discarded."""
        if not self.model_config.bn_double_update:
            return
        seq = {k: batch[k] for k in ("audio_mask", "audio_time", "video_mask", "video_time")}
        integer = self.model_config.eval_positions == "steps"
        self.projection.o_proj(self.encode(batch["audio"], batch["video"], True,
                                           integer_positions=integer, **seq), training=True)
        self.projection.w_proj(batch["text"], training=True)

    # --------------------------------------------------------------- interface
    def embed(self, audio, video, training=False, **seq):
        """theta_o [B, output_dim] of padded sequences [B, T, D] (+ optional masks and times)."""
        return ops.cast(self.projection.o_proj(self.encode(audio, video, training, **seq),
                                               training=training), "float32")

    def embed_classes(self, class_embeddings, training=False):
        return self.projection.embed_classes(class_embeddings, training)


register_model("tcaf", TCaF)


# ------------------------------------------------------------------- presets
# (features, dataset) -> lr, plateau on, encoder hidden, dropouts emb/dec/add/trf/pos, depth,
# heads, head_dim, sequence mode   (the authors' config/best/best_{cls,main}/*.yaml)
_BEST = {
    ("cls_features", "UCF"): (7e-5, True, 512, (.3, .1, .1, .3, .2), 6, 8, 64, "max"),
    ("cls_features", "ActivityNet"): (7e-5, True, 512, (.3, .1, .1, .4, .2), 6, 8, 64, "fixed"),
    ("cls_features", "VGGSound"): (6e-5, False, 512, (.2, .2, .1, .5, .1), 8, 8, 64, "max"),
    ("main_features", "UCF"): (5e-5, False, 256, (.4, .2, .1, .3, .2), 5, 8, 64, "max"),
    ("main_features", "ActivityNet"): (7e-5, True, 128, (.2, .1, .1, .3, .2), 8, 3, 128, "fixed"),
    ("main_features", "VGGSound"): (7e-5, False, 128, (.2, .2, .2, .5, .2), 8, 6, 128, "max"),
}


def preset(dataset: str, feature_set: str, root: str = "") -> RunConfig:
    """The authors' best configuration of TCaF on dataset/feature set."""
    key = (feature_set, dataset)
    if key not in _BEST:
        raise ConfigError(f"no TCaF preset for {dataset}/{feature_set}; expected one of "
                          f"{sorted((d, f) for f, d in _BEST)}")
    lr, plateau, hidden, (d_emb, d_dec, d_add, d_trf, d_pos), depth, heads, head_dim, mode = \
        _BEST[key]
    audio_dim, video_dim = FEATURE_SETS[feature_set].audio_dim, FEATURE_SETS[feature_set].video_dim
    a_step, v_step = step_seconds(feature_set)
    torch_bn = keras_momentum(0.1)
    return RunConfig(
        data=DataConfig(root=root, dataset=dataset, feature_set=feature_set, temporal=True,
                        sequence_mode=mode),
        model=ModelConfig(
            name="tcaf", audio_dim=audio_dim, video_dim=video_dim, embed_dim=300,
            encoder_hidden=hidden, decoder_hidden=512, output_dim=64, depth=depth, heads=heads,
            head_dim=head_dim, mlp_dim=128, dropout_encoder=d_emb, dropout_decoder=d_dec,
            dropout_additional=d_add, dropout_transformer=d_trf, dropout_position=d_pos,
            bn_momentum=torch_bn, bn_default_momentum=torch_bn, position_dim=64,
            fourier_scale=10.0, audio_scale=1.0 / 255.0, video_norm="feature",
            eval_positions="seconds", audio_step=a_step, video_step=v_step),
        loss=LossConfig(),
        train=TrainConfig(epochs=50, n_batches=300, batch_size=64, lr=lr, weight_decay=1e-5,
                          lr_factor=0.1 if plateau else 1.0, lr_patience=3, seed=42,
                          eval_batch_size=64),
        preset=f"tcaf-{dataset}-{feature_set.split('_')[0]}",
    )


def reference_quirks(cfg: RunConfig) -> RunConfig:
    """The same run with every quirk of the authors' code switched on (docs/tcaf.md)."""
    return cfg.replace(model__video_norm="time", model__eval_positions="steps",
                       model__bn_double_update=True,
                       train__stage2_all_epochs_when_best_first=True,
                       data__audio_window="reference")


def _register(dataset: str, feature_set: str):
    register_preset("tcaf", dataset, feature_set)(lambda root="": preset(dataset, feature_set, root))


for _feature_set, _dataset in _BEST:
    _register(_dataset, _feature_set)
