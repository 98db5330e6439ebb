"""Temporal (non-averaged) layout: pickle IO, reader checks, synth --temporal, inspect --temporal."""
import hashlib
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np

from avca_tf.safe_load import load_pickle
import pytest

from avca_tf.data.formats.pickle_features import (read_class_pickle, read_class_pickle_with_fps,
                                          write_class_pickle)
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.data.formats.temporal import (TEMPORAL_STAGES, TemporalLayout, concat_temporal,
                                   load_temporal_benchmark)
from avca_tf.errors import BenchmarkError


@pytest.fixture(scope="module")
def temporal_root(tmp_path_factory, real_splits):
    root = tmp_path_factory.mktemp("temporal_ucf")
    synthesize(root, dataset="UCF", feature_set="main_features", splits=real_splits,
               seed=0, scale=0.05, temporal=True)
    return root


def _copy(root, tmp_path):
    dest = tmp_path / "root"
    shutil.copytree(root, dest)
    return dest


def _tree_digest(path):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            if name.startswith("synth_"):
                continue  # records the absolute --splits path
            p = os.path.join(dirpath, name)
            h.update(os.path.relpath(p, path).encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_pickle_roundtrip_sequences_and_vectors(tmp_path):
    seqs = [np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((1, 2), np.float32)]
    write_class_pickle(tmp_path / "a.pkl", ["v1", "v2"], seqs)
    ids, got = read_class_pickle(tmp_path / "a.pkl", "audio")
    assert ids == ["v1", "v2"] and all(np.array_equal(a, b) for a, b in zip(seqs, got))
    raw = load_pickle(tmp_path / "a.pkl")
    # one fps per video, as the authors' files (their loaders index fps[i])
    assert raw["video_names"] == [b"v1", b"v2"] and raw["fps"] == [25, 25]
    assert read_class_pickle_with_fps(tmp_path / "a.pkl", "audio")[2] == 25
    raw["fps"] = 25   # a single number is read too
    with open(tmp_path / "a.pkl", "wb") as f:
        pickle.dump(raw, f)
    assert read_class_pickle_with_fps(tmp_path / "a.pkl", "audio")[2] == 25
    write_class_pickle(tmp_path / "b.pkl", ["x"], [np.zeros(4)])
    ids, got = read_class_pickle(tmp_path / "b.pkl", "video")
    assert ids == ["x"] and got[0].shape == (4,) and got[0].dtype == np.float32


@pytest.mark.parametrize("obj, message", [
    ([1, 2], "expected a dict"),
    ({"features": []}, "missing key"),
    ({"features": [np.zeros((2, 3))], "video_names": [b"a", b"b"]}, "1 feature entries but 2"),
    ({"features": [np.zeros((2, 3)), np.zeros((2, 4))], "video_names": [b"a", b"b"]},
     "width 3"),
    ({"features": [np.full((2, 3), np.nan)], "video_names": [b"a"]}, "NaN"),
    ({"features": [np.zeros((2, 3, 4))], "video_names": [b"a"]}, "expected a float array"),
])
def test_pickle_errors_name_the_file(tmp_path, obj, message):
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    with pytest.raises(BenchmarkError, match=message) as e:
        read_class_pickle(path, "audio")
    assert "bad.pkl" in str(e.value)


def test_reader_ragged_flat_storage(temporal_root):
    bench = load_temporal_benchmark(temporal_root, "UCF", "main_features")
    assert set(bench.splits) == set(TEMPORAL_STAGES)
    assert (bench.audio_step, bench.video_step) == (1.0, 1.0)
    s = bench.splits["stage_1_train"]
    assert s.audio.ndim == 2 and s.audio.shape[1] == 512 and s.audio.dtype == np.float32
    assert s.audio.shape[0] == s.audio_lengths.sum() and s.video.shape[0] == s.video_lengths.sum()
    assert len(np.unique(s.audio_lengths)) > 3  # ragged
    layout = TemporalLayout(temporal_root, "UCF", "main_features")
    cls = bench.class_names[s.labels[0]]
    ids, feats = read_class_pickle(layout.class_file("video", "stage_1_train", cls), "video")
    a, v = s.sequences(0)
    assert s.video_ids[0] == ids[0] and np.array_equal(v, feats[0])
    two = bench.protocol(2).train
    assert len(two) == sum(len(bench.splits[k]) for k in TEMPORAL_STAGES[:3])
    sub = two.subset("x", np.array([len(two) - 1, 0]))
    assert np.array_equal(sub.sequences(1)[0], two.sequences(0)[0])
    assert len(concat_temporal("y", [sub, sub])) == 4


def test_synth_temporal_same_seed_same_bytes(temporal_root, tmp_path, real_splits):
    synthesize(tmp_path, dataset="UCF", feature_set="main_features", splits=real_splits,
               seed=0, scale=0.05, temporal=True)
    assert _tree_digest(tmp_path / "UCF") == _tree_digest(temporal_root / "UCF")


def test_synth_temporal_cls_step_rates(tmp_path, real_splits):
    synthesize(tmp_path, dataset="UCF", feature_set="cls_features", splits=real_splits,
               seed=1, scale=0.03, temporal=True)
    bench = load_temporal_benchmark(tmp_path, "UCF", "cls_features")
    s = bench.splits["stage_2_test_unseen"]
    assert (bench.audio_step, bench.video_step) == (0.96, 0.64)
    assert s.audio.shape[1] == 128 and s.video.shape[1] == 4096
    # the same clip duration at 0.96 s and 0.64 s per step: 1.5x as many video steps
    ratio = s.video_lengths / s.audio_lengths
    assert np.all(np.abs(ratio - 1.5) < 0.5) and s.video_lengths.sum() > 1.4 * s.audio_lengths.sum()
    assert s.audio.min() >= 0 and s.audio.max() <= 255 and np.all(s.audio == np.round(s.audio))


def _rewrite(path, **changes):
    obj = load_pickle(path)
    for key, fn in changes.items():
        obj[key] = fn(obj[key])
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _first_class_file(root, modality, stage="stage_1_train"):
    layout = TemporalLayout(root, "UCF", "main_features")
    return sorted(layout.stage_dir(modality, stage).glob("*.pkl"))[0]


@pytest.mark.parametrize("modality, change, message", [
    ("video", {"features": lambda f: [np.zeros((0, 512), np.float32)] + f[1:]},
     "zero video steps"),
    ("audio", {"video_names": lambda n: n[::-1]}, "disagree"),
    ("video", {"features": lambda f: [x[:, :500] for x in f]}, "feature width 500, expected 512"),
    ("audio", {"features": lambda f: [x.mean(0) for x in f]}, "looks like averaged"),
    ("audio", {"features": lambda f: [np.repeat(x, 3, axis=0) for x in f]}, "same duration"),
    ("video", {"fps": lambda fps: 30}, "fps 30, expected 25"),
    ("video", {"fps": lambda fps: [30] * len(fps)}, "fps 30, expected 25"),
    ("video", {"fps": lambda fps: fps[1:]}, "fps entries for"),
])
def test_reader_errors(temporal_root, tmp_path, modality, change, message):
    root = _copy(temporal_root, tmp_path)
    path = _first_class_file(root, modality)
    _rewrite(path, **change)
    with pytest.raises(BenchmarkError, match=message) as e:
        load_temporal_benchmark(root, "UCF", "main_features")
    assert path.stem in str(e.value)


def test_reader_missing_class_file(temporal_root, tmp_path):
    root = _copy(temporal_root, tmp_path)
    path = _first_class_file(root, "audio", "stage_2_test_unseen")
    path.unlink()
    with pytest.raises(BenchmarkError, match=f"missing file .*{path.name}"):
        load_temporal_benchmark(root, "UCF", "main_features")


def test_inspect_temporal_cli(temporal_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ok = subprocess.run([sys.executable, "-m", "avca_tf.cli", "inspect", str(temporal_root),
                         "--dataset", "UCF", "--temporal"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "video steps min/med/max" in ok.stdout and "stage_2_test_unseen" in ok.stdout
    root = _copy(temporal_root, tmp_path)
    _rewrite(_first_class_file(root, "video"), video_names=lambda n: n[1:],
             features=lambda f: f[1:], fps=lambda f: f[1:])
    bad = subprocess.run([sys.executable, "-m", "avca_tf.cli", "inspect", str(root), "--dataset",
                          "UCF", "--temporal"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "disagree" in bad.stderr
