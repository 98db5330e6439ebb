"""tensorflow-text class-name normalisation (avca_tf/data/text/normalize.py)."""
import csv
import os
import re
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from avca_tf.data.text.normalize import class_name_tokens, normalize_class_names, normalized_strings

from avca_tf.data.synthesis.synth import PACKAGED_SPLITS

SHARED = str(PACKAGED_SPLITS)
MAPPINGS = {"UCF": "ucf", "ActivityNet": "activitynet", "VGGSound": "vggsound"}


def _real_classes(dataset):
    path = os.path.join(SHARED, dataset, "class-split", "all_class.txt")
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def _mapping(dataset):
    name = f"{MAPPINGS[dataset]}_w2v_class_names.csv"
    with open(os.path.join(SHARED, dataset, "class-split", name), newline="") as f:
        return {row["original"]: row["manual"] for row in csv.DictReader(f)}


@pytest.mark.parametrize("name, expected", [
    ("HandStandPushups", "hand stand pushups"),
    ("HandstandPushups", "handstand pushups"),
    ("ApplyEyeMakeup", "apply eye makeup"),
    ("BMX", "bmx"),
    ("BMXRace", "bmx race"),
    ("MP3Player", "mp3 player"),
    ("YoYo", "yo yo"),
    ("Blow-dryinghair", "blow dryinghair"),
    ("bird chirping, tweeting", "bird chirping tweeting"),
    ("police car (siren)", "police car siren"),
    ("snake_case__Name", "snake case name"),
    ("  Straße\tÉCOLE  ", "strasse école"),
    ("ﬁsh", "fish"),  # NFKC ligature
])
def test_examples(name, expected):
    assert normalized_strings([name]) == [expected]


def test_ragged_shape_and_empty_name():
    tokens = normalize_class_names(tf.constant(["PlayingCello", "", "a_b c"]))
    assert isinstance(tokens, tf.RaggedTensor)
    assert tokens.to_list() == [[b"playing", b"cello"], [], [b"a", b"b", b"c"]]
    assert class_name_tokens([]) == [] and normalized_strings([]) == []


@pytest.mark.parametrize("dataset, n_classes", [("UCF", 101), ("ActivityNet", 200), ("VGGSound", 309)])
def test_all_real_class_names(dataset, n_classes):
    names = _real_classes(dataset)
    assert len(names) == n_classes
    tokens = class_name_tokens(names)
    for name, toks in zip(names, tokens):
        assert toks, name
        for t in toks:
            assert re.fullmatch(r"[a-z0-9]+", t), (name, t)
        # nothing but separators is lost: letters and digits survive in order
        assert "".join(toks) == re.sub(r"[^a-z0-9]", "", name.lower()), name
    # manual names (the embedding dict's keys) tokenise the same way
    manual = _mapping(dataset)
    assert set(manual) == set(names)


def test_ucf_original_and_manual_names_agree_except_known_rewordings():
    names = _real_classes("UCF")
    manual = _mapping("UCF")
    orig = normalized_strings(names)
    man = normalized_strings([manual[n] for n in names])
    differ = {n for n, a, b in zip(names, orig, man) if a != b}
    # the published manual names reword these seven classes
    assert differ == {"BodyWeightSquats", "CleanAndJerk", "CuttingInKitchen", "PullUps",
                      "PushUps", "TaiChi", "WalkingWithDog"}
    assert dict(zip(names, orig))["HandstandPushups"] == "handstand pushups"


def test_graph_mode_and_savedmodel_in_fresh_process(tmp_path):
    class Normaliser(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, names):
            return normalize_class_names(names).to_tensor(default_value="")

    export = str(tmp_path / "normaliser")
    tf.saved_model.save(Normaliser(), export)
    script = textwrap.dedent(f"""
        import tensorflow as tf
        import tensorflow_text  # registers the kernels the SavedModel uses
        m = tf.saved_model.load({export!r})
        out = m(tf.constant(["HandStandPushups", "bird chirping, tweeting"]))
        print("|".join(" ".join(t.decode() for t in row if t) for row in out.numpy()))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "hand stand pushups|bird chirping tweeting"
