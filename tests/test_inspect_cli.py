"""`avca synth` and `avca inspect` through the real command line."""
import csv
import json
import shutil
import subprocess
import sys

import pytest

from avca_tf.cli import main

AVCA = [sys.executable, "-m", "avca_tf.cli"]


def _avca(*args):
    return subprocess.run(AVCA + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300)


def _class_column(stdout):
    rows = [ln.split() for ln in stdout.splitlines() if ln.startswith("stage_")]
    return {r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows}


def test_inspect_real_ucf_split_table(ucf_main_root, real_splits):
    r = _avca("inspect", ucf_main_root, "--dataset", "UCF", "--features", "main_features")
    assert r.returncode == 0, r.stderr
    table = _class_column(r.stdout)
    assert [table[s][0] for s in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen",
                                  "stage_2_train", "stage_2_test_seen", "stage_2_test_unseen")] \
        == [30, 30, 12, 42, 42, 9]
    assert all(row[2:] == (512, 512, 300) for row in table.values())
    counts = {}
    split_csv = real_splits / "UCF/class-split/main_split/stage_1_train.csv"
    for row in csv.DictReader(open(split_csv, newline="")):
        counts[row["label"]] = counts.get(row["label"], 0) + 1
    scale = json.loads((ucf_main_root / "UCF/synth_main_features.json").read_text())["scale"]
    # per-class real counts scaled and rounded (3174 videos at scale 1)
    assert table["stage_1_train"][1] == sum(max(1, round(n * scale))
                                            for n in counts.values())


def test_inspect_reference_pairing_reports_defect(ucf_main_root):
    r = _avca("inspect", ucf_main_root, "--dataset", "UCF", "--text-pairing", "reference")
    assert r.returncode == 0, r.stderr
    assert "79 of 101 classes get another class's label vector" in r.stdout


def test_inspect_truncated_h5_exits_nonzero_naming_file(ucf_main_root, tmp_path):
    root = tmp_path / "b"
    shutil.copytree(ucf_main_root, root)
    victim = sorted((root / "UCF/features/main_features/audio/stage_1_val_unseen").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:4096])
    r = _avca("inspect", root, "--dataset", "UCF", "--features", "main_features")
    assert r.returncode == 2
    assert str(victim) in r.stderr and r.stderr.startswith("error: unreadable h5 file")


def test_inspect_missing_dataset_exits_2(tmp_path):
    r = _avca("inspect", tmp_path, "--dataset", "ActivityNet")
    assert r.returncode == 2 and "missing folder" in r.stderr


def test_synth_cli_writes_toy_and_prints_table(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--seed", "2", "--scale", "0.05"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'Toy'}" in out
    assert _class_column(out)["stage_2_test_unseen"][0] == 9
    assert main(["inspect", str(tmp_path), "--dataset", "Toy"]) == 0


def test_synth_cli_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--dataset", "Toy", "--splits",
                 str(tmp_path)]) == 2
    assert "written without --splits" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(tmp_path), "--features", "i3d"])
