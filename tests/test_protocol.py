"""Two-stage protocol on the toy benchmark: learning, resume, evaluate, load_run, bad input."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from avca_tf import cli
from avca_tf.data.formats.benchmark import Split, load_benchmark
from avca_tf.errors import ConfigError
from avca_tf.models import get_preset
from avca_tf.training.protocol import load_run, run_protocol

EPOCHS, N_BATCHES, BATCH = 3, 15, 64


@pytest.fixture(scope="module")
def toy(toy_root):
    return load_benchmark(toy_root, "Toy", "main_features")


@pytest.fixture(scope="module")
def cfg(toy_root):
    c = get_preset("avca", "Toy", "main_features", root=str(toy_root))
    return c.replace(train=dataclasses.replace(c.train, epochs=EPOCHS, n_batches=N_BATCHES,
                                               batch_size=BATCH, seed=0))


@pytest.fixture(scope="module")
def finished(toy, cfg, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    results = run_protocol(toy, cfg, str(run_dir), verbose=0)
    return run_dir, results


def test_two_stage_run_beats_chance_on_unseen(finished, toy):
    run_dir, res = finished
    test = toy.protocol(2)
    chance_u = 1 / (len(test.seen_class_ids) + len(test.unseen_class_ids))
    assert res["test"]["U"] > 2 * chance_u
    assert res["test"]["HM"] > 2 * chance_u
    assert len(res["stage1"]["epochs"]) == EPOCHS
    best = max(res["stage1"]["epochs"], key=lambda e: e["HM"])
    assert res["stage1"]["best_epoch"] == best["epoch"]
    assert res["stage1"]["beta"] == best["beta"]
    assert res["test"]["beta"] == best["beta"]
    assert len(res["stage2"]["epochs"]) == best["epoch"]
    assert res["test"]["num_unseen_samples"] == len(test.eval_unseen)
    for name in ("config.json", "results.json", "model/model.weights.h5", "checkpoints/stage1",
                 "checkpoints/stage2", "logs/stage1"):
        assert (run_dir / name).exists(), name
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run_dir / "logs" / "stage1"))


def test_evaluate_recomputes_results_and_load_run(finished, capsys):
    run_dir, res = finished
    assert cli.main(["evaluate", str(run_dir)]) == 0
    assert "matches results.json" in capsys.readouterr().out
    loaded = load_run(str(run_dir))
    assert loaded.beta == res["test"]["beta"]
    assert loaded.class_names[0] < loaded.class_names[-1]
    assert loaded.label_embeddings.shape == (len(loaded.class_names), 300)
    assert set(loaded.unseen_ids).isdisjoint(loaded.seen_ids)


def _train_cmd(toy_root, out, *extra):
    return [sys.executable, "-m", "avca_tf.cli", "train", "--root", str(toy_root), "--dataset",
            "Toy", "--out", str(out), "--epochs", str(EPOCHS), "--n-batches", str(N_BATCHES),
            "--batch-size", str(BATCH), "--seed", "0", "-q", *extra]


def test_sigkilled_run_resumes_to_identical_results(toy_root, tmp_path):
    """A real SIGKILL during stage 1, then --resume, against an uninterrupted run.

    Each run is its own process, as a user runs them; results.json must be
    identical, to the last bit of every loss and metric.
    """
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(_train_cmd(toy_root, full), check=True, capture_output=True)
    proc = subprocess.Popen(_train_cmd(toy_root, killed), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first_checkpoint = killed / "checkpoints" / "stage1" / "ckpt-1.index"
    deadline = time.monotonic() + 300
    while not first_checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "results.json").exists()
    refused = subprocess.run(_train_cmd(toy_root, killed), capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    subprocess.run(_train_cmd(toy_root, killed, "--resume"), check=True, capture_output=True)
    resumed = json.loads((killed / "results.json").read_text())
    assert [e["epoch"] for e in resumed["stage1"]["epochs"]] == list(range(1, EPOCHS + 1))
    assert resumed == json.loads((full / "results.json").read_text())


def test_run_dir_with_another_config_is_refused(finished, toy, cfg):
    run_dir, results = finished
    before = {p: p.read_bytes() for p in run_dir.glob("*.json")}
    # precision "auto" (AVCA's preset) is recorded resolved, and that is the same config
    from avca_tf.training.trainer import resolve_precision
    assert cfg.train.precision == "auto"
    recorded = json.loads((run_dir / "config.json").read_text())["train"]["precision"]
    assert recorded == resolve_precision("auto") != "auto"
    assert run_protocol(toy, cfg, str(run_dir), resume=True, verbose=0) == results
    other = cfg.replace(train=dataclasses.replace(cfg.train, seed=7))
    with pytest.raises(ConfigError, match=r"different configuration \(train.seed: 0"):
        run_protocol(toy, other, str(run_dir), resume=True, verbose=0)
    assert before == {p: p.read_bytes() for p in run_dir.glob("*.json")}


def _empty_like(split: Split) -> Split:
    return dataclasses.replace(split, audio=split.audio[:0], video=split.video[:0],
                               labels=split.labels[:0], video_ids=split.video_ids[:0],
                               class_ids=split.class_ids[:0])


@pytest.mark.parametrize("stage,match", [
    ("stage_1_val_unseen", "stage 1 .* no unseen classes"),
    ("stage_2_test_unseen", "stage 2 .* no unseen classes"),
    ("stage_1_train", "stage 1 .* empty training set"),
])
def test_bad_benchmarks_are_refused_before_writing(toy, cfg, tmp_path, stage, match):
    bad = dataclasses.replace(toy, splits={**toy.splits, stage: _empty_like(toy.splits[stage])})
    with pytest.raises(ConfigError, match=match):
        run_protocol(bad, cfg, str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()


def test_feature_width_mismatch_via_cli_exits_2(toy_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "--root", str(toy_root), "--dataset", "Toy", "--features",
                     "main_features", "--preset", "UCF-cls", "--out", str(out), "--quick"])
    assert code == 2
    err = capsys.readouterr().err
    assert "audio features of Toy/main_features are 512-d but the model expects audio_dim=128" in err
    assert not out.exists()


def test_not_a_run_dir_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a finished run"):
        load_run(str(tmp_path))
    assert cli.main(["evaluate", str(tmp_path)]) == 2


def test_results_are_json_numbers(finished):
    run_dir, _ = finished
    res = json.loads((run_dir / "results.json").read_text())
    values = [res["test"][k] for k in ("S", "U", "HM", "ZSL")]
    assert all(isinstance(v, float) and 0 <= v <= 1 and np.isfinite(v) for v in values)
