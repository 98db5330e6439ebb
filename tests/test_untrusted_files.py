"""No data file can run code: malicious .npy and .pkl files through the real command line.

Each file holds an object whose `__reduce__` returns `os.system("touch MARKER")`;
an unrestricted `np.load(allow_pickle=True)` or `pickle.load` would create the
marker. Every command must refuse the file with `error:` naming it, exit 2,
and the marker must never exist.
"""
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

from avca_tf.data.formats.benchmark import Layout
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.safe_load import UnsafeFileError, load_npy, load_pickle

AVCA = [sys.executable, "-m", "avca_tf.cli"]


class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_npy(path, marker):
    np.save(path, np.array({"class a": _RunsCode(marker)}, dtype=object), allow_pickle=True)


def _avca(*args):
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(AVCA + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300, env=env)


def _refused(r, path, marker):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert errors and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert str(path) in errors[-1] and "posix.system" in errors[-1], r.stderr
    assert not marker.exists(), "the data file ran code"


def test_loader_refuses_code_and_keeps_arrays(tmp_path):
    marker = tmp_path / "ran"
    _evil_npy(tmp_path / "evil.npy", marker)
    with pytest.raises(UnsafeFileError, match="posix.system"):
        load_npy(str(tmp_path / "evil.npy"))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"features": [_RunsCode(marker)]}))
    with pytest.raises(UnsafeFileError, match="posix.system"):
        load_pickle(str(tmp_path / "evil.pkl"))
    assert not marker.exists()
    good = {"a": np.arange(3, dtype=np.float32), "b": np.ones(2)}
    np.save(tmp_path / "good.npy", good, allow_pickle=True)
    back = load_npy(str(tmp_path / "good.npy"))
    assert back.keys() == good.keys() and np.array_equal(back["a"], good["a"])
    np.save(tmp_path / "plain.npy", np.eye(2))
    assert np.array_equal(load_npy(str(tmp_path / "plain.npy")), np.eye(2))


@pytest.fixture(scope="module")
def evil_root(tmp_path_factory, toy_root):
    root = tmp_path_factory.mktemp("evil_benchmark")
    shutil.copytree(toy_root, root, dirs_exist_ok=True)
    marker = root / "ran"
    emb = Layout(root, "Toy", "main_features").embeddings_file
    _evil_npy(emb, marker)
    return root, emb, marker


def test_inspect_refuses_malicious_label_embeddings(evil_root):
    root, emb, marker = evil_root
    _refused(_avca("inspect", root, "--dataset", "Toy"), emb, marker)


def test_train_refuses_malicious_label_embeddings(evil_root, tmp_path):
    root, emb, marker = evil_root
    r = _avca("train", "--root", root, "--dataset", "Toy", "--out", tmp_path / "run", "--quick")
    _refused(r, emb, marker)
    assert not (tmp_path / "run" / "results.json").exists()


def test_embed_classes_refuses_malicious_vectors(evil_root, tmp_path):
    root, emb, marker = evil_root
    r = _avca("embed-classes", "--classes", root / "Toy/class-split/all_class.txt",
              "--vectors", emb, "--out", tmp_path / "emb")
    _refused(r, emb, marker)
    assert not (tmp_path / "emb").exists()


def test_inspect_temporal_refuses_malicious_feature_pickle(tmp_path):
    root = tmp_path / "t"
    synthesize(root, seed=0, temporal=True)
    marker = tmp_path / "ran"
    folder = root / "Toy/features/main_features_non_averaged/audio/stage_1_train"
    victim = sorted(folder.iterdir())[0]
    victim.write_bytes(pickle.dumps({"features": [_RunsCode(marker)], "video_names": [b"v"],
                                     "fps": [25]}))
    r = _avca("inspect", root, "--dataset", "Toy", "--temporal")
    _refused(r, victim, marker)
