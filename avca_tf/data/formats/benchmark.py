"""Reader of the published AVCA-GZSL benchmark layout.

`load_benchmark` turns `<root>/<dataset>/...` into typed arrays for every stage
folder and validates everything it reads: a problem raises `BenchmarkError`
naming the file, the class and what was expected. Nothing is dropped
silently; files that are deliberately not loaded (an h5 file of a class the
stage list does not name, as the cls split leaves behind) are listed in
`Benchmark.notes`.

Facts of the authors' reader that we keep: label = index of the class in
sorted `all_class.txt`; class names are matched case-insensitively (the split
files say `HandStandPushups`, all_class.txt `HandstandPushups`); stage 2
trains on the three stage-1 folders, never on `stage_2_train`.
"""
from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from avca_tf.config import DATASETS as DATASET_NAMES, FEATURE_SETS, TEXT_PAIRINGS, FeatureSet  # noqa: F401
from avca_tf.config import check_choice
from avca_tf.errors import BenchmarkError
from avca_tf.safe_load import load_npy

log = logging.getLogger(__name__)

STAGES = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen",
          "stage_2_train", "stage_2_test_seen", "stage_2_test_unseen")
MODALITIES = ("audio", "video")
EMBED_DIM = 300


@dataclass(frozen=True)
class DatasetFiles:
    """Per-dataset file names of the name mapping and the embedding dict."""
    name: str
    names_csv: str
    embeddings_npy: str
    text_key: str = ""                   # `{key}` of FeatureSet.text_files
    clip_names: tuple = ()               # (csv, column) of the CLIP/CLAP class names, if not manual


DATASETS = {
    "UCF": DatasetFiles("UCF", "ucf_w2v_class_names.csv", "word_embeddings_ucf_normed.npy",
                        "ucf", ("ucf_clip_class_names.csv", "clip_class_name")),
    "ActivityNet": DatasetFiles("ActivityNet", "activitynet_w2v_class_names.csv",
                                "word_embeddings_activity_normed.npy", "activitynet"),
    "VGGSound": DatasetFiles("VGGSound", "vggsound_w2v_class_names.csv",
                             "word_embeddings_vggsound_normed.npy", "vggsound"),
    # The self-contained synthetic benchmark written by `avca synth` without --splits.
    "Toy": DatasetFiles("Toy", "toy_w2v_class_names.csv", "word_embeddings_toy_normed.npy", "toy"),
}
assert tuple(DATASETS) == DATASET_NAMES


@dataclass(frozen=True)
class Layout:
    """Paths of one dataset / feature set inside a benchmark root."""
    root: Path
    dataset: str
    feature_set: str

    @property
    def dataset_dir(self) -> Path:
        return Path(self.root) / self.dataset

    @property
    def class_split_dir(self) -> Path:
        return self.dataset_dir / "class-split"

    @property
    def all_class_file(self) -> Path:
        return self.class_split_dir / "all_class.txt"

    @property
    def names_csv(self) -> Path:
        files = DATASETS[self.dataset]
        if FEATURE_SETS[self.feature_set].clip_names and files.clip_names:
            return self.class_split_dir / files.clip_names[0]
        return self.class_split_dir / files.names_csv

    @property
    def name_column(self) -> str:
        """Column of `names_csv` holding the names the label-embedding dicts are keyed by."""
        files = DATASETS[self.dataset]
        if FEATURE_SETS[self.feature_set].clip_names and files.clip_names:
            return files.clip_names[1]
        return "manual"

    @property
    def split_dir(self) -> Path:
        return self.class_split_dir / FEATURE_SETS[self.feature_set].split_folder

    def stage_txt(self, stage: str) -> Path:
        return self.split_dir / f"{stage}.txt"

    def stage_csv(self, stage: str) -> Path:
        return self.split_dir / f"{stage}.csv"

    @property
    def features_dir(self) -> Path:
        return self.dataset_dir / "features" / FEATURE_SETS[self.feature_set].folder

    def stage_dir(self, modality: str, stage: str) -> Path:
        return self.features_dir / modality / stage

    @property
    def embedding_files(self) -> list[tuple[Path, int]]:
        """(label-embedding dict file, width) per part; a class's vector concatenates them."""
        fs, files = FEATURE_SETS[self.feature_set], DATASETS[self.dataset]
        if not fs.text_files:
            return [(self.features_dir / "text" / files.embeddings_npy, EMBED_DIM)]
        return [(self.features_dir / "text" / t.format(key=files.text_key), d)
                for t, d in fs.text_files]

    @property
    def embeddings_file(self) -> Path:
        return self.embedding_files[0][0]


