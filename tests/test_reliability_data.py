"""Issue 29, data and runtime side: each defect of the hostile sweep, reproduced.

Atomic replacement under a kill, locks on read inputs, early refusals that
leave nothing behind, damaged run directories, disk full, TF_CONFIG and Beam
options, temporaries of killed writers, a lost multi-worker peer.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from avca_tf import cli
from avca_tf.io_utils import atomic_path, remove_temporaries
from avca_tf.locking import input_lock, lock_file, output_lock

AVCA = [sys.executable, "-m", "avca_tf.cli"]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""),
               **extra)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _error(text):
    lines = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert lines, text[-3000:]
    return lines[-1]


def test_streaming_with_mirrored_is_refused_before_anything_is_written(tmp_path, capsys):
    """Before: refused by the Trainer after config.json was written, so the corrected retry
    into the same --out was refused as 'a different configuration'."""
    tfrec = tmp_path / "tfrecords"
    tfrec.mkdir()
    out = tmp_path / "run"
    rc = cli.main(["train", "--tfrecords", str(tfrec), "--dataset", "Toy", "--model", "tcaf",
                   "--strategy", "mirrored", "--out", str(out)])
    assert rc == 2
    assert "trains with strategy 'default' only" in capsys.readouterr().err
    assert not out.exists()


def test_replacing_a_directory_is_atomic_under_a_kill(tmp_path):
    """The process dies right after the swap's first rename (the step where the old code had
    already deleted the old directory): the output is the old or the new one, never absent."""
    target = tmp_path / "out"
    target.mkdir()
    (target / "v").write_text("old")
    script = textwrap.dedent(f"""
        import os, signal
        from avca_tf import io_utils
        real = os.replace
        def replace_then_die(src, dst):
            real(src, dst)
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace_then_die
        os.rename = replace_then_die
        with io_utils.atomic_path({str(target)!r}) as tmp:
            os.makedirs(tmp)
            open(os.path.join(tmp, "v"), "w").write("new")
        """)
    r = subprocess.run([sys.executable, "-c", script], env=_env(), timeout=120)
    assert r.returncode == -9 or r.returncode == 0
    assert (target / "v").read_text() in ("old", "new")
    # the leftover temporary is removed by the next writer holding the lock
    left = [n for n in os.listdir(tmp_path) if n.startswith(".out.")]
    assert remove_temporaries(str(tmp_path), "out") == sorted(left)
    assert os.listdir(tmp_path) == ["out"]


def test_atomic_path_replaces_and_keeps_on_failure(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_path(str(target)) as tmp:
            os.makedirs(tmp)
            raise RuntimeError("boom")
    assert (target / "a").read_text() == "1"
    with atomic_path(str(target)) as tmp:
        os.makedirs(tmp)
        (tmp_path / os.path.basename(tmp) / "b").write_text("2")
    assert os.listdir(target) == ["b"] and os.listdir(tmp_path) == ["d"]


def test_tfrecords_being_read_are_not_rewritten_and_vice_versa(tmp_path, toy_root, capsys):
    """Before: re-ingesting into the TFRecords a training streams made it die with
    UnicodeDecodeError; the training now holds a shared lock on its input."""
    tfrec = tmp_path / "tfrecords"
    tfrec.mkdir()
    with input_lock(str(tfrec), "TFRecords"):
        with input_lock(str(tfrec), "TFRecords"):  # readers share
            pass
        rc = cli.main(["ingest", "--root", str(toy_root), "--dataset", "Toy", "--features",
                       "main_features", "--out", str(tfrec)])
        err = capsys.readouterr().err
        assert rc == 2 and "is being written or read by another process" in err, err
    assert not os.path.exists(lock_file(str(tfrec)))  # the last reader removed it
    with output_lock(str(tfrec), "ingest output"):
        rc = cli.main(["train", "--tfrecords", str(tfrec), "--dataset", "Toy", "--quick",
                       "--out", str(tmp_path / "run")])
        err = capsys.readouterr().err
        assert rc == 2 and f"TFRecords {tfrec} is being written by another process: pid " \
            f"{os.getpid()}" in err, err


def test_a_directory_where_the_lock_file_goes_is_an_error(tmp_path, toy_root, capsys):
    out = tmp_path / "run"
    os.makedirs(lock_file(str(out)))
    rc = cli.main(["train", "--root", str(toy_root), "--dataset", "Toy", "--quick",
                   "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"error: {lock_file(str(out))} is a directory"), err


@pytest.fixture(scope="module")
def finished_run(toy_root, tmp_path_factory):
    run = tmp_path_factory.mktemp("damaged") / "run"
    assert cli.main(["train", "--root", str(toy_root), "--dataset", "Toy", "--quick",
                     "--epochs", "2", "--out", str(run), "-q"]) == 0
    return run


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def test_damaged_config_json_names_the_file(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    (run / "config.json").write_text("{not json")
    for argv in (["evaluate", str(run)], ["export", str(run), "--out", str(tmp_path / "s")],
                 ["train", "--root", json.loads((finished_run / "config.json").read_text())[
                     "data"]["root"], "--dataset", "Toy", "--quick", "--out", str(run),
                  "--resume"]):
        rc = cli.main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and f"{run / 'config.json'}: damaged run file, not JSON" in err, (argv, err)
    assert not (tmp_path / "s" / "avca").exists()  # no empty model directory left


def test_truncated_weights_name_the_file(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    weights = run / "model" / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[:2000])
    rc = cli.main(["export", str(run), "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{weights}: damaged weights file" in err, err
    assert "Traceback" not in err and not (tmp_path / "s" / "avca").exists()


def test_flipped_checkpoint_byte_on_resume_names_the_checkpoint(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    for name in ("results.json", "model"):  # an unfinished run: --resume restores stage 2
        p = run / name
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    ckpts = run / "checkpoints" / "stage2"
    data = sorted(ckpts.glob("ckpt-*.data-*"))[-1]
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    (ckpts / "ckpt-9_temp").mkdir()  # what a kill during a save leaves
    cfg = json.loads((run / "config.json").read_text())
    rc = cli.main(["train", "--root", cfg["data"]["root"], "--dataset", "Toy", "--quick",
                   "--epochs", "2", "--out", str(run), "--resume", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "checkpoint " in err and "is damaged" in err, err
    assert str(ckpts) in _error(err) and not (ckpts / "ckpt-9_temp").exists()


def test_disk_full_is_an_error_not_a_traceback(tmp_path):
    """A 256 KiB tmpfs (in a user+mount namespace) fills up during `avca synth`."""
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.decode()[:200]}")
    small = tmp_path / "small"
    small.mkdir()
    cmd = (f"mount -t tmpfs -o size=256k tmpfs {small} && "
           f"{sys.executable} -m avca_tf.cli synth --out {small}/toy")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True,
                       env=_env(), timeout=300)
    assert r.returncode == 2, r.stderr[-3000:]
    assert _error(r.stderr).startswith("error: no space left on device")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("tf_config, message", [
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}',
     "TF_CONFIG task index 3 is out of range: the cluster has 1 worker task(s)"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "ps", "index": 0}}',
     "TF_CONFIG task type 'ps' is not in the cluster"),
    ("{not json", "TF_CONFIG is not JSON"),
])
def test_tf_config_mistakes_are_errors(monkeypatch, tf_config, message):
    from avca_tf.errors import ConfigError
    from avca_tf.training.trainer import check_tf_config
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_tf_config()


def test_a_missing_worker_ends_in_an_error_not_a_hang(toy_root, tmp_path):
    """Before: MultiWorkerMirroredStrategy waited forever in C++, ignoring SIGTERM/SIGINT."""
    from conftest import free_ports
    ports = free_ports(2)
    tf_config = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                            "task": {"type": "worker", "index": 1}})
    t0 = time.monotonic()
    r = subprocess.run(AVCA + ["train", "--root", str(toy_root), "--dataset", "Toy", "--quick",
                               "--strategy", "multi-worker", "--out", str(tmp_path / "run"), "-q"],
                       capture_output=True, text=True, timeout=240,
                       env=_env(TF_CONFIG=tf_config, AVCA_WORKER_WAIT_S="3"))
    assert r.returncode != 0
    assert _error(r.stderr).startswith("error: multi-worker training (worker 1): the other "
                                       f"workers (worker 0 (localhost:{ports[0]})) did not all "
                                       "join within 3s (AVCA_WORKER_WAIT_S)")
    assert time.monotonic() - t0 < 200


def test_killed_sweep_work_folders_are_removed(tmp_path):
    from avca_tf.beam.sweep import remove_dead_sweep_dirs
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".sweep-{dead.pid}-1").mkdir()
    (tmp_path / f".sweep-{os.getpid()}-1").mkdir()  # a live sweep's: kept
    assert remove_dead_sweep_dirs(str(tmp_path), log=lambda m: None) == [f".sweep-{dead.pid}-1"]
    assert os.listdir(tmp_path) == [f".sweep-{os.getpid()}-1"]


def test_safe_npy_of_a_run_keeps_float32(tmp_path):
    from avca_tf.safe_load import load_npy
    np.save(tmp_path / "e.npy", np.ones((2, 3), np.float32))
    assert load_npy(str(tmp_path / "e.npy")).dtype == np.float32


def test_clip_clap_benchmark_without_stage_2_train_folders(tmp_path, capsys):
    """The authors' ClipClap-GZSL and TCaF loaders never read stage_2_train; a copy of their
    layout without those folders was refused ("missing folder"). Stage 2 is built from the
    three stage-1 folders, as it always was."""
    from avca_tf.data.formats.benchmark import Layout, load_benchmark
    from avca_tf.data.synthesis.synth import synthesize
    root = tmp_path / "b"
    synthesize(root, seed=0, feature_set="clip_clap", scale=0.3)
    full = load_benchmark(root, "Toy", "clip_clap")
    layout = Layout(root, "Toy", "clip_clap")
    for m in ("audio", "video"):
        shutil.rmtree(layout.stage_dir(m, "stage_2_train"))
    bench = load_benchmark(root, "Toy", "clip_clap")
    for stage in ("stage_1_train", "stage_2_test_seen", "stage_2_test_unseen"):
        assert np.array_equal(bench.splits[stage].audio, full.splits[stage].audio)
    got, want = bench.protocol(2).train, full.protocol(2).train
    assert np.array_equal(got.audio, want.audio) and np.array_equal(got.labels, want.labels)
    assert cli.main(["inspect", str(root), "--dataset", "Toy", "--features", "clip_clap"]) == 0
    assert "stage_2_train" in capsys.readouterr().out
