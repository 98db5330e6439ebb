"""clip_clap feature set: per-class pickles, [CLIP; CLAP] class embeddings, synth, ingest."""
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from avca_tf.data.formats.benchmark import FEATURE_SETS, Layout, load_benchmark
from avca_tf.data.formats.pickle_features import read_class_pickle, write_class_pickle
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.errors import BenchmarkError

SCALE = 0.05


@pytest.fixture(scope="module")
def clip_root(tmp_path_factory, real_splits):
    root = tmp_path_factory.mktemp("ucf_clip_clap")
    synthesize(root, dataset="UCF", feature_set="clip_clap", splits=real_splits,
               seed=0, scale=SCALE)
    return root


def test_pickle_round_trip_vectors_and_sequences(tmp_path):
    rng = np.random.default_rng(0)
    vectors = [rng.standard_normal(7).astype(np.float32) for _ in range(3)]
    write_class_pickle(tmp_path / "a" / "Cls.pkl", ["v1", "v2", "v3"], vectors)
    names, got = read_class_pickle(tmp_path / "a" / "Cls.pkl", "audio")
    assert names == ["v1", "v2", "v3"]
    assert all(np.array_equal(a, b) and b.dtype == np.float32 for a, b in zip(vectors, got))
    seqs = [rng.standard_normal((t, 5)).astype(np.float32) for t in (2, 4)]
    write_class_pickle(tmp_path / "Seq.pkl", ["x", "y"], seqs, fps=[25, 25])
    _, got = read_class_pickle(tmp_path / "Seq.pkl", "video")
    assert [g.shape for g in got] == [(2, 5), (4, 5)]
    # the authors' writer stores the ids as bytes
    with open(tmp_path / "b.pkl", "wb") as f:
        pickle.dump({"features": vectors[:1], "video_names": [b"vid"], "fps": [25]}, f)
    assert read_class_pickle(tmp_path / "b.pkl", "audio")[0] == ["vid"]


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("payload, expected", [
    ({"features": [np.zeros(3)], "video_names": ["a", "b"]}, "1 feature entries but 2"),
    ({"features": [np.zeros(3), np.zeros(4)], "video_names": ["a", "b"]}, "has rank 1 and width 3"),
    ({"features": [np.array([np.nan, 0.0])], "video_names": ["a"]}, "NaN or Inf"),
    ({"video_names": ["a"]}, "missing key"),
    ({"features": [_Evil()], "video_names": ["a"]}, "refusing to load"),
])
def test_pickle_reader_rejects_bad_files(tmp_path, payload, expected):
    path = tmp_path / "Bad.pkl"
    with open(path, "wb") as f:
        pickle.dump(payload, f)
    with pytest.raises(BenchmarkError, match=expected) as e:
        read_class_pickle(path, "audio")
    assert str(path) in str(e.value)


def test_synth_clip_clap_layout_and_text_halves(clip_root):
    layout = Layout(clip_root, "UCF", "clip_clap")
    assert layout.features_dir.name == "cls_features_non_averaged"
    assert [p.name for p, _ in layout.embedding_files] == [
        "word_embeddings_ucf_normed.npy", "wavcaps_word_embeddings_ucf_normed.npy"]
    assert (layout.class_split_dir / "ucf_clip_class_names.csv").is_file()
    assert sorted(os.listdir(layout.stage_dir("audio", "stage_1_train")))[0].endswith(".pkl")
    bench = load_benchmark(clip_root, "UCF", "clip_clap")
    fs = FEATURE_SETS["clip_clap"]
    for split in bench.splits.values():
        assert split.audio.shape[1] == fs.audio_dim == 1024
        assert split.video.shape[1] == fs.video_dim == 512
    emb = bench.label_embeddings
    assert emb.shape == (101, 1536) and emb.dtype == np.float32
    clip, clap = emb[:, :512], emb[:, 512:]
    np.testing.assert_allclose(np.linalg.norm(clip, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(clap, axis=1), 1.0, atol=1e-5)
    # partly redundant: the class-similarity structures of the halves agree, not fully
    iu = np.triu_indices(len(emb), 1)
    r = np.corrcoef((clip @ clip.T)[iu], (clap @ clap.T)[iu])[0, 1]
    assert 0.3 < r < 0.95, r
    # the same stage-1 classes and counts as the real cls split
    assert len(bench.splits["stage_1_train"].class_ids) == 30
    assert len(bench.splits["stage_2_test_unseen"].class_ids) == 6


def test_synth_clip_clap_is_repeatable(tmp_path, real_splits):
    dirs = []
    for name in ("a", "b"):
        dirs.append(synthesize(tmp_path / name, dataset="UCF", feature_set="clip_clap",
                               splits=real_splits, seed=3, scale=0.02))
    for dirpath, _, files in os.walk(dirs[0]):
        for f in files:
            p = os.path.join(dirpath, f)
            q = os.path.join(dirs[1], os.path.relpath(p, dirs[0]))
            with open(p, "rb") as x, open(q, "rb") as y:
                if f.endswith(".json"):
                    continue  # records the output path
                assert x.read() == y.read(), p


def test_bad_pickle_width_names_file_and_class(clip_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(clip_root, root)
    layout = Layout(root, "UCF", "clip_clap")
    folder = layout.stage_dir("audio", "stage_1_val_seen")
    path = folder / sorted(os.listdir(folder))[0]
    names, feats = read_class_pickle(path, "audio")
    write_class_pickle(path, names, [f[:1000] for f in feats])
    with pytest.raises(BenchmarkError, match="expected one vector of 1024") as e:
        load_benchmark(root, "UCF", "clip_clap")
    assert str(path) in str(e.value) and path.stem in str(e.value)
    # a missing CLAP text file is named
    os.remove(layout.embedding_files[1][0])
    with pytest.raises(BenchmarkError, match="wavcaps_word_embeddings_ucf_normed.npy"):
        load_benchmark(root, "UCF", "clip_clap")


def test_cli_inspect_and_ingest(clip_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(__import__("pathlib").Path(__file__).resolve().parent.parent),
         os.environ.get("PYTHONPATH", "")])}
    avca = [sys.executable, "-m", "avca_tf.cli"]
    out = subprocess.run(avca + ["inspect", str(clip_root), "--dataset", "UCF",
                                 "--features", "clip_clap"], capture_output=True, text=True,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert "1024" in out.stdout and "1536" in out.stdout
    bad = subprocess.run(avca + ["inspect", str(tmp_path), "--dataset", "UCF",
                                 "--features", "clip_clap"], capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    from avca_tf.beam.ingest import run_ingest
    from avca_tf.data.formats.tfrecord_input import load_benchmark_from_tfrecords
    run_ingest(str(clip_root), "UCF", "clip_clap", str(tmp_path / "tfrec"))
    got = load_benchmark_from_tfrecords(str(tmp_path / "tfrec"))
    ref = load_benchmark(clip_root, "UCF", "clip_clap")
    from conftest import assert_same_splits
    assert_same_splits(ref, got)
    assert np.array_equal(ref.label_embeddings, got.label_embeddings)
