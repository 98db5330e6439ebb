"""The benchmark reader: real splits of all datasets, pairing, protocol, bad input."""
import csv
import shutil
from pathlib import Path

import h5py
import numpy as np

from avca_tf.safe_load import load_npy
import pytest

from avca_tf.data.formats.benchmark import (FEATURE_SETS, STAGES, Layout, label_embeddings, load_benchmark,
                               reference_mispaired)
from avca_tf.errors import AvcaError, BenchmarkError
from avca_tf.data.synthesis.synth import synthesize

NPY = {"UCF": "ucf", "ActivityNet": "activity", "VGGSound": "vggsound"}
# small scales keep every real-split benchmark to a few hundred samples
SCALE = {"UCF": 0.05, "ActivityNet": 0.02, "VGGSound": 0.004}
MISPAIRED = {"UCF": 79, "ActivityNet": 8, "VGGSound": 205}


def _names(path):
    return [line.strip() for line in open(path, encoding="utf-8") if line.strip()]


def _csv_counts(path):
    counts = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            counts[row["label"].lower()] = counts.get(row["label"].lower(), 0) + 1
    return counts


@pytest.fixture(scope="module")
def real_roots(tmp_path_factory, real_splits):
    """One synthesized root per dataset with both feature sets."""
    roots = {}
    for ds in SCALE:
        root = tmp_path_factory.mktemp(f"real_{ds}")
        for fs in FEATURE_SETS:
            synthesize(root, dataset=ds, feature_set=fs, splits=real_splits, seed=1,
                       scale=SCALE[ds])
        roots[ds] = root
    return roots


@pytest.fixture(scope="module")
def loaded(real_roots):
    cache = {}

    def get(dataset, feature_set):
        if (dataset, feature_set) not in cache:
            cache[dataset, feature_set] = load_benchmark(real_roots[dataset], dataset, feature_set)
        return cache[dataset, feature_set]
    return get


@pytest.mark.parametrize("feature_set", sorted(FEATURE_SETS))
@pytest.mark.parametrize("dataset", sorted(SCALE))
def test_real_splits_load(loaded, real_splits, dataset, feature_set):
    b = loaded(dataset, feature_set)
    split_dir = real_splits / dataset / "class-split" / FEATURE_SETS[feature_set].split_folder
    all_names = sorted(_names(real_splits / dataset / "class-split" / "all_class.txt"))
    assert b.class_names == tuple(all_names)
    lower = {n.lower(): i for i, n in enumerate(all_names)}
    fs = FEATURE_SETS[feature_set]
    for stage in STAGES:
        s = b.splits[stage]
        listed = _names(split_dir / f"{stage}.txt")
        assert s.class_ids.tolist() == sorted(lower[n.lower()] for n in listed)
        assert s.audio.shape == (len(s), fs.audio_dim) and s.audio.dtype == np.float32
        assert s.video.shape == (len(s), fs.video_dim) and s.video.dtype == np.float32
        assert s.labels.dtype == np.int64 and set(s.labels.tolist()) == set(s.class_ids.tolist())
        assert len(set(s.video_ids.tolist())) == len(s)
        csv_path = split_dir / f"{stage}.csv"
        if stage == "stage_2_train":  # the stage-1 videos of each class, as in the real csv
            stage1 = sum(np.bincount(b.splits[s].labels, minlength=len(all_names))
                         for s in STAGES[:3])
            got = np.bincount(s.labels, minlength=len(all_names))
            np.testing.assert_array_equal(got[s.class_ids], stage1[s.class_ids])
        else:  # real per-class counts, scaled and rounded, at least 1
            if csv_path.is_file():
                counts = _csv_counts(csv_path)
            else:  # VGGSound train csv not distributed: 9 x the class's val_seen count
                assert dataset == "VGGSound" and stage == "stage_1_train"
                counts = {k: 9 * v for k, v in
                          _csv_counts(split_dir / "stage_1_val_seen.csv").items()}
            got = np.bincount(s.labels, minlength=len(all_names))
            for n in listed:
                want = max(1, int(round(counts[n.lower()] * SCALE[dataset])))
                assert got[lower[n.lower()]] == want, (stage, n)
    assert b.notes == ()