@dataclass(frozen=True)
class Split:
    """The samples of one stage folder."""
    name: str
    audio: np.ndarray      # float32 [n, d_a]
    video: np.ndarray      # float32 [n, d_v]
    labels: np.ndarray     # int64 [n], index into Benchmark.class_names
    video_ids: np.ndarray  # object (str) [n]
    class_ids: np.ndarray  # int64 [k], the classes the stage's .txt lists, sorted

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def concat_splits(name: str, parts: list[Split]) -> Split:
    """One Split holding the samples of `parts` in order."""
    return Split(
        name=name,
        audio=np.concatenate([p.audio for p in parts]),
        video=np.concatenate([p.video for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        video_ids=np.concatenate([p.video_ids for p in parts]),
        class_ids=np.unique(np.concatenate([p.class_ids for p in parts])).astype(np.int64),
    )


@dataclass(frozen=True)
class ProtocolData:
    """Everything one protocol stage needs."""
    train: Split
    eval_seen: Split
    eval_unseen: Split
    seen_class_ids: np.ndarray    # int64
    unseen_class_ids: np.ndarray  # int64
    join: Callable = concat_splits  # how this benchmark's splits concatenate

    def eval_split(self):
        """eval_seen then eval_unseen as one split (what evaluation scores)."""
        return self.join("eval", [self.eval_seen, self.eval_unseen])


@dataclass(frozen=True)
class Benchmark:
    temporal = False               # its splits hold per-step sequences (TemporalBenchmark)
    dataset: str
    feature_set: str
    class_names: tuple[str, ...]   # sorted all_class.txt ("original" names)
    label_embeddings: np.ndarray   # float32 [C, 300], row i = class i's vector
    splits: dict[str, Split]
    text_pairing: str = "own"
    notes: tuple[str, ...] = field(default=())  # files read but deliberately not loaded

    @staticmethod
    def _concat(name, parts):
        """How stage 2 joins the stage-1 folders (the temporal benchmark overrides it)."""
        return concat_splits(name, parts)

    def protocol(self, stage: int) -> ProtocolData:
        """Stage 1: train on stage_1_train, evaluate on the validation folders.
        Stage 2: train on all stage-1 folders (as the authors do; the
        stage_2_train folders are not used), evaluate on the test folders."""
        s = self.splits
        if stage == 1:
            train = s["stage_1_train"]
            seen, unseen = s["stage_1_val_seen"], s["stage_1_val_unseen"]
        elif stage == 2:
            train = self._concat("stage_2_train", [s["stage_1_train"], s["stage_1_val_seen"],
                                                   s["stage_1_val_unseen"]])
            seen, unseen = s["stage_2_test_seen"], s["stage_2_test_unseen"]
        else:
            raise ValueError(f"protocol stage must be 1 or 2, got {stage!r}")
        return ProtocolData(train=train, eval_seen=seen, eval_unseen=unseen,
                            seen_class_ids=seen.class_ids, unseen_class_ids=unseen.class_ids,
                            join=self._concat)


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 file; BenchmarkError naming the file, line and byte otherwise."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise BenchmarkError(f"{path}: line {line}: byte 0x{data[e.start]:02x} at offset "
                             f"{e.start} is not UTF-8; expected UTF-8 text") from None


def read_name_list(path: Path) -> list[str]:
    """Non-empty stripped lines of a class list; error if missing or duplicated."""
    if not path.is_file():
        raise BenchmarkError(f"missing file {path}")
    names = [line.strip() for line in read_utf8(path).splitlines()]
    names = [n for n in names if n]
    seen: dict[str, str] = {}
    for n in names:
        if n.lower() in seen:
            raise BenchmarkError(f"{path}: class {n!r} is listed twice "
                                 f"(as {seen[n.lower()]!r} and {n!r}; names are case-insensitive)")
        seen[n.lower()] = n
    if not names:
        raise BenchmarkError(f"{path}: lists no classes")
    return names


def read_name_mapping(path: Path, column: str = "manual") -> dict[str, str]:
    """`original,<column>` csv (column default `manual`) -> {original.lower(): name}."""
    if not path.is_file():
        raise BenchmarkError(f"missing file {path}")
    with io.StringIO(read_utf8(path), newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"original", column} <= set(reader.fieldnames):
            raise BenchmarkError(f"{path}: expected columns 'original' and {column!r}, "
                                 f"got {reader.fieldnames}")
        mapping: dict[str, str] = {}
        for row in reader:
            key = row["original"].strip().lower()
            if key in mapping:
                raise BenchmarkError(f"{path}: class {row['original']!r} has two rows")
            mapping[key] = row[column].strip()
    return mapping


def read_embedding_dict(path: Path) -> dict[str, np.ndarray]:
    """The benchmark's pickled dict manual name -> vector."""
    if not path.is_file():
        raise BenchmarkError(f"missing file {path} (label embeddings)")
    try:
        obj = load_npy(str(path))
    except Exception as e:  # numpy/pickle raise many types for corrupt files
        raise BenchmarkError(f"unreadable label-embedding file {path}: {e}") from e
    if not isinstance(obj, dict):
        raise BenchmarkError(f"{path}: expected a pickled dict name -> vector, "
                             f"got {type(obj).__name__}")
    return obj


def _embedding_vector(path: Path, key: str, value, cls: str, dim: int = EMBED_DIM) -> np.ndarray:
    vec = np.asarray(value)
    if vec.shape != (dim,) or not np.issubdtype(vec.dtype, np.floating):
        raise BenchmarkError(f"{path}: label embedding of class {cls!r} (key {key!r}) has shape "
                             f"{vec.shape} dtype {vec.dtype}, expected float ({dim},)")
    if not np.all(np.isfinite(vec)):
        raise BenchmarkError(f"{path}: label embedding of class {cls!r} (key {key!r}) "
                             f"contains NaN or Inf")
    return vec.astype(np.float32)


def label_embeddings(layout: Layout, class_names: tuple[str, ...],
                     text_pairing: str = "own") -> tuple[np.ndarray, list[str]]:
    """[C, text_dim] label embeddings in class-id order, plus notes.

    "own": row i is the vector of class i, found through the
    original -> manual name mapping. "reference": the authors' defect,
    own[reference_pairing(...)] (see there). Feature sets with several text
    files (clip_clap) concatenate the parts; the pairing is the same for all.
    """
    check_choice("text pairing", text_pairing, TEXT_PAIRINGS, BenchmarkError)
    own, notes, perm = _own_embeddings(layout, class_names, text_pairing == "reference")
    return (own if text_pairing == "own" else own[perm]), notes


def reference_pairing(layout: Layout, class_names: tuple[str, ...]) -> np.ndarray:
    """The authors' class/vector pairing as a permutation P of class ids (int64 [C]):
    their reader gives class i the vector of class P[i]. It takes the dict's vectors in
    sorted manual-name order and indexes them by class id, so classes whose sorted
    manual and original positions differ get another class's vector."""
    return _own_embeddings(layout, class_names, True)[2]


def _own_embeddings(layout: Layout, class_names, with_reference: bool):
    """(own [C, text_dim], notes, reference permutation or None), every text file's
    part concatenated in class-id order."""
    mapping = read_name_mapping(layout.names_csv, layout.name_column)
    parts, notes, perm = [], [], None
    for path, dim in layout.embedding_files:
        rows, part_notes, perm = _embedding_part(layout, path, dim, mapping, class_names,
                                                 with_reference)
        parts.append(rows)
        notes.extend(n for n in part_notes if n not in notes)
    return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)), notes, perm


