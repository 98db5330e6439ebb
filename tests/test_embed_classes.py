"""`avca embed-classes` (avca_tf/beam/embed_classes.py): real Beam DirectRunner jobs."""
import json
import os
import shutil

import numpy as np
import pytest

from avca_tf import cli
from avca_tf.data.formats.benchmark import DATASETS, Layout, read_embedding_dict, read_name_list, read_name_mapping
from avca_tf.data.synthesis.synth import synthesize, toy_word_vectors_path
from avca_tf.data.formats.tfrecord_input import read_class_embeddings
from avca_tf.beam.beam_io import PipelineError
from avca_tf.beam.embed_classes import run_embed_classes

NPY = {"UCF": "word_embeddings_ucf_normed.npy", "ActivityNet": "word_embeddings_activity_normed.npy",
       "VGGSound": "word_embeddings_vggsound_normed.npy"}


def _published(shared, dataset):
    """class name -> the published vector, through the csv mapping."""
    split_dir = shared / dataset / "class-split"
    names = sorted(read_name_list(split_dir / "all_class.txt"))
    mapping = read_name_mapping(split_dir / DATASETS[dataset].names_csv)
    vectors = read_embedding_dict(shared / "w2v_features" / NPY[dataset])
    return names, np.stack([np.asarray(vectors[mapping[n.lower()]], np.float32) for n in names])


def test_cli_ucf_npy_dict_gives_the_published_vectors(real_splits, tmp_path, capsys):
    out = tmp_path / "emb"
    rc = cli.main(["embed-classes", "--classes",
                   str(real_splits / "UCF" / "class-split" / "all_class.txt"),
                   "--vectors", str(real_splits / "w2v_features" / NPY["UCF"]),
                   "--out", str(out)])
    assert rc == 0
    assert "101 embeddings of dimension 300" in capsys.readouterr().out
    names, vectors = read_class_embeddings(str(out / "embeddings.tfrecord"))
    ref_names, ref = _published(real_splits, "UCF")
    assert names == tuple(ref_names) and len(names) == 101
    assert np.array_equal(vectors, ref)  # bit for bit
    report = json.loads((out / "report.json").read_text())
    assert report["lookup"] == "class" and report["n_classes"] == 101 and report["oov"] == {}
    by_name = {c["class_name"]: c for c in report["classes"]}
    assert by_name["CuttingInKitchen"]["source"] == "Cut Kitchen"
    assert by_name["HandstandPushups"]["tokens"] == ["handstand", "pushups"]


@pytest.mark.parametrize("dataset", ["ActivityNet", "VGGSound"])
def test_npy_dict_gives_the_published_vectors(real_splits, tmp_path, dataset):
    report = run_embed_classes(str(real_splits / dataset / "class-split" / "all_class.txt"),
                               str(real_splits / "w2v_features" / NPY[dataset]),
                               str(tmp_path / "emb"))
    names, vectors = read_class_embeddings(str(tmp_path / "emb"))
    ref_names, ref = _published(real_splits, dataset)
    assert names == tuple(ref_names) and report["n_classes"] == len(ref_names)
    assert np.array_equal(vectors, ref)


def test_class_dict_without_mapping_matches_normalised_names(real_splits, tmp_path):
    """Without the csv, keys are found by normalised name; reworded classes are listed."""
    classes = tmp_path / "all_class.txt"
    shutil.copy(real_splits / "UCF" / "class-split" / "all_class.txt", classes)
    out = tmp_path / "emb"
    with pytest.raises(PipelineError) as e:
        run_embed_classes(str(classes), str(real_splits / "w2v_features" / NPY["UCF"]), str(out))
    msg = str(e.value)
    assert "3 of 101 classes" in msg and "nothing was written" in msg
    for cls in ("CleanAndJerk", "CuttingInKitchen", "WalkingWithDog"):
        assert f"  {cls}: no key matches" in msg
    assert "BodyWeightSquats" not in msg  # 'Bodyweight Squats' matches without spaces
    assert os.listdir(tmp_path) == ["all_class.txt"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_emb")
    synthesize(root, seed=3, scale=0.02)
    return root


def test_word_vectors_average_and_report_oov(toy, tmp_path):
    layout = Layout(toy, "Toy", "main_features")
    names = sorted(read_name_list(layout.all_class_file))
    # a name with one unknown token: averaged over the known ones, reported as OOV
    head = names[0]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(names + [head + "Quuxly"]) + "\n")
    report = run_embed_classes(str(classes), str(toy_word_vectors_path(toy)), str(tmp_path / "emb"),
                               beam_args=["--runner=DirectRunner"])
    assert report["lookup"] == "word" and report["normalised"]
    assert report["oov"] == {head + "Quuxly": ["quuxly"]} and report["oov_tokens"] == ["quuxly"]
    got_names, got = read_class_embeddings(str(tmp_path / "emb"))
    assert got_names == tuple(sorted(names + [head + "Quuxly"]))
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)
    # the toy's published label embedding of each class is the normalised mean of its words
    mapping = read_name_mapping(layout.names_csv)
    published = read_embedding_dict(layout.embeddings_file)
    row = dict(zip(got_names, got))
    for n in names:
        np.testing.assert_allclose(row[n], published[mapping[n.lower()]], atol=2e-7)
    np.testing.assert_array_equal(row[head + "Quuxly"], row[head])


