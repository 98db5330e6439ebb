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

Sequence models (TCaF) cost depends on the sequence lengths: `typical_steps`
gives a typical video's (audio, video) steps per dataset preset (the median
duration at the feature set's step rates, or ActivityNet's fixed test window),
`sequence_forward_flops` the embedding of one such video and
`sequence_train_step_flops` a training step on a padded batch of such videos.
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
    fn = tf.function(lambda a, v: model.embed(a, v, training=False), autograph=False)
    return graph_flops(fn.get_concrete_function(tf.TensorSpec([1, audio_dim], tf.float32),
                                                tf.TensorSpec([1, video_dim], tf.float32)))


def _batch_specs(batch_size: int, audio_dim: int, video_dim: int, text_dim: int) -> dict:
    specs = {}
    for prefix in ("", "neg_"):
        specs[prefix + "audio"] = tf.TensorSpec([batch_size, audio_dim], tf.float32)
        specs[prefix + "video"] = tf.TensorSpec([batch_size, video_dim], tf.float32)
        specs[prefix + "text"] = tf.TensorSpec([batch_size, text_dim], tf.float32)
        specs[prefix + "label"] = tf.TensorSpec([batch_size], tf.int64)
    # models with a cross-entropy over the training classes (ClipClap-GZSL) also read the
    # class vectors of the batch's classes, as the trainer gives them (30 classes here)
    specs["class_text"] = tf.TensorSpec([30, text_dim], tf.float32)
    specs["class_index"] = tf.TensorSpec([batch_size], tf.int64)
    return specs


def loss_forward_flops(model, audio_dim: int, video_dim: int, batch_size: int = 256,
                       text_dim: int = TEXT_DIM) -> int:
    """FLOPs of the losses' forward pass on one batch (label vectors of `text_dim`)."""
    fn = tf.function(lambda batch: model.compute_losses(batch, training=True)["total"],
                     autograph=False)
    return graph_flops(fn.get_concrete_function(
        _batch_specs(batch_size, audio_dim, video_dim, text_dim)))


def train_step_flops(model, audio_dim: int, video_dim: int, batch_size: int = 256,
                     text_dim: int = TEXT_DIM) -> int:
    """FLOPs of the losses' forward and backward pass on one batch."""
    def step(batch):
        with tf.GradientTape() as tape:
            total = model.compute_losses(batch, training=True)["total"]
        return tape.gradient(total, model.trainable_variables)
    fn = tf.function(step, autograph=False)
    return graph_flops(fn.get_concrete_function(
        _batch_specs(batch_size, audio_dim, video_dim, text_dim)))


# ------------------------------------------------------------ sequence models (TCaF)
# Typical clip duration in seconds (the synthesized temporal data's median, like the
# datasets: UCF101 clips ~6 s, VGGSound 10 s); ActivityNet is windowed (below).
TYPICAL_SECONDS = {"UCF": 6.0, "Toy": 6.0, "VGGSound": 10.0}


def typical_steps(cfg) -> tuple[int, int]:
    """(audio steps, video steps) of a typical video as the evaluation batches it:
    `max` mode: floor(typical duration / step) per modality (UCF cls 6 / 9, VGGSound cls
    10 / 15, main 6 / 6 and 10 / 10); `fixed` mode (ActivityNet): the test window
    (video `test_video_steps`, audio the same time span: cls 200 / 300, main 300 / 300)."""
    from avca_tf.data.batching.sequence_batch import spec_from_config
    spec = spec_from_config(cfg.data, cfg.model.audio_step, cfg.model.video_step)
    if spec.mode == "fixed":
        return spec.window(training=False)
    seconds = TYPICAL_SECONDS.get(cfg.data.dataset, TYPICAL_SECONDS["UCF"])
    return tuple(max(1, int(np.floor(seconds / s + 1e-9)))
                 for s in (cfg.model.audio_step, cfg.model.video_step))


def sequence_forward_flops(model, audio_dim: int, video_dim: int, audio_steps: int,
                           video_steps: int) -> int:
    """FLOPs of model.embed on one video of `audio_steps` x `video_steps` steps (inference,
    all steps valid: padding would add the padded steps' cost)."""
    fn = tf.function(lambda a, v: model.embed(a, v, training=False), autograph=False)
    return graph_flops(fn.get_concrete_function(
        tf.TensorSpec([1, audio_steps, audio_dim], tf.float32),
        tf.TensorSpec([1, video_steps, video_dim], tf.float32)))


def _sequence_batch_specs(batch_size, audio_dim, video_dim, audio_steps, video_steps,
                          num_classes) -> dict:
    b = batch_size
    return {"audio": tf.TensorSpec([b, audio_steps, audio_dim], tf.float32),
            "audio_mask": tf.TensorSpec([b, audio_steps], tf.float32),
            "audio_time": tf.TensorSpec([b, audio_steps], tf.float32),
            "video": tf.TensorSpec([b, video_steps, video_dim], tf.float32),
            "video_mask": tf.TensorSpec([b, video_steps], tf.float32),
            "video_time": tf.TensorSpec([b, video_steps], tf.float32),
            "text": tf.TensorSpec([b, TEXT_DIM], tf.float32),
            "label": tf.TensorSpec([b], tf.int64),
            "class_text": tf.TensorSpec([num_classes, TEXT_DIM], tf.float32),
            "class_index": tf.TensorSpec([b], tf.int64)}


def sequence_train_step_flops(model, audio_dim: int, video_dim: int, audio_steps: int,
                              video_steps: int, batch_size: int = 64,
                              num_classes: int = 30) -> int:
    """FLOPs of the losses' forward and backward pass on one padded batch of `batch_size`
    videos of that length, cross-entropy over `num_classes` training classes."""
    def step(batch):
        with tf.GradientTape() as tape:
            total = model.compute_losses(batch, training=True)["total"]
        return tape.gradient(total, model.trainable_variables)
    fn = tf.function(step, autograph=False)
    return graph_flops(fn.get_concrete_function(_sequence_batch_specs(
        batch_size, audio_dim, video_dim, audio_steps, video_steps, num_classes)))
