"""`avca reproduce`: trainings through the protocol, resumed runs, the seed's table layout."""
import csv
import os

import pytest

from avca_tf import cli
from avca_tf.evaluation import published
from avca_tf.evaluation.reproduce import ReproduceConfig, summarize, to_markdown


def test_summary_is_mean_and_std_over_seeds_beside_the_published_numbers():
    runs = {("avca", "UCF"): [{"S": 0.5, "U": 0.2, "HM": 0.30, "ZSL": 0.20},
                              {"S": 0.7, "U": 0.2, "HM": 0.34, "ZSL": 0.24}]}
    rows = summarize(runs, 3)
    hm = next(r for r in rows if (r["model"], r["dataset"], r["metric"]) == ("avca", "UCF", "HM"))
    assert hm["mean"] == pytest.approx(32.0) and hm["std"] == pytest.approx(2.8284, rel=1e-4)
    assert hm["n_seeds"] == 2 and hm["published"] == 27.15
    missing = next(r for r in rows if (r["model"], r["dataset"]) == ("avgzslnet", "VGGSound"))
    assert missing["mean"] is None and missing["n_seeds"] == 0
    md = to_markdown(rows, 3, ReproduceConfig(root="r", table=3, out="o", seeds=2))
    assert "| AVCA | – (6.31) | – (6.00) | 32.00 ± 2.83 (27.15) | 22.00 ± 2.83 (20.01) |" in md


def _table_lines(md):
    return [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_quick_table3_on_ucf_main_writes_all_four_rows_and_resumes(ucf_main_root, tmp_path, capsys):
    out = tmp_path / "rep"
    args = ["reproduce", "--root", str(ucf_main_root), "--table", "3", "--quick",
            "--out", str(out), "-q"]
    assert cli.main(args) == 0
    md = (out / "table3.md").read_text()
    rows = _table_lines(md)
    assert [r.split("|")[1].strip() for r in rows] == [
        "AVGZSLNet", "W/o x-att", "W x-att with l_c loss", "AVCA"]
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert cells[0].startswith("–") and cells[4].startswith("–")   # VGGSound, ActivityNet
        assert not cells[2].startswith("–") and not cells[3].startswith("–")   # UCF HM, ZSL
    with open(out / "table3.csv") as f:
        records = list(csv.DictReader(f))
    assert len(records) == 4 * 3 * 2
    ucf = [r for r in records if r["dataset"] == "UCF"]
    assert all(r["n_seeds"] == "1" and 0.0 <= float(r["mean"]) <= 100.0 for r in ucf)
    results = sorted(out.glob("runs/UCF/*/seed42-quick/results.json"))
    assert [p.parent.parent.name for p in results] == sorted(
        ["avgzslnet", "avca-no-xatt", "avca-xatt-lc", "avca"])
    stamps = {p: os.path.getmtime(p) for p in results}

    capsys.readouterr()
    assert cli.main(args[:-1]) == 0                       # again: every run is reused
    assert capsys.readouterr().out.count("finished run") == 4
    assert {p: os.path.getmtime(p) for p in results} == stamps
    assert (out / "table3.md").read_text().split("\n", 4)[4] == md.split("\n", 4)[4]


def test_reproduce_names_what_the_root_lacks(ucf_main_root, tmp_path, capsys):
    assert cli.main(["reproduce", "--root", str(ucf_main_root), "--table", "1", "--quick",
                     "--out", str(tmp_path / "t1")]) == 2
    err = capsys.readouterr().err
    assert "cls_features" in err and "cls_split" in err
    assert not (tmp_path / "t1" / "table1.md").exists()


def test_every_table_row_has_published_numbers_for_each_dataset():
    for spec in published.TABLES.values():
        for model, _ in spec["rows"]:
            assert set(spec["published"][model]) == set(published.DATASETS)
            assert all(len(v) == len(spec["metrics"]) for v in spec["published"][model].values())
