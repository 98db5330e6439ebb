"""Beam's portable runner, as Flink, Spark and Dataflow Runner v2 use it: a local Python job
server and an external worker pool (real processes on free localhost ports, stopped by pid).
`avca ingest` and a two-run `avca reproduce --quick` through PortableRunner write the same
outputs, bit for bit, as through DirectRunner."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_ports

from avca_tf import cli
from avca_tf.data.synthesis.synth import synthesize

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 90
RUNS = "avca,avgzslnet"   # two rows of Table 3: a two-run reproduce


def _wait_port(port, proc, log):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {Path(log).read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on localhost:{port} after {START_TIMEOUT_S}s")


def _stop(proc):
    """Stops a process we started and the workers it spawned (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def portable_services(tmp_path):
    """(job endpoint, worker pool endpoint); the pool's workers run this venv's python
    (first on PATH) and import this checkout (PYTHONPATH)."""
    job_port, pool_port = free_ports(2)
    venv_bin = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in os.environ.get(
                   "PYTHONPATH", "").split(os.pathsep) if p]), TF_CPP_MIN_LOG_LEVEL="2")
    procs = []
    try:
        for name, args, port in (
                ("pool", ["apache_beam.runners.worker.worker_pool_main",
                          f"--service_port={pool_port}"], pool_port),
                ("jobserver", ["apache_beam.runners.portability.local_job_service_main",
                               f"--port={job_port}"], job_port)):
            log = tmp_path / f"{name}.log"
            with open(log, "w") as fh:
                procs.append(subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=fh,
                                              stderr=subprocess.STDOUT, start_new_session=True))
            _wait_port(port, procs[-1], log)
        yield f"localhost:{job_port}", f"localhost:{pool_port}"
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _files(folder: Path) -> dict:
    """Files by relative path; Keras .weights.h5 as their arrays (the files hold HDF5
    timestamps)."""
    import h5py
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.name.endswith(".weights.h5"):
            arrays = {}
            with h5py.File(p, "r") as f:
                f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()].tobytes())
                             if isinstance(obj, h5py.Dataset) else None)
            out[str(p.relative_to(folder))] = arrays
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


def _records(folder: Path) -> dict:
    """Per folder, the sorted TFRecord payloads of its shards (shard boundaries are the
    runner's choice; the records are not)."""
    import tensorflow as tf
    out = {}
    for shard in sorted(folder.rglob("*.tfrecord")):
        key = str(shard.parent.relative_to(folder))
        out.setdefault(key, []).extend(
            r.numpy() for r in tf.data.TFRecordDataset(str(shard)))
    return {k: sorted(v) for k, v in out.items()}


def test_ingest_and_reproduce_through_portable_runner(portable_services, tmp_path,
                                                       ucf_main_root, capsys):
    job, pool = portable_services
    portable = ["--", "--runner=PortableRunner", f"--job_endpoint={job}",
                "--environment_type=EXTERNAL", f"--environment_config={pool}"]
    toy = tmp_path / "toy"
    synthesize(toy, seed=0, scale=0.1)

    ingest = ["ingest", "--root", str(toy), "--dataset", "Toy", "--features", "main_features"]
    assert cli.main(ingest + ["--out", str(tmp_path / "tf_portable")] + portable) == 0
    assert cli.main(ingest + ["--out", str(tmp_path / "tf_direct")]) == 0
    p_recs, d_recs = _records(tmp_path / "tf_portable"), _records(tmp_path / "tf_direct")
    assert p_recs == d_recs and sum(map(len, p_recs.values())) > 100
    for name in ("metadata.json",):
        assert (tmp_path / "tf_portable" / name).read_bytes() == \
            (tmp_path / "tf_direct" / name).read_bytes()

    rep = ["reproduce", "--root", str(ucf_main_root), "--table", "3", "--quick",
           "--models", RUNS, "-q"]
    capsys.readouterr()
    assert cli.main(rep + ["--out", str(tmp_path / "rep_portable")] + portable) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs to train on PortableRunner" in out
    assert cli.main(rep + ["--out", str(tmp_path / "rep_direct"), "--",
                           "--direct_running_mode=in_memory"]) == 0
    p_files, d_files = _files(tmp_path / "rep_portable"), _files(tmp_path / "rep_direct")
    results = sorted(k for k in p_files if k.endswith("results.json"))
    assert results == ["runs/UCF/main_features/avca/seed42-quick/results.json",
                       "runs/UCF/main_features/avgzslnet/seed42-quick/results.json"]
    for name in results + ["table3.csv", "table3.md"] + [
            k for k in p_files if k.endswith("model.weights.h5")]:
        assert p_files[name] == d_files[name], name
