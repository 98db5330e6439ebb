"""Reader of the non-averaged (temporal) feature layout used by TCaF.

`<root>/<dataset>/features/{main|cls}_features_non_averaged/{audio,video}/<stage>/<class>.pkl`,
each a dict (`avca_tf.data.formats.pickle_features`) of per-video sequences [T_i, D].
The class lists, name mapping and label embeddings are those of the averaged
layout (`avca_tf.data.formats.benchmark`: same `class-split/` folder, label vectors in
`features/<...>_non_averaged/text/`). Five stage folders as the authors' data
(stage_1_train, stage_1_val_seen, stage_1_val_unseen, stage_2_test_seen,
stage_2_test_unseen); stage 2 trains on the three stage-1 folders.

Ragged sequences are stored flat: `TemporalSplit.audio` is [sum_i T_a,i, D_a]
with `audio_lengths` [n] (row i's steps start at `audio_starts[i]`), the same
for video. Checks beyond the averaged reader's: every entry a [T, D] sequence
of the feature set's width, no zero-length video, audio and video files list
the same videos in the same order, `fps` 25, and the audio and video lengths
of each class span the same duration at the feature set's step rates.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avca_tf.data.formats.benchmark import (FEATURE_SETS, MODALITIES, Benchmark, Layout,
                                            inspect_benchmark, listed_files, read_layout,
                                            stage_table)
from avca_tf.data.formats.record_index import concat_streamed
from avca_tf.data.formats.pickle_features import FPS, read_class_pickle_with_fps
from avca_tf.errors import BenchmarkError


TEMPORAL_STAGES = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen",
                   "stage_2_test_seen", "stage_2_test_unseen")
# seconds per step (audio, video): SeLaVi one per second; VGGish 0.96 s; C3D 16 frames at 25 fps
STEP_SECONDS = {"main_features": (1.0, 1.0), "cls_features": (0.96, 16 / 25)}
# accepted ratio of a class's audio duration (sum T_a * step_a) to its video duration
DURATION_RATIO = (0.75, 1.0 / 0.75)


def step_seconds(feature_set: str) -> tuple[float, float]:
    if feature_set not in STEP_SECONDS:
        raise BenchmarkError(f"unknown feature set {feature_set!r}; "
                             f"expected one of {sorted(STEP_SECONDS)}")
    return STEP_SECONDS[feature_set]


@dataclass(frozen=True)
class TemporalLayout(Layout):
    """The averaged layout's paths with features under `<feature_set>_non_averaged`."""

    @property
    def features_dir(self) -> Path:
        return self.dataset_dir / "features" / f"{self.feature_set}_non_averaged"

    def class_file(self, modality: str, stage: str, class_name: str) -> Path:
        return self.stage_dir(modality, stage) / f"{class_name}.pkl"


