"""Text encoders, `avca embed-classes --clip/--clap` and the ClipClap SavedModel whose
classify_open embeds class names with the exported encoders (small random encoders)."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from avca_tf.safe_load import load_npy
import pytest
import tensorflow as tf

from avca_tf.data.formats.benchmark import Layout, load_benchmark
from avca_tf.data.synthesis.synth import FeatureModel, synthesize
from avca_tf.data.text.encoders import (KerasHubCLIPText, PromptEnsembleEncoder, SavedModelText,
                                        TextEncoderError, WordAverageEncoder, clip_clap_encoder)
from tiny_text_encoders import tiny_clap_savedmodel, tiny_clip_preset

pytest.importorskip("keras_hub")
REPO = Path(__file__).resolve().parent.parent
CLIP_PROMPTS = ("a video of {}.", "{}")
CLAP_PROMPTS = ("the sound of {}.", "{}")


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    d = tmp_path_factory.mktemp("encoders")
    return tiny_clip_preset(d / "clip"), tiny_clap_savedmodel(d / "clap")


@pytest.fixture(scope="module")
def encoder(encoders):
    return clip_clap_encoder(*encoders, clip_prompts=CLIP_PROMPTS, clap_prompts=CLAP_PROMPTS)


def test_prompt_ensemble_is_the_normalised_mean_of_normalised_prompts(encoders, encoder):
    names = ["Apply Eye Makeup", "Playing Cello"]
    got = encoder.encode(names)
    assert got.shape == (2, 1536) and got.dtype == np.float32
    clip = KerasHubCLIPText.from_preset(encoders[0])
    clap = SavedModelText(encoders[1])
    expected = []
    for model, prompts in ((clip, CLIP_PROMPTS), (clap, CLAP_PROMPTS)):
        per = []
        for p in prompts:
            v = np.asarray(model(tf.constant([p.format(n) for n in names])))
            per.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        m = np.mean(per, axis=0)
        expected.append(m / np.linalg.norm(m, axis=1, keepdims=True))
    np.testing.assert_allclose(got, np.concatenate(expected, axis=1), atol=1e-5)
    # the vector depends on the name
    assert not np.allclose(got[0], got[1], atol=1e-3)


def test_word_average_encoder_wraps_the_word_vectors(toy_root):
    from avca_tf.data.synthesis.synth import toy_word_vectors_path
    bench = load_benchmark(toy_root, "Toy", "main_features")
    enc = WordAverageEncoder.load(str(toy_word_vectors_path(toy_root)))
    np.testing.assert_allclose(enc.encode(bench.class_names[:5]), bench.label_embeddings[:5],
                               atol=1e-6)
    with pytest.raises(TextEncoderError, match="no token"):
        enc.encode(["qqqq xxxx"])


def test_bad_encoder_inputs_are_named(tmp_path, encoders):
    with pytest.raises(TextEncoderError, match="not a loadable SavedModel"):
        SavedModelText(str(tmp_path))
    with pytest.raises(TextEncoderError, match="exactly one"):
        PromptEnsembleEncoder(lambda s: s, ["no slot"], 4)
    with pytest.raises(TextEncoderError, match="cannot load the CLIP preset"):
        KerasHubCLIPText.from_preset(str(tmp_path / "nothing"))


def test_embed_classes_job_writes_the_clip_clap_text_files(encoders, encoder, tmp_path):
    from avca_tf import cli
    classes = tmp_path / "all_class.txt"
    classes.write_text("PlayingCello\nApplyEyeMakeup\n")
    (tmp_path / "ucf_clip_class_names.csv").write_text(
        "original,manual,clip_class_name\nPlayingCello,Playing Cello,Playing Cello\n"
        "ApplyEyeMakeup,Apply Eye Makeup,Apply Eye Makeup\n")
    (tmp_path / "clip.txt").write_text("\n".join(CLIP_PROMPTS) + "\n")
    (tmp_path / "clap.txt").write_text("\n".join(CLAP_PROMPTS) + "\n")
    out = tmp_path / "text"
    assert cli.main(["embed-classes", "--classes", str(classes), "--dataset", "UCF",
                     "--clip", encoders[0], "--clap", encoders[1], "--out", str(out),
                     "--clip-prompts", str(tmp_path / "clip.txt"),
                     "--clap-prompts", str(tmp_path / "clap.txt")]) == 0
    clip = load_npy(out / "word_embeddings_ucf_normed.npy")
    clap = load_npy(out / "wavcaps_word_embeddings_ucf_normed.npy")
    assert sorted(clip) == sorted(clap) == ["Apply Eye Makeup", "Playing Cello"]
    expected = encoder.encode(["Apply Eye Makeup"])[0]
    np.testing.assert_allclose(np.concatenate([clip["Apply Eye Makeup"],
                                               clap["Apply Eye Makeup"]]), expected, atol=1e-5)
    report = json.loads((out / "report.json").read_text())
    assert report["clip"]["prompts"] == list(CLIP_PROMPTS) and report["dim"] == 1536
    # bad prompt file: error naming it, nothing written
    (tmp_path / "bad.txt").write_text("no slot here\n")
    assert cli.main(["embed-classes", "--classes", str(classes), "--clip", encoders[0],
                     "--clap", encoders[1], "--out", str(tmp_path / "t2"),
                     "--clip-prompts", str(tmp_path / "bad.txt")]) == 2
    assert not (tmp_path / "t2").exists()


def test_served_classify_open_embeds_new_names_end_to_end(encoders, encoder, tmp_path):
    """Toy benchmark whose class vectors come from the small encoders -> train ClipClap ->
    export with the encoders -> classify_open in a process importing only tensorflow and
    tensorflow_text: equal to the eager computation; unseen classes served only by name
    score above chance; names sharing no word with any class get finite scores."""
    from avca_tf.models import get_preset
    from avca_tf.serving.export import export_run
    from avca_tf.training.protocol import load_run, run_protocol
    root = tmp_path / "bench"
    synthesize(root, feature_set="clip_clap", seed=0, scale=0.3, text_encoder=encoder,
               model=FeatureModel(noise=2.0))
    bench = load_benchmark(root, "Toy", "clip_clap")
    cfg = get_preset("clipclap", "Toy", "clip_clap", str(root))
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, epochs=2, n_batches=30, lr=1e-3))
    run_protocol(bench, cfg, str(tmp_path / "run"), verbose=0)
    version = export_run(str(tmp_path / "run"), str(tmp_path / "serving"), model_name="clipclap",
                         clip_preset=encoders[0], clap_savedmodel=encoders[1],
                         clip_prompts=CLIP_PROMPTS, clap_prompts=CLAP_PROMPTS)
    test = bench.protocol(2)
    unseen = test.eval_unseen
    manual = {o.lower(): m for o, m in _names_rows(root)}
    unseen_names = [manual[bench.class_names[i].lower()] for i in test.unseen_class_ids]
    new_names = ["zyxx quorble", "a totally new thing"]
    np.save(tmp_path / "audio.npy", unseen.audio)
    np.save(tmp_path / "video.npy", unseen.video)
    script = textwrap.dedent(f"""
        import json, sys, numpy as np, tensorflow as tf, tensorflow_text
        assert not any(m.split(".")[0] in ("keras_hub", "avca_tf") for m in sys.modules)
        fn = tf.saved_model.load({str(version)!r}).signatures["classify_open"]
        names = {json.dumps(unseen_names + new_names)}
        out = fn(audio=tf.constant(np.load({str(tmp_path / 'audio.npy')!r})),
                 video=tf.constant(np.load({str(tmp_path / 'video.npy')!r})),
                 class_names=tf.constant(names))
        np.save({str(tmp_path / 'scores.npy')!r}, out["scores"].numpy())
        a, v = tf.zeros([1, 1024]), tf.zeros([1, 512])
        for bad, message in (([""], "expected names with text, got an empty name"),
                             ([["x"]], "class_names: expected shape [num_classes]"),
                             ([b"x\\xff"], "class_names: expected UTF-8 text")):
            try:
                fn(audio=a, video=v, class_names=tf.constant(bad))
                raise SystemExit(f"accepted {{bad!r}}")
            except tf.errors.InvalidArgumentError as e:
                assert message in e.message, e.message
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    served = np.load(tmp_path / "scores.npy")
    # eager: the same computation with the run's model and the encoder objects
    run = load_run(str(tmp_path / "run"))
    emb = encoder.encode(unseen_names + new_names)
    eager = -run.model.class_distances(unseen.audio, unseen.video, emb).numpy()
    assert np.isfinite(served).all()
    np.testing.assert_allclose(served, eager, rtol=1e-4, atol=1e-4)
    # unseen classes, served only by their names, among themselves (ZSL): above chance
    pred = np.argmax(served[:, :len(unseen_names)], axis=1)
    truth = np.searchsorted(test.unseen_class_ids, unseen.labels)
    recall = np.mean([np.mean(pred[truth == k] == k) for k in range(len(unseen_names))])
    assert recall > 2.0 / len(unseen_names), recall
    info = json.loads((Path(version) / "assets.extra" / "avca_export.json").read_text())
    assert info["text_encoder"]["dim"] == 1536 and "classify_open" in info["signatures"]


def _names_rows(root):
    import csv
    layout = Layout(root, "Toy", "clip_clap")
    with open(layout.names_csv, newline="") as f:
        return [(r["original"], r[layout.name_column]) for r in csv.DictReader(f)]