def test_classes_without_known_tokens_fail_listing_them(toy, tmp_path, capsys):
    names = sorted(read_name_list(Layout(toy, "Toy", "main_features").all_class_file))
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(names[:3] + ["QuuxlyZorp", "zorp_quuxly"]) + "\n")
    out = tmp_path / "emb"
    rc = cli.main(["embed-classes", "--classes", str(classes), "--vectors",
                   str(toy_word_vectors_path(toy)), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "2 of 5 classes" in err
    assert "QuuxlyZorp: no known token in ['quuxly', 'zorp']" in err
    assert "zorp_quuxly: no known token in ['zorp', 'quuxly']" in err
    assert sorted(os.listdir(tmp_path)) == ["classes.txt"]


def test_load_word_vectors_text_formats(tmp_path):
    from avca_tf.data.text.word_vectors import WordVectorError, load_word_vectors
    body = "cat 1 0 0\ndog 0 1.5 0\ncat 9 9 9\nbird 0 0 -2\n"
    glove = tmp_path / "g.txt"
    glove.write_text(body)
    w2v = tmp_path / "w.vec"
    w2v.write_text("4 3\n" + body)
    for path in (glove, w2v):
        words, vectors = load_word_vectors(str(path))
        assert words == ["cat", "dog", "bird"]  # first occurrence wins
        assert vectors.dtype == np.float32
        np.testing.assert_array_equal(vectors[0], [1, 0, 0])
    assert load_word_vectors(str(w2v), max_words=2)[0] == ["cat", "dog"]
    words, vectors = load_word_vectors(str(glove), vocabulary={"bird", "fish"})
    assert words == ["bird"] and vectors.shape == (1, 3)
    bad = tmp_path / "bad.txt"
    bad.write_text("cat 1 0 0\ndog 0 1\n")
    with pytest.raises(WordVectorError, match=r"bad.txt: line 2 \('dog'\): expected a vector of 3"):
        load_word_vectors(str(bad))
    bad.write_text("3 3\ncat 1 0\n")
    with pytest.raises(WordVectorError, match="line 2 .*header says 3 values"):
        load_word_vectors(str(bad))
    bad.write_text("cat 1 zero 0\n")
    with pytest.raises(WordVectorError, match="line 1: expected `word` followed by numbers"):
        load_word_vectors(str(bad))
    with pytest.raises(WordVectorError, match="not found"):
        load_word_vectors(str(tmp_path / "missing.txt"))


def test_load_word_vectors_npy_dict(real_splits, tmp_path):
    from avca_tf.data.text.word_vectors import WordVectorError, load_word_vectors
    words, vectors = load_word_vectors(str(real_splits / "w2v_features" / NPY["UCF"]))
    published = read_embedding_dict(real_splits / "w2v_features" / NPY["UCF"])
    assert words == list(published) and vectors.shape == (101, 300)
    assert all(np.array_equal(v, published[w]) for w, v in zip(words, vectors))
    arr = tmp_path / "plain.npy"
    np.save(arr, np.zeros((2, 3)))
    with pytest.raises(WordVectorError, match="expected a pickled dict"):
        load_word_vectors(str(arr))
