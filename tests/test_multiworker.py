"""`avca train --strategy multi-worker`: two real worker processes (MultiWorkerMirroredStrategy,
TF_CONFIG, free localhost ports) train one run; both end with the same weights, and the
run's training losses match a single-worker run's with the same global batch within a
measured tolerance that holds on both CPU kinds (AMX Xeon, AVX512-BF16 EPYC)."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import free_ports

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 420

# What must agree between the two-worker and the single-worker run of one global batch:
# the training losses, per epoch of each stage, up to the differences the strategy makes
# (dropout masks drawn per replica, BN statistics synchronised, the gradient all-reduce
# summing in another order). Measured (toy benchmark, quick run: 2 epochs x 5 batches of
# 64 = 2 x 32 per worker): 0.3-2.2 % on the AMX Xeon (bf16 matmuls), 0.5-2.1 % on the AMD EPYC
# (AVX512-BF16). Asserted with headroom. Test metrics are not compared: after 10 steps
# they are near chance and move by several points with any such difference (ZSL 14.5 vs
# 4.9 % on the EPYC), so no tolerance for them holds on both CPU kinds.
LOSS_RTOL = 0.05


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _weights(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def test_two_worker_processes_train_one_run(toy_root, tmp_path):
    train = [sys.executable, "-m", "avca_tf.cli", "train", "--root", str(toy_root),
             "--dataset", "Toy", "--quick", "-q"]
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs, logs = [], []
    try:
        for i in range(2):
            logs.append(open(tmp_path / f"worker{i}.log", "w"))
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            procs.append(subprocess.Popen(
                train + ["--out", str(tmp_path / "mw"), "--strategy", "multi-worker"],
                env=_env(TF_CONFIG=tf_config), stdout=logs[-1], stderr=subprocess.STDOUT))
        logs.append(open(tmp_path / "single.log", "w"))
        procs.append(subprocess.Popen(train + ["--out", str(tmp_path / "single")], env=_env(),
                                      stdout=logs[-1], stderr=subprocess.STDOUT))
        for p in procs:
            p.wait(timeout=TIMEOUT_S)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()
    for name, p in zip(("worker0", "worker1", "single"), procs):
        assert p.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]

    chief, other, single = tmp_path / "mw", tmp_path / "mw.worker1", tmp_path / "single"
    assert json.loads((chief / "config.json").read_text())["train"]["strategy"] == "multi-worker"
    # every worker holds the same variables, bit for bit
    w0, w1 = _weights(chief / "model" / "model.weights.h5"), _weights(other / "model" / "model.weights.h5")
    assert w0.keys() == w1.keys() and len(w0) > 10
    for name in w0:
        assert np.array_equal(w0[name], w1[name]), name
    r0, r1 = (json.loads((d / "results.json").read_text()) for d in (chief, other))
    assert r0 == r1

    # same global batch on one worker: the same run up to the measured tolerance
    rs = json.loads((single / "results.json").read_text())
    for stage in ("stage1", "stage2"):
        mw_loss = [e["loss"]["total"] for e in r0[stage]["epochs"]]
        one_loss = [e["loss"]["total"] for e in rs[stage]["epochs"]]
        if len(mw_loss) == len(one_loss):
            np.testing.assert_allclose(mw_loss, one_loss, rtol=LOSS_RTOL)
    first = r0["stage1"]["epochs"][0]["loss"]["total"], rs["stage1"]["epochs"][0]["loss"]["total"]
    assert first[0] == pytest.approx(first[1], rel=LOSS_RTOL)
    # both ran the whole protocol: the same schedule, a chosen beta, test metrics in range
    for r in (r0, rs):
        assert len(r["stage1"]["epochs"]) == 2 and r["stage1"]["best_epoch"] in (1, 2)
        assert all(0.0 <= r["test"][m] <= 1.0 for m in ("S", "U", "HM", "ZSL"))
    # and it is a different computation, not the single-worker one run twice
    assert r0["stage1"]["epochs"] != rs["stage1"]["epochs"]