def _embedding_part(layout: Layout, path: Path, dim: int, mapping, class_names,
                    with_reference: bool):
    """(rows [C, dim], notes, reference permutation or None) of one label-embedding dict."""
    emb = read_embedding_dict(path)
    notes: list[str] = []
    rows = []
    for name in class_names:
        manual = mapping.get(name.lower())
        if manual is None:
            raise BenchmarkError(f"{layout.names_csv}: class {name!r} of {layout.all_class_file} "
                                 f"has no row (no label embedding can be found for it)")
        if manual not in emb:
            raise BenchmarkError(f"{path}: no label embedding for class {name!r} "
                                 f"(expected key {manual!r} from {layout.names_csv})")
        rows.append(_embedding_vector(path, manual, emb[manual], name, dim))
    unknown = sorted(set(mapping) - {n.lower() for n in class_names})
    if unknown:
        notes.append(f"{layout.names_csv}: rows for {len(unknown)} names not in "
                     f"all_class.txt are not used: {unknown[:5]}")
    manual_names = {mapping[n.lower()] for n in class_names}
    extra = sorted(k for k in emb if k not in manual_names)
    if not with_reference:
        if extra:
            notes.append(f"{path}: {len(extra)} vectors belong to no class of "
                         f"all_class.txt and are not used: {extra[:5]}")
        return np.stack(rows), notes, None
    if extra:  # the authors' reader would fail on these keys
        raise BenchmarkError(f"{path}: keys {extra[:5]} map to no class; the "
                             f"reference pairing needs exactly one vector per class")
    if len(emb) != len(class_names):
        raise BenchmarkError(f"{layout.names_csv}: {len(class_names)} classes share "
                             f"{len(emb)} manual names; the reference pairing needs one each")
    owner = {mapping[n.lower()]: i for i, n in enumerate(class_names)}
    return np.stack(rows), notes, np.asarray([owner[k] for k in sorted(emb)], np.int64)


