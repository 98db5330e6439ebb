"""`avca extract` (avca_tf/beam/extract.py) on the media toy: the published layouts it
writes, DirectRunner vs PortableRunner, bad inputs, the encoders' loading routes, and
the media toy end to end (extract -> train)."""
import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_portable_runner import portable_services  # noqa: F401  (fixture)

from avca_tf import cli

SCALE = 1.0


@pytest.fixture(scope="module")
def media_toy(tmp_path_factory):
    from avca_tf.media.toy import synthesize_media
    root = tmp_path_factory.mktemp("media_toy")
    synthesize_media(root, seed=0, scale=SCALE)
    return root


def _encoder_flags(toy):
    return ["--image-encoder", str(toy / "Toy" / "encoders" / "clip"),
            "--audio-encoder", str(toy / "Toy" / "encoders" / "whisper")]


@pytest.fixture(scope="module")
def extracted(media_toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("extracted") / "feats"
    assert cli.main(["extract", "--dataset", "Toy", "--videos", str(media_toy / "Toy" / "videos"),
                     "--splits", str(media_toy), "--out", str(out)] + _encoder_flags(media_toy)
                    + ["--", "--direct_running_mode=in_memory"]) == 0
    return out


def test_extract_writes_both_layouts_and_a_report(extracted, media_toy):
    from avca_tf.data.formats.benchmark import load_benchmark
    from avca_tf.data.formats.pickle_features import read_class_pickle
    from avca_tf.data.formats.temporal import load_temporal_benchmark
    report = json.loads((extracted / "report.json").read_text())
    clips = sorted((media_toy / "Toy" / "videos").rglob("*.mp4"))
    assert report["videos"] == len(clips) and report["skipped"] == [] == report["unlisted"]
    assert report["windows"] == 2 * len(clips)  # 2.0-2.5 s clips, 1 s windows
    bench = load_benchmark(extracted, "Toy", "main_features")
    tbench = load_temporal_benchmark(extracted, "Toy", "main_features")
    for stage, split in bench.splits.items():
        assert len(split) == report["stages"][stage]["videos"] > 0
        assert split.audio.shape[1] == split.video.shape[1] == 512
        if stage != "stage_2_train":
            assert len(tbench.splits[stage]) == len(split)
    # the averaged layout is the mean of the per-window sequences
    cls = bench.class_names[bench.splits["stage_1_train"].labels[0]]
    ids, seqs = read_class_pickle(extracted / "Toy" / "features" / "main_features_non_averaged"
                                  / "video" / "stage_1_train" / f"{cls}.pkl", "video")
    split = bench.splits["stage_1_train"]
    row = list(split.video_ids).index(ids[0])
    np.testing.assert_array_equal(split.video[row], seqs[0].mean(axis=0))
    # stage 2 trains on the stage-1 videos
    assert sorted(bench.splits["stage_2_train"].video_ids) == sorted(
        v for s in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")
        for v in bench.splits[s].video_ids)
    meta = json.loads((extracted / "Toy" / "extract_main_features.json").read_text())
    assert meta["encoders"]["image"]["class"] == "CLIPBackbone"
    assert meta["encoders"]["audio"]["class"] == "WhisperBackbone"


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "class", "stage"])
        w.writerows(rows)
    return str(path)


def _good_rows(toy, n_per_stage=2):
    """(path, class, stage) of a few toy clips from the stage csvs."""
    rows = []
    split = toy / "Toy" / "class-split" / "main_split"
    for stage in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen",
                  "stage_2_test_seen", "stage_2_test_unseen"):
        with open(split / f"{stage}.csv") as f:
            for r in list(csv.DictReader(f))[:n_per_stage]:
                rows.append([str(toy / "Toy" / "videos" / r["label"] / f"{r['filename']}.mp4"),
                             r["label"], stage])
    return rows


def test_portable_runner_extracts_the_same_features(portable_services, media_toy,  # noqa: F811
                                                    tmp_path):
    job, pool = portable_services
    table = _write_csv(tmp_path / "clips.csv", _good_rows(media_toy, 1))
    base = ["extract", "--dataset", "Toy", "--csv", table, "--splits", str(media_toy)] \
        + _encoder_flags(media_toy)
    assert cli.main(base + ["--out", str(tmp_path / "portable"), "--", "--runner=PortableRunner",
                            f"--job_endpoint={job}", "--environment_type=EXTERNAL",
                            f"--environment_config={pool}"]) == 0
    assert cli.main(base + ["--out", str(tmp_path / "direct"), "--",
                            "--direct_running_mode=in_memory"]) == 0
    files = sorted(p.relative_to(tmp_path / "direct") for p in (tmp_path / "direct").rglob("*")
                   if p.is_file())
    assert any(str(f).endswith(".h5") for f in files) and any(str(f).endswith(".pkl")
                                                              for f in files)
    for rel in files:
        assert (tmp_path / "portable" / rel).read_bytes() == (tmp_path / "direct" / rel)\
            .read_bytes(), rel


