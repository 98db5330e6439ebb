"""Bad input ends in `error: ...` naming the culprit, exit 2, nothing half-written
(issue 12, cases 4-10). Real data on disk, real Beam jobs, SavedModels in a fresh process.
"""
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from avca_tf import cli
from avca_tf.beam.ingest import run_ingest
from avca_tf.data.formats.benchmark import Layout, read_name_list
from avca_tf.data.synthesis.synth import synthesize, toy_word_vectors_path
from avca_tf.data.formats.tfrecord_input import stage_files

TIMEOUT = 600


def _avca(*argv):
    """The CLI in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main([str(a) for a in argv])
        except SystemExit as e:  # flags refused by the parser, before any work
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def _avca_process(*argv):
    return subprocess.run([sys.executable, "-m", "avca_tf.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _tree(path):
    """{relative path: bytes} of every file under `path` (to show nothing changed)."""
    return {os.path.relpath(os.path.join(d, f), path): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(path) for f in files}


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """A tiny toy benchmark (a few samples per class); copy it before damaging it."""
    root = tmp_path_factory.mktemp("small")
    synthesize(root, seed=2, scale=0.04)
    return root


@pytest.fixture(scope="module")
def small_tfrec(small_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("tfrec") / "t"
    run_ingest(str(small_root), "Toy", "main_features", str(out))
    return out


def _copy(src, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


# --- case 5: validation before anything is written ---------------------------------------

@pytest.fixture(scope="module")
def seeded_run(small_root, tmp_path_factory):
    """`avca train --seed -5` and `--seed 99999999999` (refused), then a valid seed in the
    same --out."""
    parent = tmp_path_factory.mktemp("seed")
    run = parent / "run"
    args = ["train", "--root", small_root, "--dataset", "Toy", "--quick", "--epochs", "1",
            "--n-batches", "2", "--out", run, "-q"]
    bad = {seed: _avca(*args, "--seed", seed) for seed in (-5, 99999999999)}
    after_bad = sorted(os.listdir(parent))
    good = _avca(*args, "--seed", 3)
    return dict(run=run, bad=bad, after_bad=after_bad, good=good)


def test_bad_seed_exits_2_and_writes_nothing(seeded_run):
    for seed, (rc, _, err) in seeded_run["bad"].items():
        assert rc == 2
        assert "seed" in err and f"got {seed}" in err and "Traceback" not in err, err
    assert seeded_run["after_bad"] == []  # no run dir, no lock file


def test_valid_seed_in_the_same_out_then_works(seeded_run):
    rc, out, err = seeded_run["good"]
    assert rc == 0, err
    assert json.loads((seeded_run["run"] / "results.json").read_text())["seed"] == 3
    assert "seed 3: test S" in out


def test_divergence_is_a_user_error(small_root, tmp_path):
    """`avca train --lr 1e9`: the clear divergence message as `error:`, exit 2, no traceback."""
    rc, _, err = _avca("train", "--root", small_root, "--dataset", "Toy", "--quick",
                       "--epochs", "1", "--n-batches", "3", "--lr", "1e9",
                       "--out", tmp_path / "run", "-q")
    assert rc == 2, err
    assert err.startswith("error: training diverged in epoch 1")
    assert "lower the learning rate" in err and "Traceback" not in err


def test_outputs_that_are_files_are_refused_before_work(small_root, seeded_run, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me\n")
    vectors = toy_word_vectors_path(small_root)
    cases = {
        "train": ["train", "--root", small_root, "--dataset", "Toy", "--quick", "--out",
                  blocker],
        "export": ["export", seeded_run["run"], "--out", blocker],
        "ingest": ["ingest", "--root", small_root, "--dataset", "Toy", "--features",
                   "main_features", "--out", blocker],
        "embed-classes": ["embed-classes", "--classes",
                          Layout(small_root, "Toy", "main_features").all_class_file,
                          "--vectors", vectors, "--out", blocker / "sub"],
    }
    for name, argv in cases.items():
        rc, _, err = _avca(*argv)
        assert rc == 2, (name, err)
        assert str(blocker) in err and "exists and is not a directory" in err, (name, err)
        assert "Traceback" not in err
        assert blocker.read_text() == "keep me\n"
        assert sorted(os.listdir(tmp_path)) == ["a_file"], name


def test_pipeline_bad_settings_refused_before_writing(small_root, tmp_path):
    """`--seed -5`, `--lr 0` and a --pipeline-root that is a file: exit 2 before the work
    dir (and its MLMD store) exists, so no execution is left RUNNING."""
    blocker = tmp_path / "root_file"
    blocker.write_text("x")
    work = tmp_path / "work"
    base = ["pipeline", "run", "--root", small_root, "--dataset", "Toy", "--preset", "quick",
            "--work-dir", work]
    for extra, expected in ((["--seed", "-5"], "got -5"),
                            (["--lr", "0"], "--lr: must be a finite number > 0"),
                            (["--pipeline-root", blocker], f"--pipeline-root {blocker}")):
        rc, _, err = _avca(*base, *extra)
        assert rc == 2 and expected in err, err
        assert not work.exists()


# --- case 6: non-UTF-8 class lists -----------------------------------------------------

def test_non_utf8_class_lists_are_named(small_root, tmp_path):
    root = _copy(small_root, tmp_path)
    layout = Layout(root, "Toy", "main_features")
    for path in (layout.all_class_file, layout.stage_txt("stage_1_val_seen")):
        original = path.read_bytes()
        path.write_bytes(original.replace(b"\n", b"\n\xff", 1))  # line 2 starts with 0xff
        try:
            for argv in (["inspect", root, "--dataset", "Toy", "--features", "main_features"],
                         ["train", "--root", root, "--dataset", "Toy", "--quick",
                          "--out", tmp_path / "run"],
                         ["ingest", "--root", root, "--dataset", "Toy", "--features",
                          "main_features", "--out", tmp_path / "tfrec"]):
                rc, _, err = _avca(*argv)
                assert rc == 2, (argv[0], err)
                assert f"error: {path}: line 2: byte 0xff" in err and "not UTF-8" in err
                assert not (tmp_path / "run").exists() and not (tmp_path / "tfrec").exists()
        finally:
            path.write_bytes(original)


# --- case 7: corrupt TFRecords ---------------------------------------------------------

@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_shard_is_named(small_tfrec, tmp_path, damage):
    tfrec = _copy(small_tfrec, tmp_path)
    shard = stage_files(str(tfrec), "stage_1_val_unseen")[0]
    data = bytearray(open(shard, "rb").read())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[:len(data) - 7]
    open(shard, "wb").write(bytes(data))
    before = _tree(tfrec)
    rc, _, err = _avca("train", "--tfrecords", tfrec, "--dataset", "Toy", "--quick",
                       "--out", tmp_path / "run")
    assert rc == 2, err
    assert err.startswith(f"error: {shard}: corrupt or unreadable TFRecord shard")
    assert "Traceback" not in err and "{{" not in err
    assert not (tmp_path / "run").exists() and _tree(tfrec) == before


# --- case 9: ingestion and word-vector details -----------------------------------------

def test_ingest_refuses_h5_files_differing_by_case(small_root, tmp_path):
    root = _copy(small_root, tmp_path)
    folder = Layout(root, "Toy", "main_features").stage_dir("audio", "stage_1_train")
    name = sorted(read_name_list(Layout(root, "Toy", "main_features").stage_txt(
        "stage_1_train")))[0]
    shutil.copy(folder / f"{name}.h5", folder / f"{name.lower()}.h5")
    rc, _, err = _avca("ingest", "--root", root, "--dataset", "Toy", "--features",
                       "main_features", "--out", tmp_path / "out")
    assert rc == 2
    assert f"{folder}: two files for class {name.lower()!r}" in err
    assert f"{name}.h5" in err and f"{name.lower()}.h5" in err
    assert not (tmp_path / "out").exists()


def test_ingest_width_error_names_the_video_file(small_root, tmp_path):
    root = _copy(small_root, tmp_path)
    layout = Layout(root, "Toy", "main_features")
    name = sorted(read_name_list(layout.stage_txt("stage_1_train")))[0]
    video = layout.stage_dir("video", "stage_1_train") / f"{name}.h5"
    with h5py.File(video, "r") as f:
        n, urls = f["data"].shape[0], f["video_urls"][()]
    with h5py.File(video, "w") as f:
        f["data"] = np.zeros((n, 7), np.float32)
        f["video_urls"] = urls
    rc, _, err = _avca("ingest", "--root", root, "--dataset", "Toy", "--features",
                       "main_features", "--out", tmp_path / "out")
    assert rc == 2
    assert f"{video} rows 0-{n - 1}: video width 7, expected 512" in err
    audio = str(layout.stage_dir("audio", "stage_1_train") / f"{name}.h5")
    assert audio not in err
    assert not (tmp_path / "out").exists()


def _embed(small_root, vectors, out):
    return _avca("embed-classes", "--classes",
                 Layout(small_root, "Toy", "main_features").all_class_file,
                 "--vectors", vectors, "--out", out)


def test_empty_word_vector_file(small_root, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    rc, _, err = _embed(small_root, empty, tmp_path / "out")
    assert rc == 2
    assert err.startswith(f"error: {empty}: no word vectors found (empty file)")
    assert "no known token" not in err and not (tmp_path / "out").exists()


def test_duplicate_words_first_wins_and_are_reported(small_root, tmp_path):
    source = toy_word_vectors_path(small_root).read_text().splitlines()
    header, first = source[0], source[1]
    word = first.split(" ")[0]
    dim = len(first.split(" ")) - 1
    repeat = " ".join([word] + ["0.5"] * dim)
    vectors = tmp_path / "dup.txt"
    vectors.write_text("\n".join([header, *source[1:], repeat]) + "\n")
    rc, _, err = _embed(small_root, vectors, tmp_path / "out")
    assert rc == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["duplicate_words"] == [[word, f"line {len(source) + 1} (first at line 2)"]]
    # the first vector is the one used: the same embeddings as from the clean file
    rc, _, err = _embed(small_root, toy_word_vectors_path(small_root), tmp_path / "clean")
    assert rc == 0, err
    assert (tmp_path / "out" / "embeddings.tfrecord").read_bytes() == \
        (tmp_path / "clean" / "embeddings.tfrecord").read_bytes()


def test_word_vector_header_mismatch_without_worker_traceback(small_root, tmp_path):
    source = toy_word_vectors_path(small_root).read_text().splitlines()
    n, dim = source[0].split()
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join([f"{n} {int(dim) + 1}", *source[1:]]) + "\n")
    proc = _avca_process("embed-classes", "--classes",
                         Layout(small_root, "Toy", "main_features").all_class_file,
                         "--vectors", bad, "--out", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"error: {bad}: line 2" in proc.stderr
    assert f"header says {int(dim) + 1} values, line has {dim}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


# --- case 10: a class emptied by --skip-invalid -----------------------------------------

def test_train_refuses_a_listed_class_without_samples(small_root, tmp_path):
    root = _copy(small_root, tmp_path)
    layout = Layout(root, "Toy", "main_features")
    name = sorted(read_name_list(layout.stage_txt("stage_1_train")))[0]
    audio = layout.stage_dir("audio", "stage_1_train") / f"{name}.h5"
    with h5py.File(audio, "r+") as f:
        f["data"][...] = np.nan
    out = tmp_path / "tfrec"
    rc, _, err = _avca("ingest", "--root", root, "--dataset", "Toy", "--features",
                       "main_features", "--out", out, "--skip-invalid")
    assert rc == 0, err
    rc, _, err = _avca("train", "--tfrecords", out, "--dataset", "Toy", "--quick",
                       "--out", tmp_path / "run")
    assert rc == 2
    assert f"error: {out}/stage_1_train: class(es) [{name!r}] listed for this stage have " \
           "no samples" in err
    assert str(out / "rejects.jsonl") in err
    assert not (tmp_path / "run").exists()


# --- case 4: serving rejects non-finite features and wrong ranks -----------------------

def test_serving_rejects_nan_and_wrong_ranks_in_a_fresh_process(seeded_run, tmp_path):
    rc, _, err = _avca("export", seeded_run["run"], "--out", tmp_path / "serving")
    assert rc == 0, err
    version = tmp_path / "serving" / "avca" / "1"
    probe = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import json, sys
        import numpy as np, tensorflow as tf, tensorflow_text  # noqa: F401
        m = tf.saved_model.load(sys.argv[1])
        d = json.load(open(sys.argv[1] + "/assets.extra/avca_export.json"))
        a, v = np.ones([2, d["audio_dim"]], np.float32), np.ones([2, d["video_dim"]], np.float32)
        nan_a, inf_v = a.copy(), v.copy()
        nan_a[1, 3], inf_v[0, 0] = np.nan, np.inf
        names = tf.constant(d["class_names"][:2])
        calls = {
            "ok": ("serving_default", dict(audio=a, video=v)),
            "nan": ("serving_default", dict(audio=nan_a, video=v)),
            "inf": ("embed", dict(audio=a, video=inf_v)),
            "open_nan": ("classify_open", dict(audio=nan_a, video=v, class_names=names)),
            "1d": ("serving_default", dict(audio=a[0], video=v[0])),
            "2d_names": ("classify_open", dict(audio=a, video=v,
                                                class_names=tf.reshape(names, [1, 2]))),
        }
        result = {}
        for key, (sig, kw) in calls.items():
            try:
                out = m.signatures[sig](**{k: tf.constant(x) for k, x in kw.items()})
                result[key] = "ok " + str(bool(np.isfinite(out["scores"].numpy()).all()))
            except tf.errors.InvalidArgumentError as e:
                result[key] = e.message
        print(json.dumps(result))
        """), str(version)], capture_output=True, text=True, timeout=TIMEOUT)
    assert probe.returncode == 0, probe.stderr[-3000:]
    res = json.loads(probe.stdout.strip().splitlines()[-1])
    d_a = json.loads((version / "assets.extra" / "avca_export.json").read_text())["audio_dim"]
    assert res["ok"] == "ok True"
    assert "audio: expected finite values, got NaN or Inf" in res["nan"]
    assert "video: expected finite values, got NaN or Inf" in res["inf"]
    assert "audio: expected finite values, got NaN or Inf" in res["open_nan"]
    assert f"audio: expected shape [batch, {d_a}] float32" in res["1d"]
    assert "class_names: expected shape [num_classes] string" in res["2d_names"]