def reference_mispaired(class_names: tuple[str, ...], own: np.ndarray,
                        reference: np.ndarray) -> list[str]:
    """Classes the reference pairing gives another class's vector."""
    return [n for n, a, b in zip(class_names, own, reference) if not np.array_equal(a, b)]


def _open_h5(path: Path):
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise BenchmarkError(f"unreadable h5 file {path}: {e}") from e


def read_h5(path, cls: str = "", expected_dim: int | None = None):
    """(data float32 [n, d], video ids object [n]) of one feature h5 file, structure checked
    (datasets 'data' [n, d] float and 'video_urls' [n], one id per row, width
    `expected_dim`); rows are checked by `nonfinite_rows`. The one h5 reader of
    `load_benchmark` and of the ingestion job. Errors name the file and the class."""
    where = f"{path} (class {cls!r})" if cls else str(path)
    with _open_h5(path) as f:
        for key in ("data", "video_urls"):
            if key not in f:
                raise BenchmarkError(f"{where}: missing dataset {key!r}; "
                                     f"expected 'data' [n, d] and 'video_urls' [n]")
        try:
            data = f["data"][()]
            urls = f["video_urls"][()]
        except OSError as e:
            raise BenchmarkError(f"unreadable h5 file {path}: {e}") from e
    width = "d" if expected_dim is None else expected_dim
    if data.ndim != 2 or not np.issubdtype(data.dtype, np.floating):
        raise BenchmarkError(f"{where}: 'data' has shape {data.shape} dtype "
                             f"{data.dtype}, expected float [n, {width}]")
    if expected_dim is not None and data.shape[0] and data.shape[1] != expected_dim:
        raise BenchmarkError(f"{where}: feature width {data.shape[1]}, expected {expected_dim}")
    if urls.ndim != 1 or urls.shape[0] != data.shape[0]:
        raise BenchmarkError(f"{where}: 'video_urls' has shape {urls.shape}, "
                             f"expected [{data.shape[0]}] (one id per row of 'data')")
    if urls.dtype.kind == "S":
        ids = np.char.decode(urls, "utf-8").astype(object)
    else:  # variable-length strings come back as an object array of bytes
        ids = np.array([u.decode("utf-8") if isinstance(u, bytes) else str(u) for u in urls],
                       dtype=object)
    return data.astype(np.float32, copy=False), ids


