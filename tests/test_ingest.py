"""`avca ingest` (avca_tf/beam/ingest.py): real Beam DirectRunner jobs on small benchmarks."""
import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_same_splits
import tensorflow as tf

from avca_tf import cli
from avca_tf.data.formats.benchmark import STAGES, BenchmarkError, Layout, load_benchmark, read_name_list
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.data.formats.tfrecord_input import load_benchmark_from_tfrecords, stage_files
from avca_tf.beam.beam_io import (PipelineError, encode_entries, encode_example,
                               example_from_pieces, float_entry_header)
from avca_tf.beam.ingest import plan, run_ingest

MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _rows(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return int(f["data"].shape[0])


def _count_records(out, stage) -> int:
    return sum(1 for _ in tf.data.TFRecordDataset(stage_files(str(out), stage)))


def test_encode_example_is_a_tf_example():
    rng = np.random.default_rng(0)
    audio, video = rng.standard_normal(5).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    data = encode_example({"audio": audio, "video": video, "label": np.int64(300), "neg": [-5, 2 ** 40],
                           "class_name": b"Abc", "video_id": "v_\u00fc x", "stage": b"stage_1_train"})
    ref = tf.train.Example(features=tf.train.Features(feature={
        "audio": tf.train.Feature(float_list=tf.train.FloatList(value=audio)),
        "video": tf.train.Feature(float_list=tf.train.FloatList(value=video)),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[300])),
        "neg": tf.train.Feature(int64_list=tf.train.Int64List(value=[-5, 2 ** 40])),
        "class_name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"Abc"])),
        "video_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=["v_\u00fc x".encode()])),
        "stage": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"stage_1_train"])),
    }))
    assert tf.train.Example.FromString(data) == ref
    # the ingest job's path: per-file pieces encoded once, rows as views of the arrays
    shared = encode_entries({"label": 300, "class_name": b"Abc", "stage": b"stage_1_train"})
    tail = encode_entries({"neg": [-5, 2 ** 40], "video_id": "v_\u00fc x"})
    pieces = [shared, float_entry_header("audio", 5), memoryview(audio).cast("B"),
              float_entry_header("video", 7), memoryview(video).cast("B"), tail]
    size = sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in pieces)
    assert tf.train.Example.FromString(example_from_pieces(pieces, size)) == ref


def test_cli_ingest_ucf_one_record_per_row(ucf_main_root, tmp_path, capsys):
    out = tmp_path / "tfrec"
    rc = cli.main(["ingest", "--root", str(ucf_main_root), "--dataset", "UCF",
                   "--features", "main_features", "--out", str(out), "--", "--runner=DirectRunner"])
    assert rc == 0
    printed = capsys.readouterr().out
    layout = Layout(ucf_main_root, "UCF", "main_features")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["widths"] == {"audio": 512, "video": 512}
    assert len(meta["class_names"]) == 101 and meta["rejected"] == 0
    total = 0
    for stage in STAGES:
        listed = read_name_list(layout.stage_txt(stage))
        rows = {p.stem.lower(): _rows(p) for p in layout.stage_dir("audio", stage).glob("*.h5")}
        expected = sum(rows[n.lower()] for n in listed)
        assert _count_records(out, stage) == expected == meta["stages"][stage]["count"], stage
        assert f"{stage}: {expected} records" in printed
        assert sum(meta["stages"][stage]["class_counts"].values()) == expected
        assert len(meta["stages"][stage]["sources"]) == 2 * len(listed)
        total += expected
    assert meta["total"] == total and f"{total} records written" in printed
    # the split files say HandStandPushups, all_class.txt HandstandPushups: one label
    assert "HandstandPushups" in meta["class_names"]
    # round trip: the TFRecords give the reader's arrays bit for bit
    ref, got = load_benchmark(ucf_main_root, "UCF", "main_features"), load_benchmark_from_tfrecords(str(out))
    assert got.class_names == ref.class_names
    assert np.array_equal(got.label_embeddings, ref.label_embeddings)
    assert_same_splits(ref, got)


