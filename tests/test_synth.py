"""The synthetic benchmark: layout, determinism, toy vocabulary, learnability."""
import hashlib
import shutil

import numpy as np
import pytest

from avca_tf.data.formats.benchmark import STAGES, Layout, load_benchmark
from avca_tf.errors import BenchmarkError
from avca_tf.metrics import gzsl_metrics
from avca_tf.data.synthesis.synth import PACKAGED_SPLITS, synthesize, toy_word_vectors_path


def _digest(root):
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_same_seed_same_bytes(tmp_path):
    a = _digest(synthesize(tmp_path / "a", seed=7, scale=0.05))
    b = _digest(synthesize(tmp_path / "b", seed=7, scale=0.05))
    c = _digest(synthesize(tmp_path / "c", seed=8, scale=0.05))
    assert len(a) == 347 and a == b  # 2 x 165 h5 files + lists, mapping, npy, json, words
    assert a.keys() != c.keys() or a != c
    h5 = [k for k in a if k.endswith(".h5")]
    assert sum(a[k] != c.get(k) for k in h5) == len(h5)


def test_real_splits_same_bytes(tmp_path, real_splits):
    kw = dict(dataset="UCF", feature_set="cls_features", splits=real_splits, scale=0.02)
    assert _digest(synthesize(tmp_path / "a", **kw)) == _digest(synthesize(tmp_path / "b", **kw))


def _read_word2vec(path):
    lines = path.read_text().splitlines()
    v, d = map(int, lines[0].split())
    words = [ln.split(" ")[0] for ln in lines[1:]]
    vecs = np.array([ln.split(" ")[1:] for ln in lines[1:]], dtype=np.float32)
    assert vecs.shape == (v, d) == (len(words), 300)
    return dict(zip(words, vecs))


def test_toy_layout_and_label_embeddings_from_words(toy_root):
    b = load_benchmark(toy_root, "Toy", "main_features")
    assert len(b.class_names) == 101
    assert [len(b.splits[s].class_ids) for s in STAGES] == [30, 30, 12, 42, 42, 9]
    assert 6000 < sum(len(b.splits[s]) for s in STAGES if s != "stage_2_train") < 7500
    words = _read_word2vec(toy_word_vectors_path(toy_root))
    assert all(w.isalpha() and w.islower() for w in words)
    layout = Layout(toy_root, "Toy", "main_features")
    rows = [ln.split(",") for ln in layout.names_csv.read_text().splitlines()[1:]]
    manual = dict(rows)
    shared_words = 0
    for i, name in enumerate(b.class_names):
        parts = [p.lower() for p in manual[name].split(" ")]
        assert "".join(p.capitalize() for p in parts) == name
        mean = np.mean([words[p] for p in parts], axis=0)
        np.testing.assert_allclose(b.label_embeddings[i], mean / np.linalg.norm(mean), atol=1e-6)
        shared_words += any(p in manual[o].lower().split(" ") for o in b.class_names if o != name
                            for p in parts)
    assert shared_words > 50  # classes are related through shared words


def _proxy(b, features):
    p = b.protocol(2)
    emb = b.label_embeddings.astype(np.float64)
    x = features(p.train).astype(np.float64)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x = (x - mu) / sd
    w = np.linalg.solve(x.T @ x + 0.1 * len(x) * np.eye(x.shape[1]), x.T @ emb[p.train.labels])
    ev = np.concatenate([features(p.eval_seen), features(p.eval_unseen)]).astype(np.float64)
    z = ((ev - mu) / sd) @ w
    d = np.sqrt(np.maximum((z ** 2).sum(1)[:, None] - 2 * z @ emb.T + (emb ** 2).sum(1), 0))
    labels = np.concatenate([p.eval_seen.labels, p.eval_unseen.labels])
    return gzsl_metrics(d, labels, p.seen_class_ids, p.unseen_class_ids, beta=0.2)


def test_toy_is_learnable_not_trivial_and_fusion_helps(toy_root):
    b = load_benchmark(toy_root, "Toy", "main_features")
    audio = _proxy(b, lambda s: s.audio)
    video = _proxy(b, lambda s: s.video)
    both = _proxy(b, lambda s: np.concatenate([s.audio, s.video], 1))
    chance = 1 / 9
    # a closed-form linear map transfers to unseen classes, but not perfectly
    assert 3 * chance < both.ZSL < 0.98 and both.S < 0.95
    assert both.U < 0.98
    # fusing the modalities helps: per class one of them is the reliable one
    assert both.S > max(audio.S, video.S) + 0.05
    assert both.HM > max(audio.HM, video.HM)


def test_scale_keeps_every_class(tmp_path):
    b = load_benchmark(synthesize(tmp_path, seed=1, scale=0.001).parent, "Toy", "main_features")
    for s in STAGES:
        assert np.all(np.bincount(b.splits[s].labels)[b.splits[s].class_ids] >= 1)
    assert len(b.splits["stage_1_train"]) == 30


def test_both_feature_sets_in_one_root(tmp_path):
    synthesize(tmp_path, feature_set="main_features", scale=0.02)
    synthesize(tmp_path, feature_set="cls_features", scale=0.02)
    main = load_benchmark(tmp_path, "Toy", "main_features")
    cls = load_benchmark(tmp_path, "Toy", "cls_features")
    assert cls.splits["stage_1_train"].video.shape[1] == 4096
    assert main.splits["stage_1_train"].video.shape[1] == 512
    assert main.class_names == cls.class_names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Toy"]  # no temporaries left


def test_bad_arguments(tmp_path, real_splits):
    with pytest.raises(BenchmarkError, match="written without --splits"):
        synthesize(tmp_path, dataset="Toy", splits=real_splits)
    with pytest.raises(BenchmarkError, match="scale"):
        synthesize(tmp_path, scale=0)
    with pytest.raises(BenchmarkError, match="missing folder"):
        synthesize(tmp_path, dataset="UCF", splits=tmp_path / "none")


def test_failure_leaves_nothing_behind(tmp_path, real_splits):
    splits = tmp_path / "splits"
    shutil.copytree(real_splits / "UCF", splits / "UCF")
    shutil.copytree(real_splits / "w2v_features", splits / "w2v_features")
    (splits / "UCF/class-split/main_split/stage_2_test_seen.csv").unlink()
    out = tmp_path / "out"
    with pytest.raises(BenchmarkError, match="stage_2_test_seen.csv"):
        synthesize(out, dataset="UCF", splits=splits, scale=0.02)
    assert list(out.iterdir()) == []


def test_real_datasets_use_the_packaged_splits(tmp_path, capsys):
    """`avca synth --dataset ActivityNet` needs no --splits: the package ships the
    authors' class splits and label embeddings (with their MIT licence)."""
    from avca_tf import cli
    assert cli.main(["synth", "--out", str(tmp_path), "--dataset", "ActivityNet",
                     "--scale", "0.01"]) == 0
    bench = load_benchmark(tmp_path, "ActivityNet", "main_features")
    assert len(bench.class_names) == 200
    assert (PACKAGED_SPLITS / "LICENSE.md").read_text().startswith("MIT License")
