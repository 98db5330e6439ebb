"""One writer per published output, with real concurrent processes (issue 12, cases 1-3).

- the owner lock itself: refusal names the holder, a killed holder's lock is recovered;
- two `avca train` into one --out: the second (with or without --resume) is refused while
  the first trains, and the first finishes normally;
- two `avca export` of two runs into one serving base at once: two versions, each with
  its own run;
- two `avca pipeline run` sharing a pipeline root: the second is refused before it
  writes; the first run's model stays published and loads in a fresh process.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from avca_tf.locking import LockedError, lock_file, output_lock, read_holder
from avca_tf.serving.export import load_export_info

TIMEOUT = 600


def _env():
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


class _Proc:
    """`avca ARGV` in a new process, its output in files (no pipe can fill up)."""

    def __init__(self, log_dir, name, *argv):
        self.out_path, self.err_path = (os.path.join(log_dir, f"{name}.{k}") for k in ("out", "err"))
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "avca_tf.cli", *map(str, argv)],
                                         stdout=out, stderr=err, env=_env())
        self.pid = self.proc.pid

    def poll(self):
        return self.proc.poll()

    def communicate(self, timeout=TIMEOUT):
        self.proc.wait(timeout=timeout)
        self.returncode = self.proc.returncode
        with open(self.out_path) as out, open(self.err_path) as err:
            return out.read(), err.read()


def _avca(*argv):
    return subprocess.run([sys.executable, "-m", "avca_tf.cli", *map(str, argv)],
                          capture_output=True, text=True, env=_env(), timeout=TIMEOUT)


def _error(stderr: str) -> str:
    """The `error: ...` line of a failed command (TF's start-up log lines may precede it)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def _wait_for_holder(target, proc, timeout=300):
    """The holder record of `target`'s lock once `proc` has taken it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = read_holder(lock_file(target))
        if holder is not None and holder.pid == proc.pid:
            return holder
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the first process ended (rc {proc.returncode}) before taking the "
                        f"lock of {target}:\n{out[-2000:]}\n{err[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"no lock on {target} after {timeout}s")


def test_lock_names_holder_and_recovers_from_a_killed_holder(tmp_path, capsys):
    target = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from avca_tf.locking import output_lock
        with output_lock({str(target)!r}, "test output"):
            time.sleep(120)
        """)], env=_env())
    try:
        record = _wait_for_holder(str(target), holder, timeout=60)
        assert record.host == socket.gethostname()
        with pytest.raises(LockedError) as err:
            with output_lock(str(target), "test output"):
                pass
        msg = str(err.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in msg
        assert record.started in msg and "Wait for it to finish" in msg
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        capsys.readouterr()
        # the kernel released the dead holder's flock: the next writer goes ahead
        with output_lock(str(target), "test output"):
            assert read_holder(lock_file(str(target))).pid == os.getpid()
        assert f"left by a process that ended without releasing it (pid {holder.pid}" in \
            capsys.readouterr().err
        assert not os.path.exists(lock_file(str(target)))  # a clean release leaves nothing
        assert not target.exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture(scope="module")
def raced_run(toy_root, tmp_path_factory):
    """`avca train` A into RUN, and B (--resume) plus C (no --resume) into RUN while A trains."""
    logs = tmp_path_factory.mktemp("race")
    run = logs / "run"
    train = ["train", "--root", toy_root, "--dataset", "Toy", "--quick", "--epochs", "2",
             "--n-batches", "12", "--out", run, "-q"]
    first = _Proc(logs, "first", *train)
    holder = _wait_for_holder(str(run), first)
    second = _avca(*train, "--resume")
    third = _avca(*train)
    still_running = first.poll() is None
    out, err = first.communicate(timeout=TIMEOUT)
    return dict(run=run, first=(first.returncode, out, err), second=second, third=third,
                holder=holder, still_running=still_running)


@pytest.mark.parametrize("which", ["second", "third"])
def test_second_train_into_one_out_is_refused(raced_run, which):
    """Case 3: a concurrent `avca train --resume` (and one without) is refused, naming A."""
    assert raced_run["still_running"], "the first run finished before the others were refused"
    proc = raced_run[which]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert _error(proc.stderr).startswith("error: run directory")
    assert "Traceback" not in proc.stderr
    holder = raced_run["holder"]
    assert f"pid {holder.pid} on host {holder.host}, started {holder.started}" in proc.stderr


def test_first_train_finishes_alone(raced_run):
    rc, out, err = raced_run["first"]
    assert rc == 0, err[-3000:]
    run = raced_run["run"]
    assert json.loads((run / "results.json").read_text())["seed"] == 42
    for stage in ("stage1", "stage2"):  # one writer: one TensorBoard event file per stage
        assert len(os.listdir(run / "logs" / stage)) == 1
    assert not os.path.exists(lock_file(str(run)))


def test_concurrent_exports_get_two_versions(raced_run, tmp_path):
    """Case 1: two exports of two runs into one base at once: versions 1 and 2, each with
    its own run; neither replaced the other."""
    run_a = raced_run["run"]
    run_b = tmp_path / "run_b"
    shutil.copytree(run_a, run_b)
    base = tmp_path / "serving"
    procs = [_Proc(tmp_path, f"export{i}", "export", r, "--out", base)
             for i, r in enumerate((run_a, run_b))]
    results = [(p, *p.communicate()) for p in procs]
    for p, out, err in results:
        assert p.returncode == 0, err[-3000:]
    printed = sorted(line.split()[1] for _, out, _ in results for line in out.splitlines()
                     if line.startswith("exported "))
    assert printed == [str(base / "avca" / "1"), str(base / "avca" / "2")]
    assert sorted(os.listdir(base / "avca")) == ["1", "2"]
    runs = {load_export_info(str(base / "avca" / v))["run_dir"] for v in ("1", "2")}
    assert runs == {str(run_a), str(run_b)}
    for v in ("1", "2"):
        info = load_export_info(str(base / "avca" / v))
        assert info["version"] == int(v)
        assert (base / "avca" / v / "saved_model.pb").is_file()
    assert '"/models/avca"' in (base / "models.config").read_text()
    assert sorted(os.listdir(base)) == ["avca", "models.config"]  # no lock or temp left


def test_pipeline_root_shared_second_run_refused(toy_root, tmp_path):
    """Case 2: a second `avca pipeline run` with its own work dir but the same pipeline root
    is refused before it writes; the first run's model stays published and loadable."""
    root = tmp_path / "pipeline_root"
    common = ["pipeline", "run", "--root", toy_root, "--dataset", "Toy", "--preset", "quick",
              "--epochs", "1", "--n-batches", "3", "--pipeline-root", root]
    first = _Proc(tmp_path, "first", *common, "--work-dir", tmp_path / "w1")
    holder = _wait_for_holder(str(root), first)
    second = _avca(*common, "--work-dir", tmp_path / "w2")
    still_running = first.poll() is None
    out, err = first.communicate(timeout=TIMEOUT)
    assert still_running
    assert second.returncode == 2, second.stderr[-3000:]
    assert _error(second.stderr).startswith(f"error: pipeline root {root} is being written")
    assert f"pid {holder.pid} on host {holder.host}" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (tmp_path / "w2").exists()  # refused before writing anything
    assert first.returncode == 0, err[-3000:]
    pushed = [line.split(":", 1)[1].strip() for line in out.splitlines()
              if line.startswith("pushed model:")]
    assert len(pushed) == 1 and os.path.isfile(os.path.join(pushed[0], "saved_model.pb"))
    from pipelines import mlmd_report
    run = mlmd_report.pipeline_runs(
        mlmd_report.open_store(str(tmp_path / "w1" / "metadata.sqlite")), "avca-toy-main")[-1]
    model = run.output("AvcaTrainer", "model")
    assert run.node("AvcaTrainer").state == "COMPLETE" and os.listdir(model.uri)
    # issue 29 (HIGH, data loss): the same second run after the first has finished, with its
    # own (new) MLMD store and another seed, would reuse execution ids from 1 and delete the
    # first store's artifacts; the pipeline root is bound to w1's store, so it is refused
    files_before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    again = _avca(*common, "--work-dir", tmp_path / "w2", "--seed", "3")
    assert again.returncode == 2, again.stderr[-3000:]
    assert _error(again.stderr).startswith(
        f"error: --pipeline-root {root} holds the artifacts of the MLMD store "
        f"{tmp_path / 'w1' / 'metadata.sqlite'}")
    assert "Traceback" not in again.stderr and not (tmp_path / "w2" / "metadata.sqlite").exists()
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == files_before
    model_run = run.output("AvcaTrainer", "model_run")
    assert os.path.isfile(os.path.join(model_run.uri, "results.json"))
    # the pushed model serves in a fresh process
    probe = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys, numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
        m = tf.saved_model.load(sys.argv[1])
        f = m.signatures["serving_default"]
        d_a, d_v = (f.structured_input_signature[1][k].shape[1] for k in ("audio", "video"))
        out = f(audio=tf.ones([2, d_a]), video=tf.ones([2, d_v]))
        assert np.isfinite(out["scores"].numpy()).all()
        print("classes", out["classes"].shape)
        """), pushed[0]], capture_output=True, text=True, timeout=TIMEOUT)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert "classes (2, " in probe.stdout
    # case 7, pipeline side: a flipped byte in the cached ingestion output is found before
    # the next run and the artifact is taken out of the cache (DELETED), so it re-ingests
    store = mlmd_report.open_store(str(tmp_path / "w1" / "metadata.sqlite"), readonly=False)
    examples = run.output("FeatureIngestion", "examples")
    assert mlmd_report.invalidate_corrupt_examples(store, "avca-toy-main") == []
    shard = os.path.join(examples.uri, "stage_1_train", sorted(
        os.listdir(os.path.join(examples.uri, "stage_1_train")))[0])
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 3] ^= 0x10
    open(shard, "wb").write(bytes(data))
    [(uri, problem)] = mlmd_report.invalidate_corrupt_examples(store, "avca-toy-main")
    assert uri == examples.uri and problem.startswith(f"{shard}: corrupt")
    from ml_metadata.proto import metadata_store_pb2
    [artifact] = store.get_artifacts_by_id([examples.id])
    assert artifact.state == metadata_store_pb2.Artifact.DELETED
