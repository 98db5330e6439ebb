"""SavedModel export for TF Serving (avca_tf/serving/export.py, `avca export`, deploy/)."""
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from avca_tf import cli
from avca_tf.serving.export import (EXPORT_INFO, TF_TEXT_OPS, ExportError, export_run,
                            load_export_info, write_models_config)
from avca_tf.data.synthesis.synth import toy_word_vectors_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
SAVED_MODEL_CLI = os.path.join(BIN, "saved_model_cli")
# saved_model_cli with the tensorflow-text kernels registered (the plain binary
# cannot import a graph that contains them).
SAVED_MODEL_CLI_TEXT = [sys.executable, "-c",
                        "import sys, tensorflow_text; "
                        "from tensorflow.python.tools.saved_model_cli import main; "
                        "sys.argv[0] = 'saved_model_cli'; sys.exit(main())"]
# Names of the toy vocabulary that no toy class uses: built from toy words only.
N_NEW = 6
BETA = 0.4


def _load_deploy_client():
    spec = importlib.util.spec_from_file_location(
        "avca_request", os.path.join(REPO, "deploy", "avca_request.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="session")
def trained_run(toy_root, tmp_path_factory):
    """A tiny `avca train --quick --epochs 1` run on the toy benchmark.

    So short a run finds beta 0 on validation; the calibration path is
    exercised by setting beta to BETA in its classes.json.
    """
    from avca_tf.training.protocol import CLASSES_FILE, MODEL_DIR
    run_dir = tmp_path_factory.mktemp("export_run") / "run"
    assert cli.main(["train", "--root", str(toy_root), "--dataset", "Toy", "--quick",
                     "--epochs", "1", "--out", str(run_dir), "-q"]) == 0
    classes_file = run_dir / MODEL_DIR / CLASSES_FILE
    classes = json.loads(classes_file.read_text())
    classes["beta"] = BETA
    classes_file.write_text(json.dumps(classes))
    return run_dir


@pytest.fixture(scope="session")
def served(trained_run, tmp_path_factory):
    """The trained toy run exported with `avca export`, plus what the tests compare with."""
    from avca_tf.training.protocol import load_run
    base = tmp_path_factory.mktemp("serving")
    rc = cli.main(["export", str(trained_run), "--out", str(base), "--top-k", "4"])
    assert rc == 0
    version_dir = os.path.join(base, "avca", "1")
    run = load_run(str(trained_run))
    info = load_export_info(version_dir)
    ids = np.union1d(run.seen_ids, run.unseen_ids)
    words = [line.split(" ")[0] for line in
             toy_word_vectors_path(run.run_config.data.root).read_text().splitlines()[1:]]
    class_words = {w for n in info["class_names"] for w in re.findall("[A-Z][a-z]*", n)}
    rng = np.random.default_rng(7)
    unused = [w for w in words if w.capitalize() not in class_words]
    new_names = [f"{a} {b}" for a, b in zip(unused[:N_NEW], unused[N_NEW:2 * N_NEW])]
    assert len(new_names) == N_NEW and not set(new_names) & set(info["class_names"])
    d_a, d_v = run.run_config.model.audio_dim, run.run_config.model.video_dim
    audio = rng.normal(size=(7, d_a)).astype(np.float32)
    video = rng.normal(size=(7, d_v)).astype(np.float32)
    seen = np.isin(ids, run.seen_ids)
    distances = run.model.class_distances(audio, video, run.label_embeddings[ids]).numpy()
    return dict(base=str(base), version_dir=version_dir, run=run, info=info, ids=ids,
                seen=seen, audio=audio, video=video, new_names=new_names,
                half_known=f"{unused[0].capitalize()}Zzzq",
                embedding=run.model.embed(audio, video).numpy(),
                calibrated=distances + np.where(seen, run.beta, 0.0))


def test_export_writes_serving_layout(served):
    info, run = served["info"], served["run"]
    assert info["signatures"] == ["serving_default", "embed", "classify_open"]
    assert info["class_names"] == [run.class_names[i] for i in served["ids"]]
    assert info["beta"] == pytest.approx(run.beta) == BETA
    assert 0 < sum(info["seen"]) < len(info["seen"])
    assert os.path.exists(os.path.join(served["version_dir"], "assets", "word_vocab.txt"))
    # no temporary directories left beside the version
    assert os.listdir(os.path.join(served["base"], "avca")) == ["1"]
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2
    config = text_format.Parse(open(os.path.join(served["base"], "models.config")).read(),
                               model_server_config_pb2.ModelServerConfig())
    [entry] = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == (
        "avca", "/models/avca", "tensorflow")


def test_saved_model_cli_show_lists_signatures(served):
    out = _run([SAVED_MODEL_CLI, "show", "--dir", served["version_dir"], "--all"])
    assert out.returncode == 0, out.stderr
    text = out.stdout
    d_a, d_v = info_dims = served["info"]["audio_dim"], served["info"]["video_dim"]
    assert all(info_dims)
    blocks = dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)Method name is:", text, re.S))
    assert set(blocks) >= {"serving_default", "embed", "classify_open"}

    def tensors(block, kind):
        part = block.split("output(s):")[0 if kind == "inputs" else 1]
        return {n: (d, s) for n, d, s in re.findall(
            rf"{kind}\['(\w+)'\] tensor_info:\n\s+dtype: (\w+)\n\s+shape: \(([^)]*)\)", part)}

    audio = ("DT_FLOAT", f"-1, {d_a}")
    video = ("DT_FLOAT", f"-1, {d_v}")
    assert tensors(blocks["serving_default"], "inputs") == {"audio": audio, "video": video}
    assert tensors(blocks["embed"], "inputs") == {"audio": audio, "video": video}
    assert tensors(blocks["classify_open"], "inputs") == {
        "audio": audio, "video": video, "class_names": ("DT_STRING", "-1")}
    out_default = tensors(blocks["serving_default"], "outputs")
    assert out_default["classes"] == ("DT_STRING", "-1, 4")
    assert out_default["scores"] == ("DT_FLOAT", "-1, 4")
    assert out_default["embedding"][0] == "DT_FLOAT"
    assert tensors(blocks["embed"], "outputs")["embedding"] == out_default["embedding"]
    out_open = tensors(blocks["classify_open"], "outputs")
    assert out_open["scores"] == ("DT_FLOAT", "-1, -1")
    assert out_open["best_class"] == ("DT_STRING", "-1")
    assert out_open["known_token_count"] == ("DT_INT32", "-1")
    assert out_open["oov_tokens"] == ("DT_STRING", "-1, -1")
    # the graph's custom ops are exactly the tensorflow-text ones the docs list
    ops = set(re.search(r"contains the following ops: \{(.*?)\}", text).group(1)
              .replace("'", "").split(", "))
    assert set(TF_TEXT_OPS) <= ops


def test_saved_model_cli_run_on_npy(served, tmp_path):
    np.save(tmp_path / "audio.npy", served["audio"])
    np.save(tmp_path / "video.npy", served["video"])
    inputs = f"audio={tmp_path / 'audio.npy'};video={tmp_path / 'video.npy'}"
    # the plain binary cannot register the tensorflow-text kernels: documented
    plain = _run([SAVED_MODEL_CLI, "run", "--dir", served["version_dir"], "--tag_set", "serve",
                  "--signature_def", "embed", "--inputs", inputs])
    assert plain.returncode != 0 and "NormalizeUTF8" in plain.stderr
    out = _run(SAVED_MODEL_CLI_TEXT + [
        "run", "--dir", served["version_dir"], "--tag_set", "serve",
        "--signature_def", "serving_default", "--inputs", inputs,
        "--outdir", str(tmp_path / "out")])
    assert out.returncode == 0, out.stderr[-3000:]
    scores = np.load(tmp_path / "out" / "scores.npy")
    np.testing.assert_allclose(scores, -np.sort(served["calibrated"], axis=1)[:, :4], atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "embedding.npy"),
                               served["embedding"], atol=1e-5)