def _rewrite(path: Path, data=None, urls=None, drop=None):
    with h5py.File(path, "r") as f:
        old = {k: f[k][()] for k in f}
    data = old["data"] if data is None else data
    urls = old["video_urls"] if urls is None else urls
    path.unlink()
    with h5py.File(path, "w") as f:
        if drop != "data":
            f.create_dataset("data", data=data)
        if drop != "video_urls":
            f.create_dataset("video_urls", data=urls)


@pytest.fixture(scope="module")
def broken_root(tmp_path_factory):
    """A tiny toy benchmark with one defect of every kind; returns (root, defects)."""
    root = tmp_path_factory.mktemp("broken")
    synthesize(root, seed=1, scale=0.04)
    layout = Layout(root, "Toy", "main_features")
    stage = "stage_1_train"
    adir, vdir = layout.stage_dir("audio", stage), layout.stage_dir("video", stage)
    names = sorted(read_name_list(layout.stage_txt(stage)))
    big = [n for n in names if _rows(adir / f"{n}.h5") >= 3][:8]
    assert len(big) == 8
    nan, inf, ids, short, wide, garbage, nokey, _ = big
    with h5py.File(adir / f"{nan}.h5", "r") as f:
        a = f["data"][()]
    a[1, 7] = np.nan
    _rewrite(adir / f"{nan}.h5", data=a)
    with h5py.File(vdir / f"{inf}.h5", "r") as f:
        v = f["data"][()]
    v[0, 3] = np.inf
    _rewrite(vdir / f"{inf}.h5", data=v)
    with h5py.File(vdir / f"{ids}.h5", "r") as f:
        u = f["video_urls"][()]
    u[2] = b"v_someone_else"
    _rewrite(vdir / f"{ids}.h5", urls=u)
    with h5py.File(vdir / f"{short}.h5", "r") as f:
        v, u = f["data"][()], f["video_urls"][()]
    _rewrite(vdir / f"{short}.h5", data=v[:-1], urls=u[:-1])
    n_wide = _rows(adir / f"{wide}.h5")
    _rewrite(adir / f"{wide}.h5", data=np.zeros((n_wide, 100), np.float32))
    n_garbage = _rows(vdir / f"{garbage}.h5")
    (vdir / f"{garbage}.h5").write_bytes(b"this is not hdf5")
    n_nokey = _rows(adir / f"{nokey}.h5")
    _rewrite(adir / f"{nokey}.h5", drop="video_urls")
    # files of a class all_class.txt does not know, and an audio file without video
    shutil.copy(adir / f"{names[-1]}.h5", adir / "Zzunknown.h5")
    shutil.copy(vdir / f"{names[-1]}.h5", vdir / "Zzunknown.h5")
    n_unknown = _rows(adir / "Zzunknown.h5")
    shutil.copy(adir / f"{names[-1]}.h5", adir / "Zzaudioonly.h5")
    defects = dict(nan=nan, inf=inf, ids=ids, short=short, wide=wide, garbage=garbage,
                   nokey=nokey, n_wide=n_wide, n_garbage=n_garbage, n_nokey=n_nokey,
                   n_unknown=n_unknown, stage=stage)
    return root, defects