def test_bad_inputs_are_named_and_skipped_or_refused(media_toy, tmp_path, capsys):
    from avca_tf.media.write import write_clip
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (20, 64, 64, 3), dtype=np.uint8)
    t = np.arange(40000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.mp4").write_bytes(rng.bytes(4000))
    (bad / "empty.mp4").write_bytes(b"")
    write_clip(bad / "noaudio.mp4", frames, None)
    write_clip(bad / "novideo.mp4", None, audio)
    write_clip(bad / "oneframe.mp4", frames[:1], audio)
    write_clip(bad / "huge.mp4", rng.integers(0, 255, (20, 96, 96, 3), dtype=np.uint8), audio)
    write_clip(bad / "rate.avi", frames, audio[:30000], sample_rate=12000)
    write_clip(bad / "vfr.mp4", frames[:12], audio,
               frame_times=[0, .1, .15, .5, .9, 1.0, 1.3, 1.35, 1.8, 2.0, 2.2, 2.4])
    reasons = {"corrupt.mp4": "not a readable media file", "empty.mp4": "not a readable",
               "noaudio.mp4": "no audio stream", "novideo.mp4": "no video stream",
               "oneframe.mp4": "1 frame(s)", "huge.mp4": "resolution 96x96 is above the limit",
               "rate.avi": "sample rate not supported", "missing.mp4": "no such file"}
    good = _good_rows(media_toy, 1)
    cls = good[0][1]
    rows = good + [[str(bad / n), cls, "stage_1_train"] for n in reasons] \
        + [[str(bad / "vfr.mp4"), cls, "stage_1_train"]]
    table = _write_csv(tmp_path / "clips.csv", rows)
    base = ["extract", "--dataset", "Toy", "--csv", table, "--splits", str(media_toy),
            "--max-pixels", str(64 * 64)] + _encoder_flags(media_toy)
    direct = ["--", "--direct_running_mode=in_memory"]
    capsys.readouterr()
    assert cli.main(base + ["--out", str(tmp_path / "refused")] + direct) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "8 input file(s) cannot be used" in err
    for name in reasons:
        assert name in err, name
    assert not (tmp_path / "refused").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".refused")]

    assert cli.main(base + ["--out", str(tmp_path / "skipped"), "--skip-invalid"] + direct) == 0
    report = json.loads((tmp_path / "skipped" / "report.json").read_text())
    skipped = {os.path.basename(r["path"]): r["reason"] for r in report["skipped"]}
    assert sorted(skipped) == sorted(reasons)
    for name, why in reasons.items():
        assert why in skipped[name] and name in skipped[name], (name, skipped[name])
    assert report["videos"] == len(good) + 1  # the variable-frame-rate clip is extracted
    from avca_tf.data.formats.benchmark import load_benchmark
    bench = load_benchmark(tmp_path / "skipped", "Toy", "main_features")
    assert "vfr" in set(bench.splits["stage_1_train"].video_ids)


def test_encoder_routes_savedmodel_audio_and_other_image_backbones(tmp_path):
    import keras
    import keras_hub
    import tensorflow as tf

    from avca_tf.media.encoders import AudioTower, EncoderError, ImageTower
    # a waveform SavedModel (the CLAP / VGGish / YAMNet route)
    module = tf.Module()
    module.proj = tf.Variable(np.random.default_rng(0).standard_normal((257, 24)), dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
    def serve(waveform):
        spec = tf.abs(tf.signal.stft(waveform, 400, 160))
        return {"embedding": tf.reduce_mean(spec, axis=1) @ module.proj}

    module.serve = serve
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": serve})
    tower = AudioTower.from_savedmodel(str(tmp_path / "sm"), 16000)
    assert tower.dim == 24 and tower.identity()["kind"] == "savedmodel"
    assert tower(tf.zeros([3, 16000])).shape == (3, 24)
    with pytest.raises(EncoderError, match="not a loadable SavedModel"):
        AudioTower.from_savedmodel(str(tmp_path / "nothing"))
    # any keras-hub image backbone: its feature map averaged, its converter's transform
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=(32, 32, 3))
    backbone.save_to_preset(str(tmp_path / "resnet"))
    keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0)\
        .save_to_preset(str(tmp_path / "resnet"))
    image = ImageTower.from_preset(str(tmp_path / "resnet"))
    assert image.dim == 16 and image.transform.image_size == (32, 32)
    assert image(tf.zeros([5, 32, 32, 3])).shape == (5, 16)
    assert len(image.identity()["digest"]) == 64
    with pytest.raises(EncoderError, match="cannot load the image encoder preset"):
        ImageTower.from_preset(str(tmp_path / "nothing"))


