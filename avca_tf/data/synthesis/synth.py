"""Synthetic benchmarks in the published on-disk layout.

Two modes:
* real splits (`splits=` a copy of avgzsl_benchmark): the real class lists,
  the real per-class sample counts and video ids from the csv files, the real
  word2vec label embeddings; only the features are generated.
* toy (no `splits`): a self-contained dataset "Toy" sized like UCF-GZSL, with a
  generated vocabulary whose word vectors are written beside it in word2vec
  text format (`toy_word_vectors_path`); each class name is made of those words
  and its label embedding is the normalised mean of its words' vectors.

Features are drawn from one generative model (`FeatureModel`, see
docs/data.md): a random non-linear map of the class label embedding, plus a
class offset the text cannot predict, plus sample noise whose size depends on
the class and the modality, so that fusing audio and video helps.
Same arguments, same bytes.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from avca_tf.data.formats.benchmark import (DATASETS, EMBED_DIM, FEATURE_SETS, MODALITIES, STAGES, Layout,
                               read_embedding_dict, read_name_list)
from avca_tf.config import check_choice
from avca_tf.errors import BenchmarkError
from avca_tf.data.synthesis.features import FeatureModel, class_features, clip_clap_text
from avca_tf.io_utils import atomic_path

TOY = "Toy"
TOY_WORD_VECTORS = "toy_word_vectors.txt"
STAGE1 = STAGES[:3]
# Samples per class of stage_1_train relative to stage_1_val_seen where the
# train csv is not distributed (VGGSound): UCF and ActivityNet both split
# seen-class training videos 90/10 (3174/353 and 9204/1023).
TRAIN_PER_VAL_SEEN = 9


@dataclass(frozen=True)
class ToyLayout:
    """Class counts and per-class sample ranges like UCF-GZSL (main split)."""
    n_classes: int = 101        # in all_class.txt; as in UCF only some are used
    n_words: int = 240
    n_heads: int = 24           # first words shared by several classes ("Playing ...")
    latent_dim: int = 16        # word vectors vary in a low-dimensional subspace
    word_noise: float = 0.05    # per-dimension noise added to the word vectors
    n_train: int = 30           # stage_1_train = stage_1_val_seen classes
    n_val_unseen: int = 12
    n_test_unseen: int = 9
    train: tuple[int, int] = (85, 125)
    val_seen: tuple[int, int] = (9, 15)
    val_unseen: tuple[int, int] = (98, 145)
    test_seen: tuple[int, int] = (10, 16)
    test_unseen: tuple[int, int] = (110, 170)


def toy_word_vectors_path(root) -> Path:
    """The word2vec text file of the toy vocabulary inside a toy benchmark root."""
    return Path(root) / TOY / TOY_WORD_VECTORS


@dataclass
class Plan:
    """What to write: per stage, the listed class names and per class the video ids
    (`toy_plan` makes the toy's; `write_lists` writes its class-split files)."""
    class_names: list[str]                       # all_class.txt order
    names_rows: list[tuple[str, str]]            # (original, manual)
    embeddings: dict[str, np.ndarray]            # manual -> vector
    stages: dict[str, dict[str, list[str]]]      # stage -> {listed name: video ids}
    text_names: dict[str, str] = None            # original.lower() -> key of the text dicts
                                                 # of feature sets with text_files (clip_clap)


def _scaled(n: int, scale: float) -> int:
    return max(1, int(round(n * scale)))


# ---------------------------------------------------------------- toy plan
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def _toy_words(rng: np.random.Generator, n: int) -> list[str]:
    words: list[str] = []
    seen = set()
    while len(words) < n:
        k = int(rng.integers(2, 4))
        w = "".join(_CONSONANTS[rng.integers(len(_CONSONANTS))]
                    + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(k))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def _format_vectors(words: list[str], vectors: np.ndarray) -> tuple[str, np.ndarray]:
    """word2vec text and the float32 vectors exactly as a reader parses them back."""
    lines = [f"{len(words)} {vectors.shape[1]}"]
    parsed = np.empty(vectors.shape, np.float32)
    for i, (w, v) in enumerate(zip(words, vectors)):
        fields = [f"{x:.6f}" for x in v]
        parsed[i] = np.array(fields, dtype=np.float32)
        lines.append(w + " " + " ".join(fields))
    return "\n".join(lines) + "\n", parsed


def toy_plan(rng: np.random.Generator, toy: ToyLayout, scale: float) -> tuple[Plan, str]:
    """The toy's classes, names, label embeddings and video ids per stage, and its
    vocabulary in word2vec text format (also used by the media toy, avca_tf/media/toy.py)."""
    words = _toy_words(rng, toy.n_words)
    basis, _ = np.linalg.qr(rng.standard_normal((EMBED_DIM, toy.latent_dim)))
    latent = rng.standard_normal((toy.n_words, toy.latent_dim))
    vecs = latent @ basis.T + toy.word_noise * rng.standard_normal((toy.n_words, EMBED_DIM))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    text, vecs = _format_vectors(words, vecs)
    word_vec = dict(zip(words, vecs))
    heads, tails = words[:toy.n_heads], words[toy.n_heads:]
    names: dict[str, list[str]] = {}
    while len(names) < toy.n_classes:
        parts = [heads[rng.integers(len(heads))], tails[rng.integers(len(tails))]]
        if rng.random() < 0.3:
            parts.append(tails[rng.integers(len(tails))])
        if len(set(parts)) == len(parts):
            names.setdefault("".join(p.capitalize() for p in parts), parts)
    class_names = sorted(names)
    embeddings = {}
    rows = []
    for n in class_names:
        manual = " ".join(p.capitalize() for p in names[n])
        e = np.mean([word_vec[p] for p in names[n]], axis=0)
        embeddings[manual] = (e / np.linalg.norm(e)).astype(np.float32)
        rows.append((n, manual))
    order = [class_names[i] for i in rng.permutation(len(class_names))]
    train = order[:toy.n_train]
    val_unseen = order[toy.n_train:toy.n_train + toy.n_val_unseen]
    test_unseen = order[toy.n_train + toy.n_val_unseen:
                        toy.n_train + toy.n_val_unseen + toy.n_test_unseen]
    counter = {n: 0 for n in class_names}

    def ids(name, lo_hi):
        n = _scaled(int(rng.integers(lo_hi[0], lo_hi[1] + 1)), scale)
        out = [f"v_{name}_c{counter[name] + k:04d}" for k in range(n)]
        counter[name] += n
        return out

    stages = {
        "stage_1_train": {n: ids(n, toy.train) for n in train},
        "stage_1_val_seen": {n: ids(n, toy.val_seen) for n in train},
        "stage_1_val_unseen": {n: ids(n, toy.val_unseen) for n in val_unseen},
        "stage_2_test_seen": {n: ids(n, toy.test_seen) for n in train + val_unseen},
        "stage_2_test_unseen": {n: ids(n, toy.test_unseen) for n in test_unseen},
    }
    stages["stage_2_train"] = stage2_train(train + val_unseen, stages, Path("stage_2_train.txt"))
    return Plan(class_names, rows, embeddings, stages, {o.lower(): m for o, m in rows}), text


def stage2_train(listed: list[str], stages, txt: Path) -> dict[str, list[str]]:
    """stage_2_train holds the same videos as the three stage-1 folders."""
    out = {}
    for name in listed:
        ids = [i for s in STAGE1 for n, v in stages[s].items() if n.lower() == name.lower()
               for i in v]
        if not ids:
            raise BenchmarkError(f"{txt}: class {name!r} is in no stage-1 list")
        out[name] = ids
    return out


# --------------------------------------------------------------- real plan
def _find_embeddings(splits: Path, dataset: str, feature_set: str) -> Path:
    """The word2vec label-embedding dict of the source (clip_clap's are generated from it)."""
    npy = DATASETS[dataset].embeddings_npy
    if FEATURE_SETS[feature_set].text_files:
        feature_set = "cls_features"  # the word2vec dict of the split folder it shares
    for p in (Layout(splits, dataset, feature_set).embeddings_file, splits / "w2v_features" / npy):
        if p.is_file():
            return p
    raise BenchmarkError(f"no label embeddings {npy} under {splits} (looked in "
                         f"{dataset}/features/{feature_set}/text/ and w2v_features/)")


def _csv_ids(path: Path, listed: list[str]) -> dict[str, list[str]]:
    """Video ids per listed class from a stage csv (columns filename, label)."""
    by_lower = {n.lower(): n for n in listed}
    out: dict[str, list[str]] = {n: [] for n in listed}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
            raise BenchmarkError(f"{path}: expected columns 'filename' and 'label', "
                                 f"got {reader.fieldnames}")
        for row in reader:
            name = by_lower.get(row["label"].strip().lower())
            if name is not None:  # the cls split lists fewer classes than its csv
                out[name].append(row["filename"].strip())
    for n, ids in out.items():
        if not ids:
            raise BenchmarkError(f"{path}: no rows for class {n!r} listed in {path.stem}.txt")
    return out


def _real_plan(splits: Path, dataset: str, feature_set: str, scale: float):
    src = Layout(splits, dataset, feature_set)
    class_names = sorted(read_name_list(src.all_class_file))
    with open(src.class_split_dir / DATASETS[dataset].names_csv, newline="",
              encoding="utf-8") as f:
        rows = [(r["original"], r["manual"]) for r in csv.DictReader(f)]
    emb_path = _find_embeddings(splits, dataset, feature_set)
    embeddings = dict(read_embedding_dict(emb_path))
    stages: dict[str, dict[str, list[str]]] = {}
    for stage in STAGES:
        if stage == "stage_2_train":
            continue
        listed = read_name_list(src.stage_txt(stage))
        if src.stage_csv(stage).is_file():
            per = _csv_ids(src.stage_csv(stage), listed)
        elif stage == "stage_1_train":
            val = _csv_ids(src.stage_csv("stage_1_val_seen"), listed)
            per = {n: [f"{n}_train_{k:05d}".replace(" ", "_").replace(",", "")
                       for k in range(TRAIN_PER_VAL_SEEN * len(val[n]))] for n in listed}
        else:
            raise BenchmarkError(f"missing file {src.stage_csv(stage)} (per-class sample counts)")
        stages[stage] = {n: ids[:_scaled(len(ids), scale)] for n, ids in per.items()}
    stages["stage_2_train"] = stage2_train(read_name_list(src.stage_txt("stage_2_train")),
                                            stages, src.stage_txt("stage_2_train"))
    text_names = {o.lower(): m for o, m in rows}
    if FEATURE_SETS[feature_set].text_files and src.names_csv.is_file():
        from avca_tf.data.formats.benchmark import read_name_mapping
        text_names = read_name_mapping(src.names_csv, src.name_column)
    return Plan(class_names, rows, embeddings, stages, text_names), src


def write_h5(path: Path, data: np.ndarray, ids: list[str]) -> None:
    """One averaged-feature file of the published layout: `data` [n, d], `video_urls` [n]."""
    encoded = np.array([i.encode("utf-8") for i in ids], dtype="S80")
    if any(len(i.encode("utf-8")) > 80 for i in ids):
        raise BenchmarkError(f"{path}: a video id is longer than 80 bytes")
    with h5py.File(path, "w", libver="earliest", track_order=False) as f:
        f.create_dataset("data", data=data.astype(np.float32), track_times=False)
        f.create_dataset("video_urls", data=encoded, track_times=False)


def _write_features(fs, path: Path, data: np.ndarray, ids: list[str]) -> None:
    if fs.file_format == "pkl":  # one 1-D vector per video
        from avca_tf.data.formats.pickle_features import write_class_pickle
        write_class_pickle(path, ids, list(data))
    else:
        write_h5(path, data, ids)


def _write_plan(ds_dir: Path, plan: Plan, dataset: str, feature_set: str, seed: int,
                model: FeatureModel, progress: bool, text_encoder=None) -> None:
    layout = Layout(ds_dir.parent, dataset, feature_set)
    fs = FEATURE_SETS[feature_set]
    dims = {"audio": fs.audio_dim, "video": fs.video_dim}
    index = {n.lower(): i for i, n in enumerate(plan.class_names)}
    manual = {o.lower(): m for o, m in plan.names_rows}
    emb_matrix = np.stack([plan.embeddings[manual[n.lower()]] for n in plan.class_names])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    text_dir = layout.embeddings_file.parent
    text_dir.mkdir(parents=True, exist_ok=True)
    if fs.text_files:  # clip_clap: video follows the CLIP half, audio the CLAP half
        keys = [plan.text_names[n.lower()] for n in plan.class_names]
        if text_encoder is not None:  # class vectors from real text encoders
            both = np.asarray(text_encoder.encode(keys), np.float32)
            if both.shape != (len(keys), fs.text_dim):
                raise BenchmarkError(f"text encoder returned shape {both.shape}, expected "
                                     f"[{len(keys)}, {fs.text_dim}]")
            clip, clap = both[:, :fs.text_files[0][1]], both[:, fs.text_files[0][1]:]
        else:
            clip, clap = clip_clap_text(
                np.random.default_rng(np.random.SeedSequence([seed, 3])),
                emb_matrix.astype(np.float64))
        for (path, _), part in zip(layout.embedding_files, (clip, clap)):
            np.save(path, dict(zip(keys, part)), allow_pickle=True)
        classes = class_features(rng, model, emb_matrix.astype(np.float64), dims,
                                  {"video": clip.astype(np.float64),
                                   "audio": clap.astype(np.float64)})
    else:
        classes = class_features(rng, model, emb_matrix.astype(np.float64), dims)
        np.save(layout.embeddings_file, plan.embeddings, allow_pickle=True)
    stage1: dict[str, dict[str, list[np.ndarray]]] = {}
    jobs = [(s, n) for s in STAGE1 + ("stage_2_test_seen", "stage_2_test_unseen")
            for n in plan.stages[s]]
    for m in MODALITIES:
        for s in STAGES:
            layout.stage_dir(m, s).mkdir(parents=True, exist_ok=True)
    for stage, name in tqdm(jobs, desc=f"synth {dataset}/{feature_set}", disable=not progress):
        ids = plan.stages[stage][name]
        cid = index[name.lower()]
        sample_rng = np.random.default_rng(np.random.SeedSequence(
            [seed, 2, STAGES.index(stage), cid]))
        entry = stage1.setdefault(name.lower(), {m: [] for m in MODALITIES})
        for m in MODALITIES:
            centre, std, basis = classes[m][0][cid], float(classes[m][1][cid]), classes[m][2]
            shared = sample_rng.standard_normal((len(ids), basis.shape[0])) @ basis
            own = sample_rng.standard_normal((len(ids), dims[m]))
            noise = (np.sqrt(model.low_rank_share) * shared
                     + np.sqrt(1.0 - model.low_rank_share) * own)
            x = (centre + std * noise).astype(np.float32)
            _write_features(fs, layout.stage_dir(m, stage) / f"{name}{fs.suffix}", x, ids)
            if stage in STAGE1:
                entry[m].append(x)
    # stage_2_train: the same videos (ids and features) as the three stage-1 folders
    for name, ids in plan.stages["stage_2_train"].items():
        for m in MODALITIES:
            _write_features(fs, layout.stage_dir(m, "stage_2_train") / f"{name}{fs.suffix}",
                            np.concatenate(stage1[name.lower()][m]), ids)


def write_lists(ds_dir: Path, plan: Plan, dataset: str, feature_set: str,
                 class_files: bool) -> None:
    """Stage .txt/.csv files describing exactly what was written (and, for the
    toy, all_class.txt and the name mapping)."""
    layout = Layout(ds_dir.parent, dataset, feature_set)
    layout.split_dir.mkdir(parents=True, exist_ok=True)
    if class_files:
        layout.all_class_file.write_text("\n".join(plan.class_names) + "\n", encoding="utf-8")
        with open(layout.names_csv, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["original", "manual"])
            w.writerows(plan.names_rows)
    index = {n.lower(): i for i, n in enumerate(plan.class_names)}
    for stage, per in plan.stages.items():
        layout.stage_txt(stage).write_text("\n".join(per) + "\n", encoding="utf-8")
        with open(layout.stage_csv(stage), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["filename", "label", "label_code"])
            for name, ids in per.items():
                w.writerows([i, name, index[name.lower()]] for i in ids)


def _install(tmp_ds: Path, dest_ds: Path, parts: list[str]) -> None:
    """Moves the written parts into place, each atomically; keeps the rest of dest."""
    for rel in parts:
        src = tmp_ds / rel
        if not src.exists():
            continue
        with atomic_path(str(dest_ds / rel)) as tmp:
            os.replace(src, tmp)


# The authors' class splits and label embeddings, shipped as package data (MIT, LICENSE.md).
PACKAGED_SPLITS = Path(__file__).resolve().parent.parent / "avgzsl_benchmark"


def synthesize(out, dataset: str | None = None, feature_set: str = "main_features",
               splits=None, seed: int = 0, scale: float = 1.0,
               model: FeatureModel = FeatureModel(), toy: ToyLayout = ToyLayout(),
               progress: bool = False, temporal: bool = False, text_encoder=None) -> Path:
    """Writes `<out>/<dataset>` for one feature set and returns its path.

    The default dataset is the toy benchmark "Toy" (without `splits`). For UCF,
    ActivityNet and VGGSound the dataset's real class lists, counts, video ids
    and label embeddings are used, read from `splits` (a folder laid out like
    avgzsl_benchmark; `dataset` then defaults to "UCF") or, without it, from the
    copy shipped in the package (PACKAGED_SPLITS). `scale` multiplies every
    per-class sample count (rounded, at least 1).
    `temporal`: write per-step sequences in the non-averaged pickle layout
    (`avca_tf.data.synthesis.synth_temporal`) instead of the averaged h5 files.
    `text_encoder` (clip_clap only): an avca_tf.data.text.encoders encoder whose
    `encode(names)` gives the [CLIP; CLAP] class vectors (names as the prompts
    use them), instead of vectors generated from the word2vec ones.
    """
    if dataset is None:
        dataset = "UCF" if splits is not None else TOY
    if dataset != TOY and splits is None:
        splits = PACKAGED_SPLITS
    check_choice("feature set", feature_set, FEATURE_SETS, BenchmarkError)
    check_choice("dataset", dataset, DATASETS, BenchmarkError)
    if (dataset == TOY) != (splits is None):
        raise BenchmarkError("the toy benchmark (dataset 'Toy') is written without --splits")
    if not scale > 0:
        raise BenchmarkError(f"--scale must be > 0, got {scale}")
    out = Path(out)
    dest = out / dataset
    out.mkdir(parents=True, exist_ok=True)
    split_folder = FEATURE_SETS[feature_set].split_folder
    tmp_root = tempfile.mkdtemp(prefix=f".{dataset}.build-", dir=out)
    try:
        tmp_ds = Path(tmp_root) / dataset
        tmp_ds.mkdir(parents=True)
        if splits is None:
            rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
            plan, words_text = toy_plan(rng, toy, scale)
            (tmp_ds / TOY_WORD_VECTORS).write_text(words_text, encoding="utf-8")
        else:
            splits = Path(splits)
            if not (splits / dataset / "class-split").is_dir():
                raise BenchmarkError(f"missing folder {splits / dataset / 'class-split'} "
                                     f"(--splits must hold <dataset>/class-split)")
            plan, src = _real_plan(splits, dataset, feature_set, scale)
            shutil.copytree(src.class_split_dir, tmp_ds / "class-split")
            names_csv = Layout(tmp_ds.parent, dataset, feature_set).names_csv
            if not names_csv.is_file():  # e.g. ucf_clip_class_names.csv: the manual names
                with open(names_csv, "w", newline="", encoding="utf-8") as f:
                    w = csv.writer(f, lineterminator="\n")
                    w.writerow(["original", "manual", Layout(out, dataset, feature_set).name_column])
                    w.writerows((o, m, plan.text_names[o.lower()]) for o, m in plan.names_rows)
        write_lists(tmp_ds, plan, dataset, feature_set, class_files=splits is None)
        features = feature_set
        if temporal:
            from avca_tf.data.synthesis.synth_temporal import TemporalModel, write_temporal_features
            write_temporal_features(tmp_ds, plan, dataset, feature_set, seed, model, progress)
            features = f"{feature_set}_non_averaged"
        else:
            _write_plan(tmp_ds, plan, dataset, feature_set, seed, model, progress,
                        text_encoder)
        meta = {"dataset": dataset, "feature_set": feature_set, "seed": seed, "scale": scale,
                **({"temporal_model": asdict(TemporalModel())} if temporal else {}),
                "mode": "toy" if splits is None else
                        "real splits (packaged)" if splits == PACKAGED_SPLITS
                        else f"real splits from {splits}",
                "feature_model": asdict(model), **({"toy": asdict(toy)} if splits is None else {})}
        (tmp_ds / f"synth_{features}.json").write_text(json.dumps(meta, indent=2) + "\n")
        names_csv = Layout(out, dataset, feature_set).names_csv.name
        features_dir = features if temporal else FEATURE_SETS[feature_set].folder
        _install(tmp_ds, dest, list(dict.fromkeys([
            "class-split/all_class.txt", f"class-split/{DATASETS[dataset].names_csv}",
            f"class-split/{names_csv}", f"class-split/{split_folder}",
            f"features/{features_dir}", TOY_WORD_VECTORS, f"synth_{features}.json"])))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return dest


def toy_benchmark(root, log=None, temporal: bool = False) -> Path:
    """`root` holding the toy benchmark (seed 0), synthesized on first use only: a
    re-synthesis would touch every file and defeat caches keyed on the files.
    `log(message)` is told when it synthesizes. `temporal`: its per-step version
    (the non-averaged layout sequence models read)."""
    root = Path(root)
    marker = "synth_main_features_non_averaged.json" if temporal else "synth_main_features.json"
    if not (root / TOY / marker).is_file():
        if log is not None:
            log(f"synthesizing the {'temporal ' if temporal else ''}toy benchmark into {root}")
        synthesize(root, seed=0, temporal=temporal)
    return root