FRESH = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry
    version_dir, io_file, out_file = sys.argv[1:]
    # which ops of the graph are unknown to core TensorFlow
    from tensorflow.core.protobuf import saved_model_pb2
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(open(version_dir + "/saved_model.pb", "rb").read())
    graph = sm.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    custom = sorted(op for op in ops if op_def_registry.get(op) is None)
    import tensorflow_text  # registers the custom kernels; must precede loading
    model = tf.saved_model.load(version_dir)
    data = np.load(io_file)
    a, v = tf.constant(data["audio"]), tf.constant(data["video"])
    out = {"custom_ops": np.array(custom), "signatures": np.array(sorted(model.signatures))}
    for k, x in model.signatures["serving_default"](audio=a, video=v).items():
        out["default_" + k] = x.numpy()
    out["embed"] = model.signatures["embed"](audio=a, video=v)["embedding"].numpy()
    for tag in ("vocab", "new"):
        res = model.signatures["classify_open"](audio=a, video=v,
                                                class_names=tf.constant(data[tag]))
        for k, x in res.items():
            out[tag + "_" + k] = x.numpy()
    out["avca_tf_imported"] = np.array("avca_tf" in sys.modules)
    out = {k: np.char.decode(x.astype(bytes), "utf-8") if x.dtype == object else x
           for k, x in out.items()}
    np.savez(out_file, **out)
