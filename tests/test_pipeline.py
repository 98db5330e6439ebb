"""The TFX pipeline (components/, pipelines/, `avca pipeline`), run for real.

One LocalDagRunner run on the toy benchmark is shared by the module; a second
run with an unreachable HM threshold checks the cache and a refused blessing;
a run killed during training checks the recovery. Everything goes through
the `avca` CLI, as a user would run it.
"""
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import pytest

from avca_tf import cli
from components.blessing import Baseline, decide_blessing
from pipelines import mlmd_report
from pipelines.local_runner import fingerprint
from pipelines.tfx_pipeline import code_version

# A few seconds of training: the tests check the plumbing, not the accuracy.
TRAIN = ["--preset", "quick", "--epochs", "1", "--n-batches", "3"]
UPSTREAM = ("FeatureIngestion", "ClassEmbeddingGen")
COMPONENTS = ("FeatureIngestion", "ClassEmbeddingGen", "AvcaTrainer", "GZSLEvaluator", "Pusher")


def _avca(*argv):
    """Runs the CLI in this process; returns (exit code, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main([str(a) for a in argv])
    return rc, out.getvalue()


def _run_args(work, toy_root, *extra):
    return ["pipeline", "run", "--work-dir", work, "--root", toy_root, "--dataset", "Toy",
            *TRAIN, *extra]


def _last_run(work, pipeline="avca-toy-main"):
    store = mlmd_report.open_store(os.path.join(work, "metadata.sqlite"))
    return mlmd_report.pipeline_runs(store, pipeline)[-1]


def _versions(work):
    base = os.path.join(work, "serving", "avca")
    return sorted(os.listdir(base)) if os.path.isdir(base) else []


def _start_and_kill_during_training(args):
    """Starts `avca ARGS` in a new process and SIGKILLs it once training has begun."""
    proc = subprocess.Popen([sys.executable, "-m", "avca_tf.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("stage 1 epoch 1/"):  # printed by the trainer's protocol run
                break
        else:
            pytest.fail("the run never reached training:\n" + "".join(seen[-40:]))
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    return "".join(seen)


@pytest.fixture(scope="module")
def first(toy_root, tmp_path_factory):
    """A run killed during training, then the run that completes it."""
    work = str(tmp_path_factory.mktemp("pipeline_work"))
    args = _run_args(work, toy_root)
    killed_out = _start_and_kill_during_training(args)
    killed = _last_run(work)
    rc, out = _avca(*args)
    assert rc == 0, out
    return {"work": work, "out": out, "run": _last_run(work), "versions": _versions(work),
            "killed": killed, "killed_out": killed_out}


@pytest.fixture(scope="module")
def second(first, toy_root):
    """Same inputs, but no model can reach the HM threshold."""
    t0 = time.monotonic()
    rc, out = _avca(*_run_args(first["work"], toy_root, "--hm-threshold", "101"))
    assert rc == 0, out
    return {"out": out, "run": _last_run(first["work"]), "seconds": time.monotonic() - t0,
            "versions": _versions(first["work"])}


def test_full_run_writes_every_artifact(first):
    for node in UPSTREAM:
        assert first["killed"].node(node).state == "COMPLETE"
    run = first["run"]
    for node in COMPONENTS[2:]:
        assert run.node(node).state == "COMPLETE", (node, run.node(node).state)
    examples = run.output("FeatureIngestion", "examples")
    assert json.load(open(os.path.join(examples.uri, "metadata.json")))["dataset"] == "Toy"
    assert examples.properties["num_examples"] > 0
    emb = run.output("ClassEmbeddingGen", "class_embeddings")
    assert os.path.isfile(os.path.join(emb.uri, "embeddings.tfrecord"))
    assert emb.properties["num_classes"] == examples.properties["num_classes"]
    model = run.output("AvcaTrainer", "model")
    assert os.path.isfile(os.path.join(model.uri, "Format-Serving", "saved_model.pb"))
    model_run = run.output("AvcaTrainer", "model_run")
    logs = os.path.join(model_run.uri, "logs", "stage1")
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(logs))
    blessing = run.output("GZSLEvaluator", "blessing")
    assert blessing.properties["blessed"] == 1
    assert blessing.properties["current_model_id"] == model.id
    pushed = run.output("Pusher", "pushed_model")
    assert pushed.properties["pushed"] == 1
    dest = pushed.properties["pushed_destination"]
    assert os.path.dirname(dest) == os.path.join(first["work"], "serving", "avca")
    assert os.path.isfile(os.path.join(dest, "saved_model.pb"))
    assert first["versions"] == [os.path.basename(dest)]
    assert os.path.isfile(os.path.join(first["work"], "serving", "models.config"))
    # The CLI reports the table and where everything is.
    out = first["out"]
    for text in ("split        S       U      HM     ZSL", "pushed model:     " + dest,
                 "tensorboard --logdir " + model_run.uri,
                 "MLMD store:       " + os.path.join(first["work"], "metadata.sqlite")):
        assert text in out, text


def test_mlmd_evaluation_equals_evaluator_output(first):
    run = first["run"]
    evaluation = run.output("GZSLEvaluator", "evaluation")
    metrics = json.load(open(os.path.join(evaluation.uri, "metrics.json")))
    for split in ("val", "test"):
        for key in ("S", "U", "HM", "ZSL"):
            assert evaluation.properties[f"{split}_{key}"] == pytest.approx(metrics[split][key])
    assert metrics["blessing"]["blessed"] is True
    blessing = run.output("GZSLEvaluator", "blessing")
    assert blessing.properties["test_hm"] == pytest.approx(metrics["test"]["HM"])
    # The evaluator recomputes the test metrics; the trainer measured the same model.
    results = json.load(open(os.path.join(run.output("AvcaTrainer", "model_run").uri,
                                          "results.json")))
    for key in ("S", "U", "HM", "ZSL"):
        assert metrics["test"][key] == pytest.approx(100 * results["test"][key], abs=1e-6)
        assert metrics["val"][key] == pytest.approx(100 * results["stage1"]["best"][key], abs=1e-6)
    seen, unseen = metrics["test_seen_classes"], metrics["test_unseen_classes"]
    recall = metrics["test_per_class_recall"]
    s = sum(recall[c] for c in seen if c in recall) / len([c for c in seen if c in recall])
    assert s == pytest.approx(metrics["test"]["S"])
    assert set(unseen) <= set(recall)


def test_pushed_model_loads_in_a_fresh_process_and_scores_like_the_evaluator(first, tmp_path):
    """The pushed SavedModel's top-1 predictions give the evaluator's test S and U."""
    import numpy as np

    from avca_tf.data.formats.tfrecord_input import load_benchmark_from_tfrecords
    run = first["run"]
    dest = run.output("Pusher", "pushed_model").properties["pushed_destination"]
    bench = load_benchmark_from_tfrecords(run.output("FeatureIngestion", "examples").uri)
    arrays = tmp_path / "test.npz"
    stages = ("stage_2_test_seen", "stage_2_test_unseen")
    np.savez(arrays, **{f"{st}_{m}": getattr(bench.splits[st], m) for st in stages
                        for m in ("audio", "video")})
    code = textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf, tensorflow_text
        fn = tf.saved_model.load({str(dest)!r}).signatures["serving_default"]
        a = np.load({str(arrays)!r})
        print(json.dumps({{st: [c.decode() for c in fn(audio=tf.constant(a[st + "_audio"]),
                                                      video=tf.constant(a[st + "_video"]))
                                ["classes"][:, 0].numpy()] for st in {stages!r}}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    top1 = json.loads(proc.stdout.strip().splitlines()[-1])
    mca = {}
    for st in stages:
        truth = [bench.class_names[i] for i in bench.splits[st].labels]
        recall = [np.mean([p == c for p, t in zip(top1[st], truth) if t == c])
                  for c in sorted(set(truth))]
        mca[st] = 100.0 * float(np.mean(recall))
    metrics = json.load(open(os.path.join(run.output("GZSLEvaluator", "evaluation").uri,
                                          "metrics.json")))
    assert mca["stage_2_test_seen"] == pytest.approx(metrics["test"]["S"], abs=1e-3)
    assert mca["stage_2_test_unseen"] == pytest.approx(metrics["test"]["U"], abs=1e-3)


def test_rerun_serves_upstream_and_trainer_from_cache(first, second):
    run = second["run"]
    for node in UPSTREAM + ("AvcaTrainer",):
        assert run.node(node).state == "CACHED", (node, run.node(node).state)
        assert ({a.id for a in run.node(node).outputs}
                == {a.id for a in first["run"].node(node).outputs})
        assert f"[pipeline] {node}: served from cache" in second["out"]
    assert "from cache" in second["out"].split("\npipeline avca-toy-main, run")[1]


def test_blessing_refused_below_threshold_pushes_nothing(first, second):
    run = second["run"]
    assert run.node("GZSLEvaluator").state == "COMPLETE"
    blessing = run.output("GZSLEvaluator", "blessing")
    assert blessing.properties["blessed"] == 0
    assert "< threshold 101.00" in blessing.properties["reason"]
    assert os.path.isfile(os.path.join(blessing.uri, "NOT_BLESSED"))
    assert run.output("Pusher", "pushed_model").properties["pushed"] == 0
    assert second["versions"] == first["versions"]
    assert "blessing: not blessed" in second["out"]
    assert "nothing pushed in this run" in second["out"]


def test_show_lists_runs_artifacts_and_numbers(first, second):
    rc, out = _avca("pipeline", "show", "--metadata",
                    os.path.join(first["work"], "metadata.sqlite"))
    assert rc == 0
    assert out.count("\nrun ") >= 2
    evaluation = second["run"].output("GZSLEvaluator", "evaluation")
    assert f"#{evaluation.id}" in out
    assert f"test_HM={evaluation.properties['test_HM']:.2f}" in out
    assert "blessed=0" in out and "blessed=1" in out
    assert "CACHED" in out


def test_show_on_missing_store_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["pipeline", "show", "--metadata", str(tmp_path / "none.sqlite")]) == 2
    assert "no MLMD store there" in capsys.readouterr().err


def test_killed_run_recovers_with_consistent_metadata(first):
    """The run after the kill cancels the stale execution, takes upstream from the
    cache and finishes; no execution is left RUNNING."""
    stale = first["killed"].node("AvcaTrainer")
    assert stale.state == "RUNNING"
    assert f"marked executions [{stale.execution_id}]" in first["out"]
    run = first["run"]
    for node in UPSTREAM:
        assert run.node(node).state == "CACHED"
        assert f"[pipeline] {node}: served from cache" in first["out"]
    assert run.node("AvcaTrainer").state == "COMPLETE"
    assert "AvcaTrainer: resuming the interrupted training" in first["out"]
    trainer_dir = os.path.join(first["work"], "pipeline_root", "AvcaTrainer")
    assert os.listdir(os.path.join(trainer_dir, ".resume")) == []  # moved into the ModelRun
    store = mlmd_report.open_store(os.path.join(first["work"], "metadata.sqlite"))
    states = {n.execution_id: n.state for r in mlmd_report.pipeline_runs(store, "avca-toy-main")
              for n in r.nodes}
    assert states[stale.execution_id] == "CANCELED"
    assert not {"RUNNING", "NEW"} & set(states.values())
    for key in ("model", "model_run"):
        assert not os.path.exists(os.path.join(trainer_dir, key, str(stale.execution_id)))


def test_compile_kubeflow_spec_names_components_parameters_and_image(tmp_path):
    out = tmp_path / "p.json"
    rc, text = _avca("pipeline", "compile", "--kubeflow", out, "--image", "example/avca:1",
                     "--pipeline-root", "gs://bucket/root", "--epochs", "3", "--hm-threshold", "5")
    assert rc == 0, text
    spec = json.loads(out.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for name in COMPONENTS:
        assert name in tasks, sorted(tasks)
    params = {name: {k: list(v["runtimeValue"]["constantValue"].values())[0]
                     for k, v in tasks[name].get("inputs", {}).get("parameters", {}).items()}
              for name in tasks}
    trainer_cfg = json.loads(params["AvcaTrainer"]["run_config"])
    assert trainer_cfg["train"]["epochs"] == 3 and trainer_cfg["model"]["name"] == "avca"
    assert trainer_cfg["preset"] == "UCF-main" and trainer_cfg["data"]["dataset"] == "Toy"
    assert params["GZSLEvaluator"]["hm_threshold"] == 5.0
    assert params["AvcaTrainer"]["code_version"] == code_version()
    assert params["GZSLEvaluator"]["code_version"] == code_version()
    assert params["FeatureIngestion"]["dataset"] == "Toy"
    assert params["ClassEmbeddingGen"]["vectors_path"].endswith("toy_word_vectors.txt")
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values() if "container" in e}
    assert images == {"example/avca:1"}
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
    assert "AvcaTrainer" in text and "Pusher" in text


@pytest.mark.parametrize("action", ["run", "compile"])
def test_serving_and_pipeline_names_are_checked_before_anything_runs(tmp_path, capsys, action):
    """`--serving-name ../evil` would push outside the serving directory (as `avca export`,
    the pipeline refuses it); a bad --pipeline-name is refused the same way."""
    extra = (["--work-dir", tmp_path / "w"] if action == "run"
             else ["--kubeflow", tmp_path / "p.json", "--image", "example/avca:1"])
    for flag, bad in (("--serving-name", "../evil"), ("--serving-name", "a/b"),
                      ("--pipeline-name", "Bad_Name")):
        capsys.readouterr()
        rc = cli.main(["pipeline", action, *map(str, extra), flag, bad])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"error: {flag} {bad!r}: expected"), err
    assert not (tmp_path / "w").exists() and not (tmp_path / "evil").exists()
    assert not (tmp_path / "p.json").exists()


def test_default_names_carry_model_and_features():
    from pipelines.pipeline_config import default_pipeline_name, default_serving_name
    assert default_pipeline_name("avca", "Toy", "main_features") == "avca-toy-main"
    assert default_pipeline_name("tcaf", "UCF", "main_features") == "tcaf-ucf-main"
    assert default_pipeline_name("clipclap", "UCF", "clip_clap") == "clipclap-ucf-clip-clap"
    assert default_serving_name("avca", "main_features") == "avca"
    assert default_serving_name("tcaf", "main_features") == "tcaf"
    assert default_serving_name("avca", "cls_features") == "avca-cls"


def test_compile_refuses_bad_image(tmp_path, capsys):
    assert cli.main(["pipeline", "compile", "--kubeflow", str(tmp_path / "p.json"),
                     "--image", "bad image"]) == 2
    assert "--image" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_blessing_refused_for_another_input_signature():
    d = decide_blessing(50.0, 0.0, 7, None, signature_problem="the serving model X takes a")
    assert not d.blessed and d.reason.startswith("the serving model X takes a; not pushed")


def test_blessing_rule():
    assert decide_blessing(10.0, 5.0, 3, None).blessed
    assert not decide_blessing(4.9, 5.0, 3, None).blessed
    assert decide_blessing(10.0, 0.0, 3, Baseline(model_id=2, test_hm=10.0)).blessed
    worse = decide_blessing(9.0, 0.0, 3, Baseline(model_id=2, test_hm=10.0))
    assert not worse.blessed and "last blessed model #2" in worse.reason
    same = decide_blessing(10.0, 0.0, 3, Baseline(model_id=3, test_hm=10.0))
    assert not same.blessed and "already" in same.reason


def test_fingerprint_follows_file_changes(tmp_path):
    (tmp_path / "d").mkdir()
    f = tmp_path / "d" / "a.h5"
    f.write_bytes(b"1234")
    before = fingerprint([tmp_path / "d"])
    assert fingerprint([tmp_path / "d"]) == before
    f.write_bytes(b"12345")
    assert fingerprint([tmp_path / "d"]) != before


def test_pipeline_trains_a_baseline_with_its_own_preset(toy_root, tmp_path):
    """`avca pipeline run --model avgzslnet` trains exactly what `avca train --model
    avgzslnet` trains: the run directories hold the same configuration (data paths aside)."""
    work = str(tmp_path / "work")
    rc, text = _avca(*_run_args(work, toy_root, "--model", "avgzslnet"))
    assert rc == 0, text
    pipeline_run = _last_run(work, "avgzslnet-toy-main").output("AvcaTrainer", "model_run").uri
    rc, text = _avca("train", "--root", toy_root, "--dataset", "Toy", "--model", "avgzslnet",
                     *TRAIN, "--out", tmp_path / "train", "-q")
    assert rc == 0, text
    got, want = ({k: v for k, v in json.loads(open(os.path.join(d, "config.json")).read()).items()}
                 for d in (pipeline_run, str(tmp_path / "train")))
    for cfg in (got, want):
        del cfg["data"]["root"], cfg["data"]["tfrecords"]
    assert got == want
    assert got["model"]["name"] == "avgzslnet" and got["train"]["weight_decay"] == 0.0
    assert got["model"]["encoder_hidden"] == 1024 and got["preset"] == "UCF-avgzslnet-main_features"


def test_tcaf_pipeline_on_temporal_toy_data(tmp_path):
    """`avca pipeline run --model tcaf` on the temporal toy benchmark: sequences ingested
    as TFRecords, streamed to the trainer, a sequence export evaluated and pushed."""
    import numpy as np

    from avca_tf.data.synthesis.synth import synthesize
    root = tmp_path / "toy_temporal"
    synthesize(root, seed=0, scale=0.05, temporal=True)
    work = str(tmp_path / "work")
    t0 = time.monotonic()
    rc, out = _avca("pipeline", "run", "--work-dir", work, "--root", root, "--dataset", "Toy",
                    "--model", "tcaf", *TRAIN, "--batch-size", "16")
    assert rc == 0, out
    assert "model tcaf" in out
    # its own pipeline (blessing history) and serving name: never a version of `avca`
    assert "pipeline tcaf-toy-main, run" in out
    run = _last_run(work, "tcaf-toy-main")
    for node in COMPONENTS:
        assert run.node(node).state == "COMPLETE", (node, run.node(node).state)
    examples = run.output("FeatureIngestion", "examples")
    meta = json.load(open(os.path.join(examples.uri, "metadata.json")))
    assert meta["temporal"] == {"audio_step": 1.0, "video_step": 1.0}
    assert examples.properties["temporal"] == 1
    model = run.output("AvcaTrainer", "model")
    info = json.load(open(os.path.join(model.uri, "Format-Serving", "assets.extra",
                                     "avca_export.json")))
    assert info["inputs"] == "sequences" and info["sequence"]["mode"] == "max"
    results = json.load(open(os.path.join(run.output("AvcaTrainer", "model_run").uri,
                                          "results.json")))
    assert results["model"] == "tcaf"
    metrics = json.load(open(os.path.join(run.output("GZSLEvaluator", "evaluation").uri,
                                          "metrics.json")))
    # the evaluator re-scores the test videos in padded batches: the trainer's numbers
    for key in ("S", "U", "HM", "ZSL"):
        assert metrics["test"][key] == pytest.approx(100 * results["test"][key], abs=1e-6)
    assert np.isfinite(metrics["test"]["HM"])
    pushed = run.output("Pusher", "pushed_model")
    assert pushed.properties["pushed"] == 1
    assert os.path.dirname(pushed.properties["pushed_destination"]) == \
        os.path.join(work, "serving", "tcaf")
    print(f"tcaf pipeline run: {time.monotonic() - t0:.0f}s")
    # Pushing under a name whose current version takes other inputs ([B, 512] vectors, as
    # an AVCA export) is refused: not blessed, nothing pushed (trainer served from cache).
    import tensorflow as tf
    vectors = tf.Module()
    vectors.f = tf.function(lambda audio, video: {"scores": audio[:, :1] + video[:, :1]},
                            input_signature=[tf.TensorSpec([None, 512], tf.float32, "audio"),
                                             tf.TensorSpec([None, 512], tf.float32, "video")])
    foreign = os.path.join(work, "serving", "avca", "1")
    tf.saved_model.save(vectors, foreign, signatures={"serving_default": vectors.f})
    rc, out = _avca("pipeline", "run", "--work-dir", work, "--root", root, "--dataset", "Toy",
                    "--model", "tcaf", *TRAIN, "--batch-size", "16", "--serving-name", "avca")
    assert rc == 0, out
    run = _last_run(work, "tcaf-toy-main")
    assert run.node("AvcaTrainer").state == "CACHED"
    assert run.output("Pusher", "pushed_model").properties.get("pushed", 0) == 0
    assert os.listdir(os.path.join(work, "serving", "avca")) == ["1"]
    assert f"the serving model {os.path.join(work, 'serving', 'avca')} (version 1) takes " \
           "audio float32[-1, 512], video float32[-1, 512]" in out
    assert "not blessed" in out


def test_code_version_follows_source_changes(tmp_path):
    """The trainer's cache key: a code change trains again instead of serving an old model."""
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "m.py").write_text("X = 1\n")
    pkg = types.SimpleNamespace(__name__="pkg", __file__=str(tmp_path / "pkg" / "__init__.py"))
    before = code_version([pkg])
    (tmp_path / "pkg" / "sub" / "notes.txt").write_text("not code")
    assert code_version([pkg]) == before
    (tmp_path / "pkg" / "sub" / "m.py").write_text("X = 2\n")
    assert code_version([pkg]) != before