def _starts(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


@dataclass(frozen=True)
class TemporalSplit:
    """The videos of one stage folder as flat step arrays plus per-video lengths."""
    name: str
    audio: np.ndarray          # float32 [sum T_a, d_a]
    audio_lengths: np.ndarray  # int64 [n]
    video: np.ndarray          # float32 [sum T_v, d_v]
    video_lengths: np.ndarray  # int64 [n]
    labels: np.ndarray         # int64 [n]
    video_ids: np.ndarray      # object (str) [n]
    class_ids: np.ndarray      # int64 [k]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def audio_starts(self) -> np.ndarray:
        return _starts(self.audio_lengths)

    @property
    def video_starts(self) -> np.ndarray:
        return _starts(self.video_lengths)

    def sequences(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(audio [T_a, d_a], video [T_v, d_v]) of video i."""
        a0, v0 = int(self.audio_starts[i]), int(self.video_starts[i])
        return (self.audio[a0:a0 + int(self.audio_lengths[i])],
                self.video[v0:v0 + int(self.video_lengths[i])])

    def subset(self, name: str, rows: np.ndarray) -> "TemporalSplit":
        """The videos `rows` (in that order)."""
        rows = np.asarray(rows, np.int64)
        a_idx = _gather_rows(self.audio_starts, self.audio_lengths, rows)
        v_idx = _gather_rows(self.video_starts, self.video_lengths, rows)
        return TemporalSplit(name, self.audio[a_idx], self.audio_lengths[rows], self.video[v_idx],
                             self.video_lengths[rows], self.labels[rows], self.video_ids[rows],
                             np.unique(self.labels[rows]).astype(np.int64))


def _gather_rows(starts, lengths, rows) -> np.ndarray:
    if rows.size == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(starts[r], starts[r] + lengths[r]) for r in rows])


def concat_temporal(name: str, parts: list[TemporalSplit]) -> TemporalSplit:
    """One TemporalSplit holding the videos of `parts` in order (a StreamedSplit for
    streamed parts, `avca_tf.data.formats.record_index`)."""
    if parts and hasattr(parts[0], "serialized"):
        return concat_streamed(name, parts)
    cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
    return TemporalSplit(name=name, audio=cat("audio"), audio_lengths=cat("audio_lengths"),
                         video=cat("video"), video_lengths=cat("video_lengths"),
                         labels=cat("labels"), video_ids=cat("video_ids"),
                         class_ids=np.unique(cat("class_ids")).astype(np.int64))


@dataclass(frozen=True)
class TemporalBenchmark(Benchmark):
    """A Benchmark whose splits are TemporalSplits; `protocol()` as the averaged one."""
    temporal = True
    audio_step: float = 1.0    # seconds per audio step
    video_step: float = 1.0    # seconds per video step

    @staticmethod
    def _concat(name, parts):
        return concat_temporal(name, parts)


def check_class(cls: str, paths: dict, per: dict, dims: dict, steps: tuple[float, float]):
    """Checks of one class's audio and video pickles (read by `read_class_pickle_with_fps`)."""
    for m, step in zip(MODALITIES, steps):
        ids, feats, fps = per[m]
        path = paths[m]
        if not feats:
            raise BenchmarkError(f"{path}: class {cls!r} has no videos (empty class)")
        if fps is not None and fps != FPS:
            raise BenchmarkError(f"{path} (class {cls!r}): fps {fps!r}, expected {FPS} (the step "
                                 f"times assume {FPS} fps)")
        for k, x in enumerate(feats):
            if x.ndim != 2:
                raise BenchmarkError(f"{path} (class {cls!r}): video {ids[k]!r} has shape "
                                     f"{x.shape}, expected a sequence [T, {dims[m]}] (this looks "
                                     f"like averaged features)")
            if x.shape[1] != dims[m]:
                raise BenchmarkError(f"{path} (class {cls!r}): video {ids[k]!r} has feature width "
                                     f"{x.shape[1]}, expected {dims[m]}")
            if x.shape[0] == 0:
                raise BenchmarkError(f"{path} (class {cls!r}): video {ids[k]!r} has zero {m} "
                                     f"steps (expected at least one)")
    ida, idv = per["audio"][0], per["video"][0]
    if ida != idv:
        if len(ida) != len(idv):
            why = f"{len(ida)} vs {len(idv)} videos"
        else:
            k = next(i for i, (a, b) in enumerate(zip(ida, idv)) if a != b)
            why = f"entry {k}: {ida[k]!r} vs {idv[k]!r}"
        raise BenchmarkError(f"class {cls!r}: video_names of {paths['audio']} and {paths['video']} "
                             f"disagree ({why}); both must list the same videos in order")
    t_a = sum(x.shape[0] for x in per["audio"][1]) * steps[0]
    t_v = sum(x.shape[0] for x in per["video"][1]) * steps[1]
    ratio = t_a / t_v
    if not DURATION_RATIO[0] <= ratio <= DURATION_RATIO[1]:
        raise BenchmarkError(
            f"class {cls!r}: audio steps x {steps[0]:g} s = {t_a:.1f} s but video steps x "
            f"{steps[1]:.2f} s = {t_v:.1f} s in {paths['audio'].parent.name} (ratio {ratio:.2f}); "
            f"expected the same duration: are these {'/'.join(str(s) for s in steps)} s-per-step "
            f"features of this feature set?")


def read_temporal_split(layout: TemporalLayout, stage: str, class_names: tuple[str, ...],
                        index: dict[str, int]) -> tuple[TemporalSplit, list[str]]:
    """Loads one stage folder (both modalities) for the classes its .txt lists."""
    txt = layout.stage_txt(stage)
    class_ids, found, notes = listed_files(layout, stage, class_names, index, ".pkl", "pkl")
    fs = FEATURE_SETS[layout.feature_set]
    dims = {"audio": fs.audio_dim, "video": fs.video_dim}
    steps = step_seconds(layout.feature_set)
    parts = {f: [] for f in ("audio", "audio_lengths", "video", "video_lengths", "labels", "ids")}
    for cid in class_ids:
        cls = class_names[cid]
        paths, per = {}, {}
        for m in MODALITIES:
            paths[m] = found[m].get(int(cid))
            if paths[m] is None:
                raise BenchmarkError(f"missing file {layout.class_file(m, stage, cls)} for class "
                                     f"{cls!r} listed in {txt}")
            per[m] = read_class_pickle_with_fps(paths[m], m)
        check_class(cls, paths, per, dims, steps)
        for m in MODALITIES:
            feats = per[m][1]
            parts[m].append(np.concatenate(feats))
            parts[f"{m}_lengths"].append(np.array([x.shape[0] for x in feats], np.int64))
        parts["labels"].append(np.full(len(per["audio"][0]), cid, dtype=np.int64))
        parts["ids"].append(np.array(per["audio"][0], dtype=object))
    split = TemporalSplit(
        name=stage, audio=np.concatenate(parts["audio"]),
        audio_lengths=np.concatenate(parts["audio_lengths"]),
        video=np.concatenate(parts["video"]), video_lengths=np.concatenate(parts["video_lengths"]),
        labels=np.concatenate(parts["labels"]), video_ids=np.concatenate(parts["ids"]),
        class_ids=class_ids)
    return split, notes


def load_temporal_benchmark(root, dataset: str, feature_set: str,
                            text_pairing: str = "own") -> TemporalBenchmark:
    """Reads and validates the temporal layout of `<root>/<dataset>` (five stage folders)."""
    fields = read_layout(TemporalLayout, root, dataset, feature_set, text_pairing,
                         TEMPORAL_STAGES, read_temporal_split, f"temporal features of "
                         f"{feature_set!r}; write them with `avca synth --temporal`")
    a_step, v_step = step_seconds(feature_set)
    return TemporalBenchmark(**fields, audio_step=a_step, video_step=v_step)


def _steps(lengths) -> str:
    if len(lengths) == 0:
        return "-"
    return f"{int(np.min(lengths))}/{float(np.median(lengths)):g}/{int(np.max(lengths))}"


def temporal_summary(bench: TemporalBenchmark, mispaired=None) -> str:
    """The per-stage table `avca inspect --temporal` and `avca synth --temporal` print."""
    header = ("stage", "classes", "videos", "audio steps min/med/max", "video steps min/med/max",
              "audio dim", "video dim")
    rows = [(name, len(s.class_ids), len(s), _steps(s.audio_lengths), _steps(s.video_lengths),
             s.audio.shape[1], s.video.shape[1]) for name, s in bench.splits.items()]
    title = (f"{bench.dataset} / {bench.feature_set} (temporal, {bench.audio_step:g} s per audio "
             f"step, {bench.video_step:g} s per video step): {len(bench.class_names)} classes in "
             f"all_class.txt, text pairing {bench.text_pairing}, embedding dim "
             f"{bench.label_embeddings.shape[1]}")
    return stage_table(title, header, rows, bench, mispaired)


def inspect_temporal_benchmark(root, dataset: str, feature_set: str, text_pairing: str = "own"):
    """(TemporalBenchmark, classes the reference pairing gives another vector or None)."""
    return inspect_benchmark(root, dataset, feature_set, text_pairing,
                             load=load_temporal_benchmark, layout_class=TemporalLayout)
