"""Session-scoped benchmark fixtures shared by the whole suite.

`toy_root`: the self-contained toy benchmark (dataset "Toy", main_features,
seed 0, full size); its word2vec-format vocabulary file is
`avca_tf.data.synthesis.synth.toy_word_vectors_path(toy_root)`.
`ucf_main_root`: UCF main_features built from the real splits at scale 0.1.
`real_splits`: the authors' real class splits and label embeddings, as packaged
(avca_tf.data.synthesis.synth.PACKAGED_SPLITS); nothing outside the repository is read.
Treat the directories as read-only: copy before corrupting anything.
"""
from pathlib import Path

import pytest

from avca_tf.config import TrainConfig
from avca_tf.data.synthesis.synth import PACKAGED_SPLITS, synthesize
from avca_tf.training.trainer import prepare_process

# In-process runs (cli.main in this process) are compared bit for bit with runs in fresh
# processes (CLI subprocesses, Beam and TFX workers), and a run's bits depend on TF's thread
# pools, which a process can set only before its first TF op: this process takes the
# defaults now, whichever test comes first.
prepare_process(TrainConfig())


UCF_MAIN_SCALE = 0.1


@pytest.fixture(scope="session")
def real_splits() -> Path:
    return PACKAGED_SPLITS


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy_benchmark")
    synthesize(root, seed=0)
    return root


@pytest.fixture(scope="session")
def ucf_main_root(tmp_path_factory, real_splits) -> Path:
    root = tmp_path_factory.mktemp("ucf_main")
    synthesize(root, dataset="UCF", feature_set="main_features", splits=real_splits,
               seed=0, scale=UCF_MAIN_SCALE)
    return root


def assert_same_splits(ref, got):
    """Every stage's arrays of two Benchmarks are equal bit for bit (dtype, shape, values)."""
    import numpy as np

    from avca_tf.data.formats.benchmark import STAGES
    for stage in STAGES:
        a, b = ref.splits[stage], got.splits[stage]
        for field in ("audio", "video", "labels", "video_ids", "class_ids"):
            x, y = getattr(a, field), getattr(b, field)
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), (stage, field)


def free_ports(n):
    """`n` free localhost TCP ports (for job servers and worker processes the tests start)."""
    import socket
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
