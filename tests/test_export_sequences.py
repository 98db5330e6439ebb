"""SavedModel export of a sequence model (TCaF): variable-length padded inputs + lengths.

A tiny TCaF run on the temporal toy benchmark (it ships word vectors, so all
three signatures are exported) is exported with `avca export`; a fresh
process that imports only tensorflow and tensorflow_text feeds the same test
videos with different paddings and batch companions.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from avca_tf import cli
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.data.formats.temporal import load_temporal_benchmark
from avca_tf.models import registry
from avca_tf.serving.export import load_export_info
from avca_tf.inputs import kind_of
from avca_tf.inputs.sequence import SequenceBatching
from avca_tf.training.protocol import CLASSES_FILE, MODEL_DIR, load_run, run_protocol
from avca_tf.training.trainer import DistanceFn

BETA = 0.3
N_VIDEOS = 6


@pytest.fixture(scope="module")
def seq_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_temporal")
    synthesize(root, seed=0, scale=0.05, temporal=True)
    bench = load_temporal_benchmark(root, "Toy", "main_features")
    cfg = registry.get_preset("tcaf", "Toy", "main_features").replace(
        data__root=str(root), data__dataset="Toy", model__encoder_hidden=32,
        model__decoder_hidden=32, model__depth=1, model__heads=2, model__head_dim=16,
        model__mlp_dim=16, train__epochs=1, train__n_batches=2, train__batch_size=8,
        train__eval_batch_size=16)
    run_dir = tmp_path_factory.mktemp("tcaf_run") / "run"
    run_protocol(bench, cfg, str(run_dir), verbose=0)
    classes_file = run_dir / MODEL_DIR / CLASSES_FILE  # exercise the calibration
    classes = json.loads(classes_file.read_text())
    classes["beta"] = BETA
    classes_file.write_text(json.dumps(classes))
    base = tmp_path_factory.mktemp("serving")
    assert cli.main(["export", str(run_dir), "--out", str(base), "--top-k", "3", "--keras"]) == 0
    version_dir = os.path.join(base, "avca", "1")
    run = load_run(str(run_dir))
    # reference: the in-process model's evaluation-mode distances of test videos (the
    # protocol's padded evaluation batches), calibrated like serving_default
    test = bench.protocol(2).eval_unseen
    rows = np.argsort(test.video_lengths + test.audio_lengths, kind="stable")
    videos = test.subset("videos", rows[np.linspace(0, len(rows) - 1, N_VIDEOS).astype(int)])
    ids = np.union1d(run.seen_ids, run.unseen_ids)
    batching = kind_of("tcaf").batching(run.run_config, bench)
    distances = DistanceFn(run.model, 16, batching)(videos, run.label_embeddings[ids])
    seen = np.isin(ids, run.seen_ids)
    return dict(version_dir=version_dir, info=load_export_info(version_dir), run=run,
                videos=videos, calibrated=distances + np.where(seen, BETA, 0.0),
                spec=batching.spec)


def _padded(seqs, extra, rng):
    """[B, max T + extra, D] with random finite garbage past each sequence's end."""
    t = max(len(s) for s in seqs) + extra
    out = rng.normal(size=(len(seqs), t, seqs[0].shape[1])).astype(np.float32) * 5
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, np.array([len(s) for s in seqs], np.int64)


FRESH = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # registers the custom kernels of classify_open
    model = tf.saved_model.load(sys.argv[1])
    data = dict(np.load(sys.argv[2]))
    out = {"avca_tf_imported": np.array("avca_tf" in sys.modules)}
    for name, fn in model.signatures.items():
        inputs = fn.structured_input_signature[1]
        out["inputs_" + name] = np.array(sorted(f"{k}:{s.dtype.name}:{s.shape}"
                                                for k, s in inputs.items()))
    for case in data["cases"]:
        feeds = {k: tf.constant(data[case + "_" + k]) for k in
                 ("audio", "audio_lengths", "video", "video_lengths")}
        for k, x in model.signatures["serving_default"](**feeds).items():
            out[case + "_" + k] = x.numpy()
        out[case + "_embed"] = model.signatures["embed"](**feeds)["embedding"].numpy()
        res = model.signatures["classify_open"](**feeds, class_names=tf.constant(data["names"]))
        out[case + "_open"] = res["scores"].numpy()
    np.savez(sys.argv[3], **{k: v.astype(str) if v.dtype == object else v
                             for k, v in out.items()})