@pytest.mark.parametrize("dataset", sorted(SCALE))
def test_every_class_gets_its_own_vector_and_reference_reproduces_defect(
        real_roots, loaded, real_splits, dataset):
    b = loaded(dataset, "main_features")
    emb = load_npy(real_splits / "w2v_features" / f"word_embeddings_{NPY[dataset]}_normed.npy")
    names_csv = next((real_splits / dataset / "class-split").glob("*_w2v_class_names.csv"))
    with open(names_csv, newline="", encoding="utf-8") as f:
        manual = {r["original"]: r["manual"] for r in csv.DictReader(f)}
    for i, name in enumerate(b.class_names):
        np.testing.assert_array_equal(b.label_embeddings[i], emb[manual[name]])
    ref, _ = label_embeddings(Layout(real_roots[dataset], dataset, "main_features"),
                              b.class_names, "reference")
    wrong = reference_mispaired(b.class_names, b.label_embeddings, ref)
    assert len(wrong) == MISPAIRED[dataset]
    # the authors' order: vectors sorted by manual name, row i used for class id i
    np.testing.assert_array_equal(ref, np.stack([emb[k] for k in sorted(emb)]))
    if dataset == "UCF":  # the published example
        i = b.class_names.index("CuttingInKitchen")
        np.testing.assert_array_equal(ref[i], emb["Diving"])
        assert "CuttingInKitchen" in wrong


def test_case_quirk_and_protocol(ucf_main_root):
    b = load_benchmark(ucf_main_root, "UCF", "main_features")
    folder = Layout(ucf_main_root, "UCF", "main_features").stage_dir("audio", "stage_1_train")
    assert (folder / "HandStandPushups.h5").is_file()  # named as the split file says
    hid = b.class_names.index("HandstandPushups")
    assert hid in b.splits["stage_1_train"].class_ids
    assert [len(b.splits[s].class_ids) for s in STAGES] == [30, 30, 12, 42, 42, 9]

    p1 = b.protocol(1)
    assert p1.train is b.splits["stage_1_train"]
    assert p1.seen_class_ids.tolist() == b.splits["stage_1_val_seen"].class_ids.tolist()
    assert p1.unseen_class_ids.tolist() == b.splits["stage_1_val_unseen"].class_ids.tolist()
    p2 = b.protocol(2)
    parts = [b.splits[s] for s in STAGES[:3]]
    assert len(p2.train) == sum(len(s) for s in parts)
    np.testing.assert_array_equal(p2.train.audio, np.concatenate([s.audio for s in parts]))
    assert p2.train.class_ids.tolist() == b.splits["stage_2_train"].class_ids.tolist()
    assert p2.eval_unseen is b.splits["stage_2_test_unseen"]
    # the stage_2_train folder holds the same videos as the stage-1 folders
    s2 = b.splits["stage_2_train"]
    order = np.argsort(s2.video_ids)
    order_p = np.argsort(p2.train.video_ids)
    np.testing.assert_array_equal(s2.video_ids[order], p2.train.video_ids[order_p])
    np.testing.assert_array_equal(s2.video[order], p2.train.video[order_p])
    with pytest.raises(ValueError):
        b.protocol(3)


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def tiny_toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_toy")
    synthesize(root, seed=3, scale=0.05)
    return root


@pytest.fixture
def toy(tmp_path, tiny_toy):
    """A private copy to corrupt, and its layout."""
    root = tmp_path / "b"
    shutil.copytree(tiny_toy, root)
    return Layout(root, "Toy", "main_features")


def _load(layout, **kw):
    return load_benchmark(layout.root, "Toy", "main_features", **kw)


def _a_class(layout, stage="stage_2_test_unseen"):
    return _names(layout.stage_txt(stage))[0]


