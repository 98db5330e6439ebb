"""The "sequences" input kind: per-step audio and video features of each video (TCaF).

It reads the `_non_averaged` layout (a TemporalBenchmark, or a StreamedSplit index
of TFRecords), batches padded, masked sequences with step times
(`avca_tf.inputs.sequence_batch`, as its SequenceSpec says: from
DataConfig and the feature set's step rates) and serves padded sequences + lengths.
"""
from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from avca_tf.inputs.sequence_batch import (SequenceSampler, SequenceTable,
                                                  StreamingSequenceSampler, is_streamed,
                                                  sequence_batch, spec_from_config)
from avca_tf.config import check_limit
from avca_tf.errors import ConfigError
from avca_tf.inputs.base import (Batching, InputKind, TrainingInput, add_training_classes,
                                 class_specs, register_input_kind, training_classes)
from avca_tf.inputs.signature import SequenceInputs

# Typical clip duration in seconds (the synthesized temporal data's median, like the
# datasets: UCF101 clips ~6 s, VGGSound 10 s); ActivityNet is windowed (fixed mode).
TYPICAL_SECONDS = {"UCF": 6.0, "Toy": 6.0, "VGGSound": 10.0}


def sequence_spec(cfg, benchmark=None):
    """The SequenceSpec of a run: DataConfig's options at the step rates of the benchmark
    (or, without one, of the model's configuration, which must match it)."""
    steps = ((benchmark.audio_step, benchmark.video_step) if benchmark is not None
             else (cfg.model.audio_step, cfg.model.video_step))
    return spec_from_config(cfg.data, *steps)


def check_sequence_steps(benchmark) -> None:
    """Every video within the sequence-steps limit (config.LIMITS), before memory is taken:
    one 10,000-step video in a padded batch needs gigabytes of attention."""
    for stage, split in benchmark.splits.items():
        for modality in ("audio", "video"):
            lengths = getattr(split, f"{modality}_lengths", None)
            if lengths is None or not len(lengths):
                continue  # streamed (TFRecord) splits hold no lengths in memory
            k = int(np.argmax(lengths))
            check_limit("sequence steps", int(lengths[k]),
                        f"{benchmark.dataset}/{stage}: video {split.video_ids[k]!r} has "
                        f"{modality} steps")


class SequenceBatching(Batching):
    """Padded batches of `spec`; training tensors in memory (flat arrays + row starts) or,
    for a StreamedSplit, read record by record with each batch."""

    gather_outside_xla = True

    def __init__(self, spec):
        self.spec = spec

    def training_input(self, split, label_embeddings, training_classes_: bool) -> TrainingInput:
        spec = self.spec
        tables = (tf.constant(label_embeddings, tf.float32),)
        if training_classes_:
            tables += training_classes(split.labels, len(label_embeddings))

        def finish(batch, label, emb, *classes):
            batch.update(label=label, text=tf.gather(emb, label))
            return add_training_classes(batch, emb, *classes) if classes else batch

        if is_streamed(split):  # the batch's own flat table comes with its indices
            def gather_streamed(indices, emb, *classes):
                label = indices["table_labels"]
                rows = tf.range(tf.shape(label, out_type=tf.int64)[0])
                batch = sequence_batch(spec, tuple(indices["table"]), rows, training=True,
                                       u=indices.get("window_u"))
                return finish(batch, label, emb, *classes)
            return TrainingInput(functools.partial(StreamingSequenceSampler, split=split),
                                 gather_streamed, tables, streams=True)

        def gather(indices, *tensors):
            *data, labels = tensors[:7]
            rows = indices["index"]
            batch = sequence_batch(spec, tuple(data), rows, training=True,
                                   u=indices.get("window_u"))
            return finish(batch, tf.gather(labels, rows), *tensors[7:])
        return TrainingInput(SequenceSampler, gather, (*SequenceTable(split).data,
                                                       tf.constant(split.labels, tf.int64),
                                                       *tables))

    def eval_batches(self, split, batch_size: int):
        streamed = is_streamed(split)
        data = None if streamed else SequenceTable(split).data
        n, size = len(split), min(batch_size, len(split))
        for start in range(0, n, size):
            # every call has `size` rows (the last batch repeats its last video), so one trace
            # serves the whole evaluation; the repeated rows are dropped
            rows = np.minimum(np.arange(start, start + size), n - 1)
            if streamed:  # the batch's records only, as rows 0..size-1
                data, _ = split.table(rows)
                rows = np.arange(size)
            yield (tf.constant(rows, tf.int64), data), min(size, n - start)

    def model_inputs(self, inputs):
        rows, data = inputs
        b = sequence_batch(self.spec, data, rows, training=False)
        return b["audio"], b["video"], {k: b[k] for k in ("audio_mask", "audio_time",
                                                          "video_mask", "video_time")}


