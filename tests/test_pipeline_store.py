"""A local pipeline root belongs to one MLMD store (pipelines/local_runner.bind_store).

Issue 29's data loss: TFX keys artifact paths by execution id, and every new
sqlite store starts again at 1, so a second store writing into the same root
overwrote (and deleted) the first store's artifacts. The full two-process case
runs in tests/test_concurrency.py; these cover each rule of the binding.
"""
import json
import os

import pytest

from pipelines.local_runner import STORE_MARKER, PipelineRunError, bind_store


def test_first_run_binds_the_root_to_its_store(tmp_path):
    root, store = tmp_path / "root", tmp_path / "w1" / "metadata.sqlite"
    bind_store(str(root), str(store))
    assert json.loads((root / STORE_MARKER).read_text()) == {"metadata": str(store)}
    store.parent.mkdir()
    store.write_bytes(b"")  # the run creates the store
    bind_store(str(root), str(store))  # the same store again: fine


def test_another_store_on_a_bound_root_is_refused(tmp_path):
    root, w1 = tmp_path / "root", tmp_path / "w1" / "metadata.sqlite"
    bind_store(str(root), str(w1))
    w1.parent.mkdir()
    w1.write_bytes(b"")
    (root / "AvcaTrainer" / "model" / "4").mkdir(parents=True)
    with pytest.raises(PipelineRunError, match=f"holds the artifacts of the MLMD store {w1}"):
        bind_store(str(root), str(tmp_path / "w2" / "metadata.sqlite"))
    assert (root / "AvcaTrainer" / "model" / "4").is_dir()
    assert not (tmp_path / "w2").exists()


def test_a_vanished_store_is_not_replaced_by_a_new_one(tmp_path):
    root, w1 = tmp_path / "root", tmp_path / "metadata.sqlite"
    bind_store(str(root), str(w1))  # bound, but the store was deleted since
    with pytest.raises(PipelineRunError, match="is gone"):
        bind_store(str(root), str(w1))


def test_unmarked_root_with_artifacts_needs_its_existing_store(tmp_path):
    root = tmp_path / "root"
    (root / "FeatureIngestion" / "examples" / "1").mkdir(parents=True)
    with pytest.raises(PipelineRunError, match="already holds artifacts"):
        bind_store(str(root), str(tmp_path / "new.sqlite"))
    assert not (root / STORE_MARKER).exists()
    old = tmp_path / "old.sqlite"
    old.write_bytes(b"")
    bind_store(str(root), str(old))  # a root from before the marker: adopted by its store
    assert json.loads((root / STORE_MARKER).read_text())["metadata"] == str(old)


def test_damaged_marker_names_the_file(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / STORE_MARKER).write_text("{not json")
    with pytest.raises(PipelineRunError, match=f"{root / STORE_MARKER}: unreadable"):
        bind_store(str(root), str(tmp_path / "m.sqlite"))


def test_remote_roots_are_not_bound(tmp_path):
    bind_store("gs://bucket/root", str(tmp_path / "m.sqlite"))
    assert not os.listdir(tmp_path)