def _rewrite(path, data=None, ids=None, drop=None):
    with h5py.File(path, "r") as f:
        old_data, old_ids = f["data"][()], f["video_urls"][()]
    path.unlink()
    with h5py.File(path, "w") as f:
        if drop != "data":
            f.create_dataset("data", data=old_data if data is None else data)
        if drop != "video_urls":
            f.create_dataset("video_urls", data=old_ids if ids is None else ids)
    return old_data, old_ids


def test_tiny_toy_loads(toy):
    b = _load(toy)
    assert b.dataset == "Toy" and b.notes == ()


def test_missing_file(toy):
    name = _a_class(toy)
    path = toy.stage_dir("video", "stage_2_test_unseen") / f"{name}.h5"
    path.unlink()
    with pytest.raises(BenchmarkError, match=rf"missing file .*{name}\.h5 for class '{name}'"):
        _load(toy)


def test_missing_folder(toy):
    shutil.rmtree(toy.stage_dir("audio", "stage_1_val_seen"))
    with pytest.raises(BenchmarkError, match="missing folder .*audio/stage_1_val_seen"):
        _load(toy)


def test_missing_class_lists_and_root(toy, tmp_path):
    toy.stage_txt("stage_2_train").unlink()
    with pytest.raises(BenchmarkError, match="missing file .*stage_2_train.txt"):
        _load(toy)
    with pytest.raises(BenchmarkError, match="missing folder"):
        load_benchmark(tmp_path / "nowhere", "Toy", "main_features")
    with pytest.raises(BenchmarkError, match=r"missing folder .*features/cls_features"):
        load_benchmark(toy.root, "Toy", "cls_features")
    with pytest.raises(BenchmarkError, match="unknown dataset"):
        load_benchmark(toy.root, "UCF101", "main_features")
    with pytest.raises(BenchmarkError, match="unknown feature set"):
        load_benchmark(toy.root, "Toy", "i3d")


def test_class_without_label_embedding(toy):
    emb = load_npy(toy.embeddings_file)
    name = _names(toy.all_class_file)[5]
    manual = next(r["manual"] for r in csv.DictReader(open(toy.names_csv)) if r["original"] == name)
    del emb[manual]
    np.save(toy.embeddings_file, emb, allow_pickle=True)
    with pytest.raises(BenchmarkError, match=rf"no label embedding for class '{name}'"):
        _load(toy)


def test_class_missing_from_name_mapping(toy):
    rows = open(toy.names_csv).read().splitlines()
    name = rows[3].split(",")[0]
    toy.names_csv.write_text("\n".join(rows[:3] + rows[4:]) + "\n")
    with pytest.raises(BenchmarkError, match=rf"class '{name}' .* has no row"):
        _load(toy)


def test_bad_embedding_vector(toy):
    emb = load_npy(toy.embeddings_file)
    key = sorted(emb)[0]
    emb[key] = np.full(300, np.nan, np.float32)
    np.save(toy.embeddings_file, emb, allow_pickle=True)
    with pytest.raises(BenchmarkError, match="NaN or Inf"):
        _load(toy)
    emb[key] = np.zeros(299, np.float32)
    np.save(toy.embeddings_file, emb, allow_pickle=True)
    with pytest.raises(BenchmarkError, match=r"expected float \(300,\)"):
        _load(toy)


def test_feature_width_differs(toy):
    name = _a_class(toy, "stage_1_train")
    path = toy.stage_dir("audio", "stage_1_train") / f"{name}.h5"
    data, _ = _rewrite(path, data=np.zeros((1, 500), np.float32))
    if data.shape[0] != 1:
        _rewrite(path, data=np.zeros((data.shape[0], 500), np.float32))
    with pytest.raises(BenchmarkError, match=rf"{path}.*'{name}'.*feature width 500, expected 512"):
        _load(toy)


