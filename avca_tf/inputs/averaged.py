"""The "averaged" input kind: one feature vector per video and modality (AVCA, the
baselines, the ablations, ClipClap-GZSL). Training batches are class-aware
(anchor, negative) pairs gathered from the split's matrices inside the step
(`avca_tf.data.batching.sampling`); evaluation scores chunks of rows."""
from __future__ import annotations

import tensorflow as tf

from avca_tf.data.batching.sampling import ClassAwareSampler, gather_batch
from avca_tf.inputs.base import (Batching, InputKind, TrainingInput, add_training_classes,
                                 class_specs, register_input_kind, training_classes)
from avca_tf.inputs.signature import AveragedInputs


class AveragedBatching(Batching):

    def training_input(self, split, label_embeddings, training_classes_: bool) -> TrainingInput:
        tensors = (tf.constant(split.audio, tf.float32), tf.constant(split.video, tf.float32),
                   tf.constant(split.labels, tf.int64), tf.constant(label_embeddings, tf.float32))
        if training_classes_:
            tensors += training_classes(split.labels, len(label_embeddings))

        def gather(indices, audio, video, labels, emb, *classes):
            batch = gather_batch(audio, video, labels, emb, indices)
            return add_training_classes(batch, emb, *classes) if classes else batch
        return TrainingInput(ClassAwareSampler, gather, tensors)

    def eval_batches(self, split, batch_size: int):
        for start in range(0, len(split), batch_size):
            audio = tf.constant(split.audio[start:start + batch_size], tf.float32)
            video = tf.constant(split.video[start:start + batch_size], tf.float32)
            yield (audio, video), int(audio.shape[0])

    def model_inputs(self, inputs):
        audio, video = inputs
        return audio, video, {}


class AveragedKind(InputKind):
    name = "averaged"
    temporal = False
    description = "one averaged vector per video"

    def batching(self, cfg, benchmark) -> Batching:
        return AveragedBatching()

    def flops_inputs(self, cfg, batch_size: int, num_classes: int):
        m = cfg.model
        specs = {}
        for prefix in ("", "neg_"):
            specs[prefix + "audio"] = tf.TensorSpec([batch_size, m.audio_dim], tf.float32)
            specs[prefix + "video"] = tf.TensorSpec([batch_size, m.video_dim], tf.float32)
            specs[prefix + "text"] = tf.TensorSpec([batch_size, m.text_dim], tf.float32)
            specs[prefix + "label"] = tf.TensorSpec([batch_size], tf.int64)
        specs.update(class_specs(cfg, batch_size, num_classes))
        return ([tf.TensorSpec([1, m.audio_dim], tf.float32),
                 tf.TensorSpec([1, m.video_dim], tf.float32)], specs, "")

    def serving_inputs(self, cfg):
        return AveragedInputs(cfg.model.audio_dim, cfg.model.video_dim)


AVERAGED = register_input_kind(AveragedKind())
