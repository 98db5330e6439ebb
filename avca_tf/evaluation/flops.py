"""Parameter and FLOP counts of a model, read off its TensorFlow graph.

Method: trace a tf.function with fixed input shapes into a concrete function
and run the TF profiler (tf.compat.v1.profiler, float_operation view) on its
graph. The profiler counts the float operations each op's registered
statistics give (MatMul 2*m*n*k, elementwise ops one per element, ...);
ops without statistics count 0 and shapes it cannot know (the image-ZSL
losses score against the classes present in a batch, a dynamic count) are
skipped, so the training-step numbers of ale/sje/devise/apn/cjme are lower
bounds that miss only the tiny [B, 300] x [300, K] class-score matmuls.

Three views:
  - `forward_flops`: the audio-visual embedding (model.embed) of ONE sample,
    inference mode;
  - `loss_forward_flops`: the forward pass of every loss term on one
    training batch of B positives + B negatives (B = 256), no backward. This
    is the view closest to the seed's GFLOPS (AVGZSLNet 1.40 here vs 1.38;
    AVCA 2.18 vs 2.36, the reference runs a few extra forward passes);
  - `train_step_flops`: the same plus the backward pass (tape.gradient),
    optimizer update excluded.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

TEXT_DIM = 300


def trainable_params(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def graph_flops(concrete_function) -> int:
    """Float operations in the graph of a concrete function, by the TF profiler."""
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph=concrete_function.graph, options=options)
    return int(profile.total_float_ops)


def forward_flops(model, audio_dim: int, video_dim: int) -> int:
    """FLOPs of model.embed on one sample (inference)."""
    fn = tf.function(lambda a, v: model.embed(a, v, training=False))
    return graph_flops(fn.get_concrete_function(tf.TensorSpec([1, audio_dim], tf.float32),
                                                tf.TensorSpec([1, video_dim], tf.float32)))


def _batch_specs(batch_size: int, audio_dim: int, video_dim: int) -> dict:
    specs = {}
    for prefix in ("", "neg_"):
        specs[prefix + "audio"] = tf.TensorSpec([batch_size, audio_dim], tf.float32)
        specs[prefix + "video"] = tf.TensorSpec([batch_size, video_dim], tf.float32)
        specs[prefix + "text"] = tf.TensorSpec([batch_size, TEXT_DIM], tf.float32)
        specs[prefix + "label"] = tf.TensorSpec([batch_size], tf.int64)
    return specs


def loss_forward_flops(model, audio_dim: int, video_dim: int, batch_size: int = 256) -> int:
    """FLOPs of the losses' forward pass on one batch."""
    fn = tf.function(lambda batch: model.compute_losses(batch, training=True)["total"])
    return graph_flops(fn.get_concrete_function(_batch_specs(batch_size, audio_dim, video_dim)))


def train_step_flops(model, audio_dim: int, video_dim: int, batch_size: int = 256) -> int:
    """FLOPs of the losses' forward and backward pass on one batch."""
    def step(batch):
        with tf.GradientTape() as tape:
            total = model.compute_losses(batch, training=True)["total"]
        return tape.gradient(total, model.trainable_variables)
    fn = tf.function(step)
    return graph_flops(fn.get_concrete_function(_batch_specs(batch_size, audio_dim, video_dim)))