@pytest.fixture(scope="module")
def media_run(extracted, tmp_path_factory):
    run = tmp_path_factory.mktemp("media_run") / "run"
    assert cli.main(["train", "--root", str(extracted), "--dataset", "Toy", "--out", str(run),
                     "--preset", "toy", "--epochs", "2", "--n-batches", "20", "--seed", "0",
                     "-q"]) == 0
    return run


def test_media_toy_end_to_end_unseen_above_chance(media_run):
    """Trained on the features extracted from the seen classes' clips, the model names
    clips of unseen classes from their word vectors (seed 0, the toy schedule cut to 2
    epochs of 20 batches: S 96.67 U 33.33 ZSL 66.67 on AMD EPYC, as the full one)."""
    test = json.loads((media_run / "results.json").read_text())["test"]
    # chance: 1 / 3 test-unseen classes (ZSL), 1 / 15 candidate classes (U)
    assert test["ZSL"] > 1 / 3 + 0.2 and test["U"] > 1 / 15 + 0.2, test


SKEW_SCRIPT = """
import importlib.util, json, sys
import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401  (classify_open's ops)
from avca_tf.data.formats.benchmark import load_benchmark
export, root, videos, client_path = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("avca_request", client_path)
client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client)
sm = tf.saved_model.load(export)
bench = load_benchmark(root, "Toy", "main_features")
split, classes = bench.splits["stage_2_test_unseen"], bench.class_names
out = {}


def call(req):  # what TF Serving does with a PredictRequest
    body = client.request_to_rest(req)[1]
    json.dumps(body)
    feeds = {k: tf.constant(tf.make_ndarray(v)) for k, v in req.inputs.items()}
    return sm.signatures[req.model_spec.signature_name](**feeds)


for row in (0, len(split) - 1):
    path = f"{videos}/{classes[split.labels[row]]}/{split.video_ids[row]}.mp4"
    ref = sm.signatures["serving_default"](audio=tf.constant(split.audio[row:row + 1]),
                                           video=tf.constant(split.video[row:row + 1]))
    for fmt, wav in (("png", False), ("png", True), ("jpeg", False)):
        got = call(client.build_media_request("avca", path, wav=wav, image_format=fmt))
        key = f"{fmt}/{'wav' if wav else 'float'}"
        diff = float(np.abs(got["scores"].numpy() - ref["scores"].numpy()).max())
        out[key] = max(out.get(key, 0.0), diff)
        out[key + "/same_top1"] = out.get(key + "/same_top1", True) and bool(
            got["classes"].numpy()[0, 0] == ref["classes"].numpy()[0, 0])
    out["score_scale"] = float(np.abs(ref["scores"].numpy()).max())
    opened = call(client.build_media_request("avca", path, class_names=list(classes[:3])))
    out["open_shape"] = list(opened["scores"].shape)
print("RESULT " + json.dumps(out))
"""


def test_served_media_request_equals_extracted_features(media_run, extracted, media_toy,
                                                        tmp_path):
    """The same file through `serving_media` (PNG frames, float or WAV audio; the request
    built by deploy/avca_request.py) and through `avca extract` + `serving_default` gives
    the same scores, in a fresh process."""
    import subprocess
    import sys
    serving = tmp_path / "serving"
    assert cli.main(["export", str(media_run), "--out", str(serving), "--media"]) == 0
    info = json.loads((serving / "avca" / "1" / "assets.extra" / "avca_export.json").read_text())
    assert {"serving_media", "serving_media_wav", "classify_open_media"} <= set(
        info["signatures"])
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent),
               TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", SKEW_SCRIPT, str(serving / "avca" / "1"),
                           str(extracted), str(media_toy / "Toy" / "videos"),
                           str(Path(__file__).resolve().parent.parent / "deploy" /
                               "avca_request.py")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    # PNG frames are lossless and WAV carries the 16-bit samples the preprocessing keeps:
    # the served features are the extracted ones
    assert out["png/float"] <= 1e-5 and out["png/wav"] <= 1e-5, out
    assert out["png/float/same_top1"] and out["png/wav/same_top1"]
    # JPEG (quality 95) changes the pixels: scores move by a few percent of their scale
    assert out["jpeg/float"] <= 0.05 * out["score_scale"], out
    assert out["open_shape"] == [1, 3]