def test_nan_and_inf(toy):
    name = _a_class(toy)
    path = toy.stage_dir("video", "stage_2_test_unseen") / f"{name}.h5"
    with h5py.File(path, "r") as f:
        data = f["data"][()]
    data[-1, 3] = np.inf
    _rewrite(path, data=data)
    with pytest.raises(BenchmarkError, match=rf"{path}.*1 rows contain NaN or Inf"):
        _load(toy)


def test_audio_and_video_ids_disagree(toy):
    name = _a_class(toy)
    path = toy.stage_dir("audio", "stage_2_test_unseen") / f"{name}.h5"
    with h5py.File(path, "r") as f:
        ids = f["video_urls"][()]
    _rewrite(path, ids=ids[::-1].copy())
    with pytest.raises(BenchmarkError, match=rf"class '{name}': video ids of .* disagree \(row 0"):
        _load(toy)


def test_empty_class(toy):
    name = _a_class(toy)
    path = toy.stage_dir("audio", "stage_2_test_unseen") / f"{name}.h5"
    _rewrite(path, data=np.zeros((0, 512), np.float32), ids=np.zeros((0,), "S80"))
    with pytest.raises(BenchmarkError, match=rf"{path}: class '{name}' has no samples"):
        _load(toy)


def test_unreadable_and_malformed_h5(toy):
    name = _a_class(toy)
    path = toy.stage_dir("video", "stage_2_test_unseen") / f"{name}.h5"
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(BenchmarkError, match=rf"unreadable h5 file {path}"):
        _load(toy)
    path.write_bytes(b"")
    with h5py.File(path, "w") as f:
        f.create_dataset("video_urls", data=np.array([b"x"], "S80"))
    with pytest.raises(BenchmarkError, match=rf"{path}.*missing dataset 'data'"):
        _load(toy)


def test_stage_lists_an_unknown_class(toy):
    txt = toy.stage_txt("stage_1_val_unseen")
    txt.write_text(txt.read_text() + "NoSuchClass\n")
    with pytest.raises(BenchmarkError, match=r"class 'NoSuchClass' is not in .*all_class.txt"):
        _load(toy)


def test_class_both_seen_and_unseen(toy):
    name = _a_class(toy, "stage_2_test_seen")
    txt = toy.stage_txt("stage_2_test_unseen")
    txt.write_text(txt.read_text() + name + "\n")
    for m in ("audio", "video"):
        shutil.copy(toy.stage_dir(m, "stage_2_test_seen") / f"{name}.h5",
                    toy.stage_dir(m, "stage_2_test_unseen") / f"{name}.h5")
    with pytest.raises(BenchmarkError, match=rf"\['{name}'\] are both in"):
        _load(toy)


def test_unlisted_file_is_reported_unknown_file_fails(toy):
    # an h5 of a real class the stage does not list (as the cls split leaves): a note
    extra = _a_class(toy, "stage_2_test_seen")
    for m in ("audio", "video"):
        shutil.copy(toy.stage_dir(m, "stage_2_test_seen") / f"{extra}.h5",
                    toy.stage_dir(m, "stage_2_test_unseen") / f"{extra}.h5")
    b = _load(toy)
    assert len(b.notes) == 2 and all(f"{extra}.h5" in n and "not loaded" in n for n in b.notes)
    assert b.class_names.index(extra) not in b.splits["stage_2_test_unseen"].labels
    # an h5 that names no class at all: error
    shutil.copy(toy.stage_dir("audio", "stage_2_test_seen") / f"{extra}.h5",
                toy.stage_dir("audio", "stage_2_test_seen") / "Mystery.h5")
    with pytest.raises(BenchmarkError, match=r"Mystery.h5: file name matches no class"):
        _load(toy)


def test_bad_text_pairing_is_an_avca_error(toy):
    with pytest.raises(AvcaError, match="text pairing"):
        _load(toy, text_pairing="sorted")
    own, _ = label_embeddings(toy, _load(toy).class_names, "own")
    assert own.shape == (101, 300)


def test_inputs_are_paths_or_strings(toy):
    assert len(load_benchmark(str(toy.root), "Toy", "main_features").class_names) == 101
    assert isinstance(toy.root, Path)