""")


def test_sequence_export_scores_do_not_depend_on_padding(seq_export, tmp_path):
    info, videos = seq_export["info"], seq_export["videos"]
    assert info["inputs"] == "sequences" and info["sequence"]["mode"] == "max"
    assert info["signatures"] == ["serving_default", "embed", "classify_open"]
    rng = np.random.default_rng(3)
    seqs = [videos.sequences(i) for i in range(len(videos))]
    cases, feeds = [], {}

    def add(name, idx, extra):
        a, la = _padded([seqs[i][0] for i in idx], extra, rng)
        v, lv = _padded([seqs[i][1] for i in idx], extra, rng)
        feeds.update({f"{name}_audio": a, f"{name}_audio_lengths": la,
                      f"{name}_video": v, f"{name}_video_lengths": lv})
        cases.append(name)
    add("all", range(len(seqs)), 0)                   # one batch, padded to the longest
    for i in range(len(seqs)):
        add(f"alone{i}", [i], 3 + i)                  # alone, with extra padding steps
    add("reversed", range(len(seqs))[::-1], 7)        # other order, more padding
    names = np.array(info["class_names"])
    np.savez(tmp_path / "io.npz", cases=np.array(cases), names=names, **feeds)
    (tmp_path / "fresh.py").write_text(FRESH)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(tmp_path / "fresh.py"), seq_export["version_dir"],
                           str(tmp_path / "io.npz"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = dict(np.load(tmp_path / "out.npz"))
    assert not out["avca_tf_imported"]
    d_a, d_v = info["audio_dim"], info["video_dim"]
    want = sorted([f"audio:float32:(None, None, {d_a})", "audio_lengths:int64:(None,)",
                   f"video:float32:(None, None, {d_v})", "video_lengths:int64:(None,)"])
    assert list(out["inputs_serving_default"]) == want == list(out["inputs_embed"])
    assert list(out["inputs_classify_open"]) == sorted(want + ["class_names:string:(None,)"])

    calibrated = seq_export["calibrated"]
    order = np.argsort(calibrated, axis=1, kind="stable")[:, :3]
    # the in-process model's evaluation-mode scores
    np.testing.assert_allclose(out["all_scores"], -np.take_along_axis(calibrated, order, 1),
                               atol=1e-5)
    assert (out["all_classes"] == names[order]).all()
    np.testing.assert_allclose(out["all_open"], -calibrated, atol=1e-5)
    # the same video, whatever the padding and the batch it arrives in
    alone = {k: np.concatenate([out[f"alone{i}_{k}"] for i in range(len(seqs))])
             for k in ("scores", "embedding", "embed", "open")}
    rev = {k: out[f"reversed_{k}"][::-1] for k in ("scores", "embedding", "embed", "open")}
    for k in alone:
        np.testing.assert_allclose(alone[k], out[f"all_{k}"], atol=1e-5, rtol=1e-5, err_msg=k)
        np.testing.assert_allclose(rev[k], out[f"all_{k}"], atol=1e-5, rtol=1e-5, err_msg=k)
    assert (out["reversed_classes"][::-1] == out["all_classes"]).all()
    np.testing.assert_array_equal(out["all_embed"], out["all_embedding"])


def test_sequence_export_keras_file_scores_as_the_run(seq_export):
    """`avca export --keras` of a sequence model: model.keras loads (avca.load_model) and
    scores the padded evaluation batches as the trained model does."""
    import avca_tf as avca
    model = avca.load_model(seq_export["version_dir"])
    run = seq_export["run"]
    assert type(model) is type(run.model) and model.get_config() == run.model.get_config()
    labels = run.label_embeddings[np.union1d(run.seen_ids, run.unseen_ids)]
    batching = SequenceBatching(seq_export["spec"])
    np.testing.assert_array_equal(
        DistanceFn(model, 16, batching)(seq_export["videos"], labels),
        DistanceFn(run.model, 16, batching)(seq_export["videos"], labels))


def test_sequence_export_rejects_bad_inputs(seq_export):
    loaded = tf.saved_model.load(seq_export["version_dir"])
    d_a, d_v = seq_export["info"]["audio_dim"], seq_export["info"]["video_dim"]
    a, v = tf.zeros([2, 4, d_a]), tf.zeros([2, 3, d_v])
    la, lv = tf.constant([4, 2], tf.int64), tf.constant([3, 1], tf.int64)
    fn = loaded.signatures["serving_default"]
    assert fn(audio=a, audio_lengths=la, video=v, video_lengths=lv)["scores"].shape == (2, 3)
    cases = [
        (dict(audio=tf.zeros([2, d_a])), rf"audio: expected shape \[batch, steps, {d_a}\]"),
        (dict(video=tf.zeros([2, 3, d_v + 1])), rf"video: expected shape \[batch, steps, {d_v}\]"),
        (dict(audio_lengths=tf.constant([[4, 2]], tf.int64)), r"audio_lengths: expected shape"),
        (dict(audio=tf.tensor_scatter_nd_update(a, [[1, 0, 5]], [np.nan])),
         "audio: expected finite values, got NaN or Inf"),
        (dict(video=tf.tensor_scatter_nd_update(v, [[0, 2, 0]], [np.inf])),
         "video: expected finite values, got NaN or Inf"),
        (dict(audio_lengths=tf.constant([5, 2], tf.int64)), r"audio_lengths: expected values in"),
        (dict(video_lengths=tf.constant([3, 0], tf.int64)), r"video_lengths: expected values in"),
        (dict(video_lengths=tf.constant([3], tf.int64)), "expected the same batch size"),
    ]
    for name in ("serving_default", "embed", "classify_open"):
        extra = {"class_names": tf.constant(["Bada"])} if name == "classify_open" else {}
        for change, message in cases:
            feeds = {"audio": a, "audio_lengths": la, "video": v, "video_lengths": lv,
                     **extra, **change}
            with pytest.raises(tf.errors.InvalidArgumentError, match=message):
                loaded.signatures[name](**feeds)


def _load_deploy_client():
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "deploy",
                        "avca_request.py")
    spec = importlib.util.spec_from_file_location("avca_request", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deploy_client_builds_sequence_requests(seq_export, tmp_path, capsys):
    """deploy/avca_request.py: per-video sequences -> padded tensors + lengths that fit the
    export's SignatureDefs and score like the in-process evaluation."""
    from tensorflow.core.protobuf import saved_model_pb2
    client = _load_deploy_client()
    videos, info = seq_export["videos"], seq_export["info"]
    seqs = [videos.sequences(i) for i in range(len(videos))]
    audio, video = [s[0] for s in seqs], [s[1] for s in seqs]
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(open(os.path.join(seq_export["version_dir"], "saved_model.pb"),
                            "rb").read())
    sigs = sm.meta_graphs[0].signature_def
    loaded = tf.saved_model.load(seq_export["version_dir"])
    names = list(info["class_names"])
    calibrated = seq_export["calibrated"]
    for name in ("serving_default", "embed", "classify_open"):
        req = client.build_request("avca", name, audio, video, class_names=names, version=1)
        assert set(req.inputs) == set(sigs[name].inputs), name
        for key, sig in sigs[name].inputs.items():
            tensor = req.inputs[key]
            assert tensor.dtype == sig.dtype, key
            want = [d.size for d in sig.tensor_shape.dim]
            got = [d.size for d in tensor.tensor_shape.dim]
            assert len(want) == len(got) and all(w in (-1, g) for w, g in zip(want, got)), key
        feeds = {k: tf.constant(tf.make_ndarray(v)) for k, v in req.inputs.items()}
        np.testing.assert_array_equal(feeds["audio_lengths"].numpy(), [len(a) for a in audio])
        assert feeds["video"].shape[1] == max(len(v) for v in video)
        out = loaded.signatures[name](**feeds)
        if name == "classify_open":
            np.testing.assert_allclose(out["scores"].numpy(), -calibrated, atol=1e-5)
        elif name == "serving_default":
            order = np.argsort(calibrated, axis=1, kind="stable")[:, :3]
            np.testing.assert_allclose(out["scores"].numpy(),
                                       -np.take_along_axis(calibrated, order, 1), atol=1e-5)
        path, body = client.request_to_rest(req)
        assert path == "/v1/models/avca/versions/1:predict"
        assert set(body["inputs"]) == set(req.inputs)
        json.dumps(body)
    # padded arrays + lengths give the same request tensors as the list of videos
    a_pad, a_len = client.pad_sequences(audio)
    v_pad, v_len = client.pad_sequences(video)
    req = client.build_request("avca", "embed", a_pad, v_pad, audio_lengths=a_len,
                               video_lengths=v_len)
    ref = client.build_request("avca", "embed", audio, video)
    assert req.SerializeToString() == ref.SerializeToString()
    with pytest.raises(ValueError, match=r"video\[1\]: shape"):
        client.build_request("avca", "embed", audio, [video[0], video[1][:, :3]])
    with pytest.raises(ValueError, match=r"audio_lengths: expected values in \[1, "):
        client.build_request("avca", "embed", a_pad, v_pad, audio_lengths=a_len + 100,
                             video_lengths=v_len)
    # the command line: one array per video in an .npz
    np.savez(tmp_path / "a.npz", *audio)
    np.savez(tmp_path / "v.npz", *video)
    assert client.main(["--sequences", "--audio", str(tmp_path / "a.npz"), "--video",
                        str(tmp_path / "v.npz"), "--print-request", "--transport", "rest"]) == 0
    body = json.loads(capsys.readouterr().out)["body"]
    assert body["inputs"]["audio_lengths"] == [len(a) for a in audio]
    assert client.main(["--sequences", "--audio", str(tmp_path / "missing.npz"),
                        "--print-request"]) == 2
    assert "error: " in capsys.readouterr().err


def test_sequence_export_refuses_videos_over_the_step_limit(seq_export):
    """Issue 29: one 10,000-step video needed a 12.8 GB attention tensor."""
    loaded = tf.saved_model.load(seq_export["version_dir"])
    d_a, d_v = seq_export["info"]["audio_dim"], seq_export["info"]["video_dim"]
    fn = loaded.signatures["embed"]
    one = tf.constant([1], tf.int64)
    with pytest.raises(tf.errors.InvalidArgumentError, match="video: more than 2048 steps"):
        fn(audio=tf.zeros([1, 3, d_a]), audio_lengths=one, video=tf.zeros([1, 2049, d_v]),
           video_lengths=one)