def test_sequence_model_served_media_equals_its_extracted_sequences(extracted, media_toy,
                                                                     tmp_path):
    """A sequence model (TCaF) trained on the per-window layout: serving_media builds the
    padded per-window sequences in the graph, equal to the extracted ones."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (classify_open's ops)

    from avca_tf.data.formats.pickle_features import read_class_pickle
    from avca_tf.media.preprocess import MediaSpec
    from avca_tf.media.serving import media_request
    run, serving = tmp_path / "run", tmp_path / "serving"
    assert cli.main(["train", "--root", str(extracted), "--dataset", "Toy", "--model", "tcaf",
                     "--quick", "--out", str(run), "-q"]) == 0
    assert cli.main(["export", str(run), "--out", str(serving), "--media"]) == 0
    sm = tf.saved_model.load(str(serving / "avca" / "1"))
    seq = extracted / "Toy" / "features" / "main_features_non_averaged"
    pkl = sorted((seq / "audio" / "stage_2_test_unseen").glob("*.pkl"))[0]
    ids, audio = read_class_pickle(pkl, "audio")
    _, video = read_class_pickle(seq / "video" / "stage_2_test_unseen" / pkl.name, "video")
    ref = sm.signatures["serving_default"](
        audio=tf.constant(audio[0][None]), audio_lengths=tf.constant([len(audio[0])], tf.int64),
        video=tf.constant(video[0][None]), video_lengths=tf.constant([len(video[0])], tf.int64))
    clip = media_toy / "Toy" / "videos" / pkl.stem / f"{ids[0]}.mp4"
    req = media_request(str(clip), MediaSpec())
    got = sm.signatures["serving_media"](**{k: tf.constant(v.tolist() if v.dtype == object
                                                           else v) for k, v in req.items()})
    np.testing.assert_allclose(got["scores"].numpy(), ref["scores"].numpy(), atol=1e-5)
    assert got["classes"].numpy().tolist() == ref["classes"].numpy().tolist()


def test_pipeline_run_media_extracts_first_and_caches(media_toy, tmp_path, capsys):
    """`avca pipeline run --media DIR`: extraction -> ingestion -> ... -> push; a second run
    takes every step from the cache; the extraction's cache key holds the code version and
    the encoders' file digests."""
    import re
    toy = media_toy / "Toy"
    argv = ["pipeline", "run", "--media", str(toy / "videos"), "--root", str(media_toy),
            "--dataset", "Toy", "--work-dir", str(tmp_path / "work"), "--epochs", "1",
            "--n-batches", "5"] + _encoder_flags(media_toy)
    states = []
    for _ in range(2):
        capsys.readouterr()
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        states.append(dict(re.findall(r"^\s+(\w+)\s+(ran|from cache)\s", out, re.M)))
    assert states[0]["FeatureExtraction"] == "ran" and states[0]["Pusher"] == "ran"
    for step in ("FeatureExtraction", "FeatureIngestion", "ClassEmbeddingGen", "AvcaTrainer"):
        assert states[1][step] == "from cache", (step, states[1])

    from avca_tf.media.encoders import preset_digest
    from pipelines.pipeline_config import DataSource, PipelineConfig
    from pipelines.tfx_pipeline import code_version, media_extraction
    cfg = PipelineConfig(
        data=DataSource(root=str(media_toy), dataset="Toy", media=str(toy / "videos"),
                        image_encoder=str(toy / "encoders" / "clip"),
                        audio_encoder=str(toy / "encoders" / "whisper")),
        pipeline_root=str(tmp_path / "p"), serving_dir=str(tmp_path / "s"))
    props = media_extraction(cfg, code_version(), "fp").exec_properties
    assert props["code_version"] == code_version()
    identity = json.loads(props["encoder_identity"])
    assert identity["image_preset"]["digest"] == preset_digest(str(toy / "encoders" / "clip"))
    assert identity["audio_preset"]["digest"] == preset_digest(str(toy / "encoders" / "whisper"))