def test_cli_invalid_rows_fail_and_leave_nothing(broken_root, tmp_path, capsys):
    root, d = broken_root
    out = tmp_path / "out"
    rc = cli.main(["ingest", "--root", str(root), "--dataset", "Toy", "--features",
                   "main_features", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert not out.exists() and os.listdir(tmp_path) == []  # no partial or temp directory
    assert "nothing was written" in err and "--skip-invalid" in err
    nan_file = str(Layout(root, "Toy", "main_features").stage_dir("audio", d["stage"]) / f"{d['nan']}.h5")
    assert f"{nan_file} row 1: audio row contains NaN or Inf" in err


def test_skip_invalid_multiprocess_writes_rejects(broken_root, tmp_path, capsys):
    root, d = broken_root
    out = tmp_path / "out"
    meta = run_ingest(root, "Toy", "main_features", str(out), beam_args=MULTI_PROCESS,
                      skip_invalid=True)
    printed = capsys.readouterr().out
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert meta["rejected"] == len(rejects) and f"{len(rejects)} invalid rows skipped" in printed
    by_class = {}
    for r in rejects:
        assert r["file"].endswith(".h5") and "reason" in r and "row" in r
        by_class.setdefault(r["class_name"], []).append(r)

    def reasons(cls):
        return [(r["row"], r["reason"]) for r in by_class[cls]]

    assert reasons(d["nan"]) == [(1, "audio row contains NaN or Inf")]
    assert reasons(d["inf"]) == [(0, "video row contains NaN or Inf")]
    [(row, why)] = reasons(d["ids"])
    assert row == 2 and "'v_someone_else'" in why
    [(row, why)] = reasons(d["short"])
    assert "no video row" in why
    assert len(reasons(d["wide"])) == d["n_wide"]
    assert all("audio width 100, expected 512" in w for _, w in reasons(d["wide"]))
    [(row, why)] = reasons(d["garbage"])
    assert row is None and why.startswith("unreadable")
    [(row, why)] = reasons(d["nokey"])
    assert row is None and "video_urls" in why
    assert len(reasons("Zzunknown")) == d["n_unknown"]
    assert all("not in all_class.txt" in w for _, w in reasons("Zzunknown"))
    [(row, why)] = reasons("Zzaudioonly")
    assert "no video file" in why
    assert len(rejects) == 7 + d["n_wide"] + d["n_unknown"]
    # every other row is ingested, counted per class, and readable
    layout = Layout(root, "Toy", "main_features")
    counts = meta["stages"][d["stage"]]["class_counts"]
    lost = {d["nan"]: 1, d["inf"]: 1, d["ids"]: 1, d["short"]: 1, d["wide"]: d["n_wide"],
            d["garbage"]: d["n_garbage"], d["nokey"]: d["n_nokey"]}
    for name, n in counts.items():
        assert n == _rows(layout.stage_dir("audio", d["stage"]) / f"{name}.h5") - lost.get(name, 0)
    for stage in STAGES:
        assert _count_records(out, stage) == meta["stages"][stage]["count"]
    assert len(stage_files(str(out), d["stage"])) >= 1


def test_plan_rejects_structural_problems(tmp_path):
    synthesize(tmp_path, seed=2, scale=0.02)
    layout = Layout(tmp_path, "Toy", "main_features")
    first = read_name_list(layout.stage_txt("stage_1_val_unseen"))[0]
    (layout.stage_dir("video", "stage_1_val_unseen") / f"{first}.h5").unlink()
    with pytest.raises(BenchmarkError, match=f"missing file .*video/stage_1_val_unseen/{first}.h5"):
        plan(tmp_path, "Toy", "main_features")
    with pytest.raises(BenchmarkError, match="unknown feature set"):
        plan(tmp_path, "Toy", "other_features")
    with layout.stage_txt("stage_1_train").open("a") as f:
        f.write("NotAClass\n")
    with pytest.raises(BenchmarkError, match="'NotAClass' is not in"):
        plan(tmp_path, "Toy", "main_features")


def test_cli_refuses_stray_beam_args(tmp_path, capsys):
    rc = cli.main(["ingest", "--root", str(tmp_path), "--dataset", "Toy", "--features",
                   "main_features", "--out", str(tmp_path / "o"), "runner=DirectRunner"])
    assert rc == 2 and "go after `--`" in capsys.readouterr().err


def test_pipeline_error_is_user_facing():
    assert issubclass(PipelineError, cli.AvcaError)