def nonfinite_rows(data: np.ndarray) -> np.ndarray:
    """Indices of the rows of `data` holding NaN or Inf (the row check of reader and ingestion)."""
    return np.flatnonzero(~np.isfinite(data).all(axis=1))


def read_feature_file(path: Path, expected_dim: int, cls: str) -> tuple[np.ndarray, np.ndarray]:
    """(data float32 [n, d], video ids object [n]) of one class h5 file, every row valid."""
    data, ids = read_h5(path, cls, expected_dim)
    if data.shape[0] == 0:
        raise BenchmarkError(f"{path}: class {cls!r} has no samples (empty class)")
    bad = nonfinite_rows(data)
    if bad.size:
        raise BenchmarkError(f"{path} (class {cls!r}): {bad.size} rows contain NaN or Inf "
                             f"(first row {int(bad[0])})")
    return data, ids


def read_pickle_feature_file(path: Path, expected_dim: int, cls: str,
                             modality: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """(data float32 [n, d], video ids object [n]) of one class pickle of 1-D entries."""
    from avca_tf.data.formats.pickle_features import read_class_pickle
    names, features = read_class_pickle(path, modality)
    first = features[0]
    if first.ndim != 1 or first.shape[0] != expected_dim:
        raise BenchmarkError(f"{path} (class {cls!r}): {modality} entries have shape "
                             f"{first.shape}, expected one vector of {expected_dim} per video")
    return np.stack(features), np.array(names, dtype=object)


def _read_class_file(layout: Layout, path: Path, dim: int, cls: str, modality: str):
    if FEATURE_SETS[layout.feature_set].file_format == "pkl":
        return read_pickle_feature_file(path, dim, cls, modality)
    return read_feature_file(path, dim, cls)


def _stage_files(folder: Path, index: dict[str, int], class_names, layout: Layout,
                 suffix: str | None = None):
    """{class id: path} of a stage folder's `suffix` files (default: the feature set's);
    error on files of unknown classes."""
    if not folder.is_dir():
        raise BenchmarkError(f"missing folder {folder}")
    suffix = suffix or FEATURE_SETS[layout.feature_set].suffix
    files: dict[int, Path] = {}
    others: list[str] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        p = Path(entry.path)
        if p.suffix != suffix:
            others.append(p.name)
            continue
        cid = index.get(p.stem.lower())
        if cid is None:
            raise BenchmarkError(f"{p}: file name matches no class of {layout.all_class_file}")
        if cid in files:
            raise BenchmarkError(f"{folder}: two files for class {class_names[cid]!r}: "
                                 f"{files[cid].name} and {p.name}")
        files[cid] = p
    return files, others


def class_index(class_names) -> dict[str, int]:
    """Lower-cased class name -> class id (names are matched case-insensitively)."""
    return {n.lower(): i for i, n in enumerate(class_names)}


def stage_class_ids(layout: Layout, stage: str, index: dict[str, int]) -> list[int]:
    """The class ids a stage's .txt lists (the one class-list resolver of reader and
    ingestion); error on a class all_class.txt does not have."""
    txt = layout.stage_txt(stage)
    ids = []
    for n in read_name_list(txt):
        if n.lower() not in index:
            raise BenchmarkError(f"{txt}: class {n!r} is not in {layout.all_class_file}")
        ids.append(index[n.lower()])
    return ids


def listed_files(layout: Layout, stage: str, class_names, index: dict[str, int],
                 suffix: str | None = None, file_format: str | None = None):
    """(class ids the stage's .txt lists, sorted int64; per modality {class id: path} of the
    stage folders' `suffix` files; notes on the files not loaded), for every layout."""
    txt = layout.stage_txt(stage)
    ids = stage_class_ids(layout, stage, index)
    notes, found = [], {}
    for m in MODALITIES:
        files, others = _stage_files(layout.stage_dir(m, stage), index, class_names, layout,
                                     suffix)
        unlisted = sorted(set(files) - set(ids))
        if unlisted:
            notes.append(f"{layout.stage_dir(m, stage)}: not loaded, class not in {txt.name}: "
                         + ", ".join(files[c].name for c in unlisted))
        if others:
            notes.append(f"{layout.stage_dir(m, stage)}: ignored non-"
                         f"{file_format or FEATURE_SETS[layout.feature_set].file_format} files "
                         f"{others[:5]}")
        found[m] = files
    return np.array(sorted(ids), dtype=np.int64), found, notes


def read_split(layout: Layout, stage: str, class_names: tuple[str, ...],
               index: dict[str, int]) -> tuple[Split, list[str]]:
    """Loads one stage folder (both modalities) for the classes its .txt lists."""
    txt = layout.stage_txt(stage)
    class_ids, found, notes = listed_files(layout, stage, class_names, index)
    fs = FEATURE_SETS[layout.feature_set]
    dims = {"audio": fs.audio_dim, "video": fs.video_dim}
    arrays = {m: [] for m in MODALITIES}
    labels, vids = [], []
    for cid in class_ids:
        per = {}
        for m in MODALITIES:
            path = found[m].get(int(cid))
            if path is None:
                raise BenchmarkError(f"missing file {layout.stage_dir(m, stage)}/"
                                     f"{class_names[cid]}{fs.suffix} for class "
                                     f"{class_names[cid]!r} listed in {txt}")
            per[m] = (path, *_read_class_file(layout, path, dims[m], class_names[cid], m))
        (pa, a, ida), (pv, v, idv) = per["audio"], per["video"]
        if ida.shape != idv.shape or not np.array_equal(ida, idv):
            if ida.shape != idv.shape:
                why = f"{ida.shape[0]} vs {idv.shape[0]} samples"
            else:
                k = int(np.flatnonzero(ida != idv)[0])
                why = f"row {k}: {ida[k]!r} vs {idv[k]!r}"
            raise BenchmarkError(f"class {class_names[cid]!r}: video ids of {pa} and {pv} "
                                 f"disagree ({why}); both must list the same videos in order")
        arrays["audio"].append(a)
        arrays["video"].append(v)
        labels.append(np.full(a.shape[0], cid, dtype=np.int64))
        vids.append(ida)
    split = Split(name=stage, audio=np.concatenate(arrays["audio"]),
                  video=np.concatenate(arrays["video"]), labels=np.concatenate(labels),
                  video_ids=np.concatenate(vids), class_ids=class_ids)
    return split, notes


STAGE1_FOLDERS = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")


def stage2_train_present(layout: Layout) -> bool:
    """False when neither modality has a stage_2_train folder (the authors' ClipClap-GZSL
    and TCaF loaders never read it; stage 2 is built from the stage-1 folders)."""
    return any(layout.stage_dir(m, "stage_2_train").is_dir() for m in MODALITIES)


def check_seen_unseen_disjoint(layout: Layout, splits: dict, class_names) -> None:
    """Validation and test seen/unseen class lists must not share a class."""
    for a, b in (("stage_1_val_seen", "stage_1_val_unseen"),
                 ("stage_2_test_seen", "stage_2_test_unseen")):
        both = np.intersect1d(splits[a].class_ids, splits[b].class_ids)
        if both.size:
            raise BenchmarkError(f"{layout.split_dir}: classes {[class_names[i] for i in both]} "
                                 f"are both in {a}.txt and {b}.txt (seen and unseen must differ)")


def read_layout(layout_class, root, dataset: str, feature_set: str, text_pairing: str,
                stages, read_stage, features_hint: str) -> dict:
    """What every layout's reader does (the averaged h5 one here, the per-step pickle one in
    temporal.py): checks the names and folders, reads the class list, the label embeddings
    and each of `stages` with `read_stage(layout, stage, class_names, index) -> (split,
    notes)`, checks seen/unseen are disjoint and logs the notes. Returns the Benchmark
    fields."""
    check_choice("dataset", dataset, DATASETS, BenchmarkError)
    check_choice("feature set", feature_set, FEATURE_SETS, BenchmarkError)
    layout = layout_class(Path(root), dataset, feature_set)
    if not layout.dataset_dir.is_dir():
        raise BenchmarkError(f"missing folder {layout.dataset_dir} (dataset {dataset!r} "
                             f"under benchmark root {root})")
    if not layout.features_dir.is_dir():
        raise BenchmarkError(f"missing folder {layout.features_dir} ({features_hint})")
    class_names = tuple(sorted(read_name_list(layout.all_class_file)))
    index = class_index(class_names)
    embeddings, notes = label_embeddings(layout, class_names, text_pairing)
    splits = {}
    for stage in stages:
        if stage == "stage_2_train" and not stage2_train_present(layout):
            # never read by the protocol (stage 2 trains on the three stage-1 folders), and
            # absent from copies of the authors' layout: built from those folders
            splits[stage] = concat_splits(stage, [splits[s] for s in STAGE1_FOLDERS])
            notes.append(f"{layout.features_dir}: no stage_2_train folders; stage 2 trains "
                         "on the three stage-1 folders (as always)")
            continue
        splits[stage], stage_notes = read_stage(layout, stage, class_names, index)
        notes.extend(stage_notes)
    check_seen_unseen_disjoint(layout, splits, class_names)
    for note in notes:
        log.warning(note)
    return dict(dataset=dataset, feature_set=feature_set, class_names=class_names,
                label_embeddings=embeddings, splits=splits, text_pairing=text_pairing,
                notes=tuple(notes))


def load_benchmark(root, dataset: str, feature_set: str, text_pairing: str = "own") -> Benchmark:
    """Reads and validates `<root>/<dataset>` for one feature set (all six stages)."""
    return Benchmark(**read_layout(Layout, root, dataset, feature_set, text_pairing, STAGES,
                                   read_split, f"feature set {feature_set!r}"))


def stage_table(title: str, header: tuple, rows: list, bench, mispaired=None) -> str:
    """`title`, one aligned row per stage, the reference pairing's count and the notes."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = [title]
    lines += ["  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    if mispaired is not None:
        lines.append(f"reference pairing: {len(mispaired)} of {len(bench.class_names)} classes "
                     f"get another class's label vector")
    lines += [f"note: {note}" for note in bench.notes]
    return "\n".join(lines)


def summary(bench: Benchmark, mispaired=None) -> str:
    """The per-stage table `avca inspect` and `avca synth` print (plus the notes)."""
    header = ("stage", "classes", "samples", "audio dim", "video dim", "embedding dim")
    rows = [(name, len(s.class_ids), len(s), s.audio.shape[1], s.video.shape[1],
             bench.label_embeddings.shape[1]) for name, s in bench.splits.items()]
    return stage_table(f"{bench.dataset} / {bench.feature_set}: {len(bench.class_names)} "
                       f"classes in all_class.txt, text pairing {bench.text_pairing}",
                       header, rows, bench, mispaired)


def inspect_benchmark(root, dataset: str, feature_set: str, text_pairing: str = "own",
                      load=load_benchmark, layout_class=Layout):
    """(Benchmark, classes the reference pairing gives another vector or None); `load` and
    `layout_class` read another layout (temporal.inspect_temporal_benchmark)."""
    bench = load(root, dataset, feature_set, text_pairing)
    mispaired = None
    if text_pairing == "reference":
        own, _ = label_embeddings(layout_class(Path(root), dataset, feature_set),
                                  bench.class_names, "own")
        mispaired = reference_mispaired(bench.class_names, own, bench.label_embeddings)
    return bench, mispaired