class SequenceKind(InputKind):
    name = "sequences"
    temporal = True
    description = "per-step sequences"

    def check_benchmark(self, benchmark, cfg) -> None:
        super().check_benchmark(benchmark, cfg)
        steps = (cfg.model.audio_step, cfg.model.video_step)
        if steps != (benchmark.audio_step, benchmark.video_step):
            raise ConfigError(f"model step times {steps} s differ from the {benchmark.feature_set} "
                              f"step rates {(benchmark.audio_step, benchmark.video_step)} s; use "
                              f"the preset of this feature set")
        if sequence_spec(cfg, benchmark).mode == "max":  # (validates the sequence options)
            check_sequence_steps(benchmark)  # batches pad to their longest video

    def batching(self, cfg, benchmark) -> Batching:
        return SequenceBatching(sequence_spec(cfg, benchmark))

    def typical_steps(self, cfg) -> tuple[int, int]:
        """(audio steps, video steps) of a typical video as the evaluation batches it:
        `max` mode: floor(typical duration / step) per modality (UCF cls 6 / 9, VGGSound cls
        10 / 15, main 6 / 6 and 10 / 10); `fixed` mode (ActivityNet): the test window
        (video `test_video_steps`, audio the same time span: cls 200 / 300, main 300 / 300)."""
        spec = sequence_spec(cfg)
        if spec.mode == "fixed":
            return spec.window(training=False)
        seconds = TYPICAL_SECONDS.get(cfg.data.dataset, TYPICAL_SECONDS["UCF"])
        return tuple(max(1, int(np.floor(seconds / s + 1e-9)))
                     for s in (spec.audio_step, spec.video_step))

    def flops_inputs(self, cfg, batch_size: int, num_classes: int):
        """At a typical video's length (all steps valid), per video."""
        m, b = cfg.model, batch_size
        ta, tv = self.typical_steps(cfg)
        batch = {"audio": tf.TensorSpec([b, ta, m.audio_dim], tf.float32),
                 "video": tf.TensorSpec([b, tv, m.video_dim], tf.float32),
                 "text": tf.TensorSpec([b, m.text_dim], tf.float32),
                 "label": tf.TensorSpec([b], tf.int64),
                 **class_specs(cfg, batch_size, num_classes)}
        for name, t in (("audio", ta), ("video", tv)):
            batch[f"{name}_mask"] = tf.TensorSpec([b, t], tf.float32)
            batch[f"{name}_time"] = tf.TensorSpec([b, t], tf.float32)
        return ([tf.TensorSpec([1, ta, m.audio_dim], tf.float32),
                 tf.TensorSpec([1, tv, m.video_dim], tf.float32)], batch, f"{ta}/{tv}")

    def flops_rows(self, datasets: list) -> list:
        return datasets  # the architecture and the typical length differ per dataset

    def serving_inputs(self, cfg):
        return SequenceInputs(cfg.model.audio_dim, cfg.model.video_dim, sequence_spec(cfg))


SEQUENCES = register_input_kind(SequenceKind())
