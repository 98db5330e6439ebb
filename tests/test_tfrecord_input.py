"""tf.data input from ingested TFRecords (avca_tf/data/formats/tfrecord_input.py)."""
import json
import shutil

import numpy as np
import pytest
from conftest import assert_same_splits
import tensorflow as tf

from avca_tf import cli
from avca_tf.data.formats.benchmark import BenchmarkError, load_benchmark
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.data.formats.tfrecord_input import (load_benchmark_from_tfrecords, read_metadata, stage_dataset,
                                    stage_files)
from avca_tf.beam.ingest import run_ingest


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_tfrec")
    synthesize(root, seed=4, scale=0.05)
    out = root / "tfrec"
    run_ingest(root, "Toy", "main_features", str(out))
    return root, out


@pytest.mark.parametrize("pairing", ["own", "reference"])
def test_round_trip_equals_reader_bit_for_bit(ingested, pairing):
    root, out = ingested
    ref = load_benchmark(root, "Toy", "main_features", text_pairing=pairing)
    got = load_benchmark_from_tfrecords(str(out), text_pairing=pairing)
    assert (got.dataset, got.feature_set, got.text_pairing) == ("Toy", "main_features", pairing)
    assert got.class_names == ref.class_names
    assert got.label_embeddings.dtype == np.float32
    assert np.array_equal(got.label_embeddings, ref.label_embeddings)
    assert_same_splits(ref, got)
    for stage in (1, 2):
        pa, pb = ref.protocol(stage), got.protocol(stage)
        assert np.array_equal(pa.train.audio, pb.train.audio)
        assert np.array_equal(pa.unseen_class_ids, pb.unseen_class_ids)


def test_stage_dataset_parses_and_caches(ingested):
    _, out = ingested
    meta = read_metadata(str(out))
    ds = stage_dataset(str(out), "stage_1_train", batch_size=16)
    first = [b["label"].numpy() for b in ds]
    again = [b["label"].numpy() for b in ds]  # second pass comes from the cache
    assert sum(len(x) for x in first) == meta["stages"]["stage_1_train"]["count"]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    batch = next(iter(ds))
    assert batch["audio"].shape[1] == 512 and batch["video"].dtype == tf.float32
    assert set(batch["stage"].numpy()) == {b"stage_1_train"}


def test_missing_records_and_metadata_are_errors(ingested, tmp_path):
    _, out = ingested
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for f in stage_files(str(copy), "stage_1_val_unseen"):
        tf.io.gfile.remove(f)
    with pytest.raises(BenchmarkError, match="stage_1_val_unseen: 0 records, metadata.json says"):
        load_benchmark_from_tfrecords(str(copy))
    (copy / "metadata.json").unlink()
    with pytest.raises(BenchmarkError, match="missing .*metadata.json"):
        load_benchmark_from_tfrecords(str(copy))


def test_train_from_tfrecords_gives_identical_results(ingested, tmp_path):
    root, out = ingested
    # the linear ALE baseline keeps this quick; the data path is the same for every model
    common = ["train", "--dataset", "Toy", "--features", "main_features", "--model", "ale",
              "--quick", "--epochs", "1", "--n-batches", "2", "--batch-size", "16",
              "--seed", "3", "-q"]
    assert cli.main(common + ["--root", str(root), "--out", str(tmp_path / "h5")]) == 0
    assert cli.main(common + ["--tfrecords", str(out), "--out", str(tmp_path / "tfrec")]) == 0
    a = json.loads((tmp_path / "h5" / "results.json").read_text())
    b = json.loads((tmp_path / "tfrec" / "results.json").read_text())
    assert a == b and a["test"]["num_unseen_samples"] > 0