""")


@pytest.fixture(scope="session")
def fresh_outputs(served, tmp_path_factory):
    """All signatures run in a process that imports only tensorflow (+ tensorflow_text)."""
    d = tmp_path_factory.mktemp("fresh")
    vocab = np.array(served["info"]["class_names"] + ["Zzzq Xxy"] + served["new_names"])
    np.savez(d / "io.npz", audio=served["audio"], video=served["video"], vocab=vocab,
             new=np.array(served["new_names"] + ["Zzzq Xxy", "", served["half_known"]]))
    (d / "fresh.py").write_text(FRESH)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = _run([sys.executable, str(d / "fresh.py"), served["version_dir"], str(d / "io.npz"),
                 str(d / "out.npz")], cwd=str(d), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(d / "out.npz"))


def test_fresh_process_matches_keras_model(served, fresh_outputs):
    out = fresh_outputs
    assert not out["avca_tf_imported"]
    assert list(out["signatures"]) == ["classify_open", "embed", "serving_default"]
    assert sorted(out["custom_ops"]) == sorted(TF_TEXT_OPS)
    np.testing.assert_allclose(out["embed"], served["embedding"], atol=1e-5)
    np.testing.assert_allclose(out["default_embedding"], served["embedding"], atol=1e-5)
    order = np.argsort(served["calibrated"], axis=1, kind="stable")[:, :4]
    names = np.array(served["info"]["class_names"])
    np.testing.assert_allclose(out["default_scores"],
                               -np.take_along_axis(served["calibrated"], order, 1), atol=1e-5)
    assert (out["default_classes"].astype(str) == names[order]).all()


def test_classify_open_on_training_vocabulary_ranks_like_serving_default(served, fresh_outputs):
    out = fresh_outputs
    n = len(served["info"]["class_names"])
    scores = out["vocab_scores"]
    # in-graph name embeddings reproduce the run's label embeddings, and seen
    # names get the same beta: identical scores, identical ranking
    np.testing.assert_allclose(scores[:, :n], -served["calibrated"], atol=1e-4)
    assert (np.argsort(-scores[:, :n], axis=1, kind="stable")[:, :4].astype(np.int64)
            == np.argsort(served["calibrated"], axis=1, kind="stable")[:, :4]).all()
    assert (out["vocab_calibrated"][:n] == served["seen"]).all()
    assert not out["vocab_calibrated"][n:].any()
    # the fully unknown name never wins; its score is -inf
    assert np.isneginf(scores[:, n]).all() and np.isfinite(scores[:, n + 1:]).all()
    best = np.argmax(scores, axis=1)
    vocab = served["info"]["class_names"] + ["Zzzq Xxy"] + served["new_names"]
    assert list(out["vocab_best_class"].astype(str)) == [vocab[i] for i in best]


def test_classify_open_new_names_and_oov_report(fresh_outputs, served):
    out = fresh_outputs
    k = len(served["new_names"])
    # names never seen in training: finite scores, all tokens known
    assert np.isfinite(out["new_scores"][:, :k]).all()
    assert (out["new_known_token_count"] == [2] * k + [0, 0, 1]).all()
    assert (out["new_token_count"] == [2] * k + [2, 0, 2]).all()
    oov = [[t for t in row if t] for row in out["new_oov_tokens"].astype(str)]
    assert oov == [[]] * k + [["zzzq", "xxy"], [], ["zzzq"]]
    # the best name is one with a known token, the arg max of the row
    allowed = served["new_names"] + [served["half_known"]]
    assert set(out["new_best_class"].astype(str)) <= set(allowed)
    assert np.isneginf(out["new_scores"][:, k:k + 2]).all()


def test_predict_requests_match_signatures(served):
    """PredictRequests from deploy/avca_request.py fit each SignatureDef, and run."""
    from tensorflow.core.protobuf import saved_model_pb2
    client = _load_deploy_client()
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(open(os.path.join(served["version_dir"], "saved_model.pb"), "rb").read())
    sigs = sm.meta_graphs[0].signature_def
    loaded = tf.saved_model.load(served["version_dir"])
    for name in ("serving_default", "embed", "classify_open"):
        req = client.build_request("avca", name, served["audio"][:2], served["video"][:2],
                                   class_names=served["new_names"][:2], version=1)
        assert req.model_spec.signature_name == name
        assert set(req.inputs) == set(sigs[name].inputs)
        for key, info in sigs[name].inputs.items():
            tensor = req.inputs[key]
            assert tensor.dtype == info.dtype, key
            want = [d.size for d in info.tensor_shape.dim]
            got = [d.size for d in tensor.tensor_shape.dim]
            assert len(want) == len(got) and all(w in (-1, g) for w, g in zip(want, got)), key
        # what TF Serving does with the request: decode the tensors, call the signature
        feeds = {k: tf.constant(tf.make_ndarray(v)) for k, v in req.inputs.items()}
        result = loaded.signatures[name](**feeds)
        if name == "classify_open":
            assert result["scores"].shape == (2, 2)
        else:
            np.testing.assert_allclose(result["embedding"], served["embedding"][:2], atol=1e-5)
        path, body = client.request_to_rest(req)
        assert path == "/v1/models/avca/versions/1:predict"
        assert body["signature_name"] == name and set(body["inputs"]) == set(req.inputs)
        json.dumps(body)  # serialisable as is
        np.testing.assert_allclose(np.array(body["inputs"]["audio"], np.float32),
                                   served["audio"][:2])
    with pytest.raises(ValueError, match="at least one class name"):
        client.build_request("avca", "classify_open", served["audio"], served["video"], [])


def test_bad_inputs_give_clear_errors(served):
    loaded = tf.saved_model.load(served["version_dir"])
    d_a, d_v = served["info"]["audio_dim"], served["info"]["video_dim"]
    a, v = tf.zeros([2, d_a]), tf.zeros([2, d_v])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"audio: expected shape \[batch, {d_a}\] float32"):
        loaded.signatures["embed"](audio=tf.zeros([2, d_a + 1]), video=v)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"video: expected shape \[batch, {d_v}\] float32"):
        loaded.signatures["serving_default"](audio=a, video=tf.zeros([2, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch size"):
        loaded.signatures["embed"](audio=a, video=tf.zeros([3, d_v]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a float tensor"):
        loaded.signatures["embed"](audio=tf.zeros([2, d_a], tf.float64), video=v)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="class_names: expected a non-empty list of class names"):
        loaded.signatures["classify_open"](audio=a, video=v,
                                           class_names=tf.constant([], tf.string))


def test_requests_over_the_limits_and_huge_features_are_refused(served):
    """Issue 29: features of 1e30 gave -inf/NaN scores; request sizes had no bound."""
    from avca_tf.config import REQUEST_LIMITS
    loaded = tf.saved_model.load(served["version_dir"])
    d_a, d_v = served["info"]["audio_dim"], served["info"]["video_dim"]
    a, v = tf.zeros([2, d_a]), tf.zeros([2, d_v])
    with pytest.raises(tf.errors.InvalidArgumentError, match="beyond"):
        loaded.signatures["serving_default"](audio=a + 1e30, video=v)
    n = REQUEST_LIMITS["videos"] + 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 4096 videos"):
        loaded.signatures["embed"](audio=tf.zeros([n, d_a]), video=tf.zeros([n, d_v]))
    open_fn = loaded.signatures["classify_open"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 4096 names"):
        open_fn(audio=a, video=v, class_names=tf.constant(["Bada"] * 4097))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected UTF-8 text"):
        open_fn(audio=a, video=v, class_names=tf.constant([b"Bad\xff"]))
    # within the limits: the largest batch runs
    m = REQUEST_LIMITS["videos"]
    assert loaded.signatures["embed"](audio=tf.zeros([m, d_a]),
                                      video=tf.zeros([m, d_v]))["embedding"].shape[0] == m


def test_export_version_past_int64_is_refused(trained_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["export", str(trained_run), "--out", str(tmp_path / "s"),
                  "--version", str(2 ** 63)])
    assert e.value.code == 2 and f"must be < {2 ** 63}" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    with pytest.raises(ExportError, match="int64"):
        export_run(str(trained_run), str(tmp_path / "s"), version=2 ** 63)


def test_cli_versions_are_never_overwritten(served, trained_run, capsys):
    base = served["base"]
    before = os.listdir(os.path.join(base, "avca", "1"))
    assert cli.main(["export", str(trained_run), "--out", base, "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert os.listdir(os.path.join(base, "avca", "1")) == before
    assert cli.main(["export", str(trained_run), "--out", base, "--model-name", "avca-small",
                     "--max-words", "20"]) == 0
    info = load_export_info(os.path.join(base, "avca-small", "1"))
    assert info["word_vectors"]["words"] == 20
    assert [c.split('"')[1] for c in open(os.path.join(base, "models.config")).read().split()
            if c.startswith('"/models')] == ["/models/avca", "/models/avca-small"]
    assert cli.main(["export", str(trained_run), "--out", base,
                     "--word-vectors", os.path.join(base, "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert sorted(os.listdir(os.path.join(base, "avca"))) == ["1"]
    with pytest.raises(ExportError, match="model name"):
        export_run(str(trained_run), base, model_name="../x")


def test_export_without_word_vectors_has_two_signatures(served, trained_run, tmp_path):
    """A run whose benchmark ships only class vectors: no classify_open, said clearly."""
    run = served["run"]
    from avca_tf.serving.export import ServingVocabulary, export_model
    vocab = ServingVocabulary.from_run(run.class_names, run.label_embeddings, run.seen_ids,
                                       run.unseen_ids, run.beta)
    info = export_model(run.model, served["info"]["audio_dim"], served["info"]["video_dim"],
                        vocab, str(tmp_path / "v"), None, 3)
    assert info["signatures"] == ["serving_default", "embed"] and not info["tf_text_ops"]
    assert json.load(open(tmp_path / "v" / EXPORT_INFO))["top_k"] == 3
    write_models_config(str(tmp_path))  # "v" is no model directory: empty list
    assert "config {" not in open(tmp_path / "models.config").read()


def test_kubernetes_manifest_matches_models_config():
    import yaml
    docs = list(yaml.safe_load_all(open(os.path.join(REPO, "deploy", "k8s",
                                                     "avca-serving.yaml"))))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["PersistentVolumeClaim", "Deployment", "Service"]
    [container] = docs[1]["spec"]["template"]["spec"]["containers"]
    assert "--model_config_file=/models/models.config" in container["args"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container[
        "volumeMounts"]
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}


def test_grpc_client_round_trip(served):
    """deploy/avca_request.py's gRPC path against a PredictionService backed by the export.

    The server stands in for tensorflow_model_server (not installable here):
    it decodes the request's TensorProtos, runs the named signature of the
    loaded SavedModel and encodes the outputs, as the model server does.
    """
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    client = _load_deploy_client()
    loaded = tf.saved_model.load(served["version_dir"])

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            fn = loaded.signatures[request.model_spec.signature_name]
            result = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
            response = predict_pb2.PredictResponse()
            for k, v in result.items():
                response.outputs[k].CopyFrom(tf.make_tensor_proto(v.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    try:
        target = f"localhost:{port}"
        out = client.predict_grpc(target, client.build_request(
            "avca", "serving_default", served["audio"], served["video"]))
        np.testing.assert_allclose(out["embedding"], served["embedding"], atol=1e-5)
        order = np.argsort(served["calibrated"], axis=1, kind="stable")[:, :4]
        names = np.array(served["info"]["class_names"])
        assert (out["classes"].astype(str) == names[order]).all()
        out = client.predict_grpc(target, client.build_request(
            "avca", "classify_open", served["audio"], served["video"], served["new_names"]))
        assert out["scores"].shape == (7, N_NEW)
        assert list(out["best_class"].astype(str)) == [
            served["new_names"][i] for i in out["scores"].argmax(axis=1)]
    finally:
        server.stop(None)


def test_export_keras_writes_the_keras_model_beside_the_saved_model(served, trained_run,
                                                                   tmp_path, capsys):
    import keras

    from avca_tf.serving.export import KERAS_FILE
    assert cli.main(["export", str(trained_run), "--out", str(tmp_path), "--keras"]) == 0
    version_dir = os.path.join(tmp_path, "avca", "1")
    assert f"keras model: {version_dir}/{KERAS_FILE}" in capsys.readouterr().out
    assert load_export_info(version_dir)["keras_file"] == KERAS_FILE
    assert served["info"]["keras_file"] is None
    assert not os.path.exists(os.path.join(served["version_dir"], KERAS_FILE))
    model = keras.saving.load_model(os.path.join(version_dir, KERAS_FILE))
    run = served["run"]
    assert type(model) is type(run.model)
    assert model.get_config() == run.model.get_config()
    labels = run.label_embeddings[served["ids"]]
    np.testing.assert_array_equal(
        model.class_distances(served["audio"], served["video"], labels).numpy(),
        run.model.class_distances(served["audio"], served["video"], labels).numpy())


def test_export_refuses_another_input_signature_and_versions_past_int64(trained_run, tmp_path,
                                                                          capsys):
    """Issue 29: a serving name keeps one input signature (a TCaF export takes sequences,
    clients of `avca` send [B, 512] vectors); versions stay in TF Serving's int64."""
    seq = tf.Module()
    seq.f = tf.function(lambda audio, video: {"scores": audio[:, 0, :1] + video[:, 0, :1]},
                        input_signature=[tf.TensorSpec([None, None, 512], tf.float32, "audio"),
                                         tf.TensorSpec([None, None, 512], tf.float32, "video")])
    base = tmp_path / "serving"
    tf.saved_model.save(seq, str(base / "avca" / "1"), signatures={"serving_default": seq.f})
    assert cli.main(["export", str(trained_run), "--out", str(base)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the serving model {base / 'avca'} (version 1) takes audio "
                          "float32[-1, -1, 512], video float32[-1, -1, 512]; this model takes "
                          "audio float32[-1, "), err
    assert err.rstrip().endswith("export under another --serving-name")
    assert sorted(os.listdir(base / "avca")) == ["1"]  # no version 2, no temporary left
    with pytest.raises(SystemExit) as stop:  # argparse refuses it before any work
        cli.main(["export", str(trained_run), "--out", str(base), "--version",
                  "99999999999999999999"])
    assert stop.value.code == 2 and "must be < 9223372036854775808" in capsys.readouterr().err
    (base / "top" / str(2 ** 63 - 1)).mkdir(parents=True)
    assert cli.main(["export", str(trained_run), "--out", str(base), "--serving-name", "top"]) == 2
    assert "past TF Serving's int64 versions" in capsys.readouterr().err
    assert os.listdir(base / "top") == [str(2 ** 63 - 1)]
