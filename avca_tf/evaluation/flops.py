"""Parameter and FLOP counts of a model, read off its TensorFlow graph.

Method: trace a tf.function with fixed input shapes into a concrete function
and run the TF profiler (tf.compat.v1.profiler, float_operation view) on its
graph. The profiler counts the float operations each op's registered
statistics give (MatMul 2*m*n*k, elementwise ops one per element, ...);
ops without statistics count 0 and shapes it cannot know (the image-ZSL
losses score against the classes present in a batch, a dynamic count) are
skipped, so the training-step numbers of ale/sje/devise/apn/cjme are lower
bounds that miss only the tiny [B, 300] x [300, K] class-score matmuls.

Three views, on the tensor specs of the model's input kind (`InputKind.flops_inputs`:
one averaged vector per modality, or for sequence models a typical video's steps):
  - `forward_flops`: the audio-visual embedding (model.embed) of ONE sample,
    inference mode;
  - `loss_forward_flops`: the forward pass of every loss term on one
    training batch (B = 256 positives, + B negatives for averaged models), no
    backward. This is the view closest to the seed's GFLOPS (AVGZSLNet 1.40
    here vs 1.38; AVCA 2.18 vs 2.36, the reference runs a few extra forward passes);
  - `train_step_flops`: the same plus the backward pass (tape.gradient),
    optimizer update excluded.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def trainable_params(model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def graph_flops(concrete_function) -> int:
    """Float operations in the graph of a concrete function, by the TF profiler."""
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    profile = tf.compat.v1.profiler.profile(graph=concrete_function.graph, options=options)
    return int(profile.total_float_ops)


def forward_flops(model, input_specs) -> int:
    """FLOPs of model.embed on one sample (inference); `input_specs`: [audio, video]."""
    fn = tf.function(lambda a, v: model.embed(a, v, training=False), autograph=False)
    return graph_flops(fn.get_concrete_function(*input_specs))


def loss_forward_flops(model, batch_specs: dict) -> int:
    """FLOPs of the losses' forward pass on one batch."""
    fn = tf.function(lambda batch: model.compute_losses(batch, training=True)["total"],
                     autograph=False)
    return graph_flops(fn.get_concrete_function(batch_specs))


def train_step_flops(model, batch_specs: dict) -> int:
    """FLOPs of the losses' forward and backward pass on one batch."""
    def step(batch):
        with tf.GradientTape() as tape:
            total = model.compute_losses(batch, training=True)["total"]
        return tape.gradient(total, model.trainable_variables)
    fn = tf.function(step, autograph=False)
    return graph_flops(fn.get_concrete_function(batch_specs))
