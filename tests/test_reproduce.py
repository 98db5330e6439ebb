"""`avca reproduce`: trainings through the protocol, resumed runs, the seed's table layout."""
import csv
import os

import pytest

from avca_tf import cli
from avca_tf.evaluation import published
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.errors import ConfigError
from avca_tf.evaluation.reproduce import ReproduceConfig, plan_runs, summarize, to_markdown


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
        "AVGZSLNet", "W/o x-att", "W x-att with l_c loss", "AVCA", "TCaF"]
    # no per-step features in this root: TCaF is not run, its cells say so
    assert all(c.strip().startswith("–") for c in rows[-1].split("|")[2:-1])
    rows = rows[:-1]
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert cells[0].startswith("–") and cells[4].startswith("–")   # VGGSound, ActivityNet
        assert not cells[2].startswith("–") and not cells[3].startswith("–")   # UCF HM, ZSL
    # the features are avca synth's: said in the title, the headers and the CSV
    assert md.startswith("# Table 3 (main_features), SYNTHETIC features (avca synth)")
    assert "| UCF (synthetic) HM |" in md and "VGGSound (synthetic)" not in md
    assert "synth_main_features.json" in md
    with open(out / "table3.csv") as f:
        records = list(csv.DictReader(f))
    assert {r["features"] for r in records if r["dataset"] == "UCF"} == {"synthetic"}
    assert {r["features"] for r in records if r["dataset"] != "UCF"} == {"real"}
    assert len(records) == 5 * 3 * 2
    ucf = [r for r in records if r["dataset"] == "UCF" and r["model"] != "tcaf"]
    assert all(r["n_seeds"] == "1" and 0.0 <= float(r["mean"]) <= 100.0 for r in ucf)
    results = sorted(out.glob("runs/UCF/main_features/*/seed42-quick/results.json"))
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


def test_tcaf_rows_hold_its_published_results_and_run_on_per_step_features(tmp_path):
    # TCaF (ECCV 2022) Table 1, test S / U / HM / ZSL (docs/tcaf.md)
    assert published.TCAF == {
        "cls_features": {"VGGSound": (12.63, 6.72, 8.77, 7.41),
                         "UCF": (67.14, 40.83, 50.78, 44.64),
                         "ActivityNet": (30.12, 7.65, 12.20, 7.96)},
        "main_features": {"VGGSound": (9.64, 5.91, 7.33, 6.06),
                          "UCF": (58.60, 21.74, 31.72, 24.81),
                          "ActivityNet": (18.70, 7.50, 10.71, 7.91)}}
    assert published.TABLE1["tcaf"]["UCF"] == (67.14, 40.83, 50.78, 44.64)
    assert published.TABLE3["tcaf"]["ActivityNet"] == (10.71, 7.91)
    assert published.TABLE4["tcaf"]["VGGSound"] == (9.64, 5.91, 7.33)
    rows = summarize({("tcaf", "UCF"): [{"S": 0.6, "U": 0.2, "HM": 0.3, "ZSL": 0.25}]}, 1)
    md = to_markdown(rows, 1, ReproduceConfig(root="r", table=1, out="o"))
    assert ("| TCaF | – (12.63) | – (6.72) | – (8.77) | – (7.41) | 60.00 (67.14) | 20.00 (40.83) "
            "| 30.00 (50.78) | 25.00 (44.64) | – (30.12) |") in md
    assert "(TCaF: TCaF (ECCV 2022), Table 1)" in md
    # a root with per-step UCF main features only: Table 3 plans TCaF's run alone
    synthesize(tmp_path, dataset="UCF", feature_set="main_features", scale=0.02, temporal=True)
    [run] = plan_runs(ReproduceConfig(root=str(tmp_path), table=3, out="o", quick=True))
    assert run.name == "runs/UCF/main_features/tcaf/seed42-quick"
    assert (run.config.model.name, run.config.data.temporal, run.config.model.depth,
            run.config.train.lr) == ("tcaf", True, 5, 5e-5)
    with pytest.raises(ConfigError, match="cls_features_non_averaged"):
        plan_runs(ReproduceConfig(root=str(tmp_path), table=1, out="o", models=("tcaf",)))


def test_clipclap_table_holds_the_published_rows_and_runs_on_clip_clap_features(tmp_path, capsys):
    # ClipClap-GZSL (CVPR 2024 W) test S / U / HM / ZSL; AVCA, AVGZSLNet, CJME trained on the
    # same CLIP/CLAP features in that paper: HM and ZSL only (docs/clipclap.md)
    assert published.CLIPCLAP["clipclap"] == {
        "VGGSound": (29.68, 11.12, 16.18, 11.53), "UCF": (77.14, 43.91, 55.97, 46.96),
        "ActivityNet": (45.98, 20.06, 27.93, 22.76)}
    assert {ds: v[2] for ds, v in published.CLIPCLAP["avca"].items()} == {
        "VGGSound": 11.26, "UCF": 36.69, "ActivityNet": 21.76}
    assert {ds: v[3] for ds, v in published.CLIPCLAP["avca"].items()} == {
        "VGGSound": 8.16, "UCF": 38.67, "ActivityNet": 20.88}
    assert all(v[:2] == (None, None) for m in ("avca", "avgzslnet", "cjme")
               for v in published.CLIPCLAP[m].values())
    rows = summarize({("avca", "UCF"): [{"S": 0.5, "U": 0.3, "HM": 0.375, "ZSL": 0.4}]},
                     "clipclap")
    md = to_markdown(rows, "clipclap", ReproduceConfig(root="r", table="clipclap", out="o"))
    assert md.startswith("# ClipClap-GZSL (CVPR 2024 workshops) on CLIP/CLAP features")
    assert ("| AVCA | – (n/p) | – (n/p) | – (11.26) | – (8.16) | 50.00 (n/p) | 30.00 (n/p) "
            "| 37.50 (36.69) | 40.00 (38.67) |") in md
    assert "| ClipClap-GZSL | – (29.68) |" in md
    # every row plans a clip_clap run of its own preset, under its own folder level
    synthesize(tmp_path / "b", dataset="UCF", feature_set="clip_clap", scale=0.02)
    runs = plan_runs(ReproduceConfig(root=str(tmp_path / "b"), table="clipclap", out="o",
                                     quick=True))
    assert [r.name for r in runs] == [f"runs/UCF/clip_clap/{m}/seed42-quick"
                                      for m in ("cjme", "avgzslnet", "avca", "clipclap")]
    assert {r.config.data.feature_set for r in runs} == {"clip_clap"}
    assert all(r.config.model.text_dim == 1536 for r in runs)
    clipclap = runs[-1].config
    assert (clipclap.model.name, clipclap.train.beta_steps, clipclap.train.batch_size) == (
        "clipclap", 76, 64)
    # the CLI: --table clipclap, one row, quick, in-process runner
    out = tmp_path / "rep"
    assert cli.main(["reproduce", "--root", str(tmp_path / "b"), "--table", "clipclap",
                     "--models", "clipclap", "--quick", "--out", str(out), "-q", "--",
                     "--direct_running_mode=in_memory"]) == 0
    lines = _table_lines((out / "table_clipclap.md").read_text())
    assert [r.split("|")[1].strip() for r in lines] == ["CJME", "AVGZSLNet", "AVCA",
                                                        "ClipClap-GZSL"]
    cells = [c.strip() for c in lines[-1].split("|")[2:-1]]
    assert cells[4].endswith("(77.14)") and not cells[4].startswith("–")   # UCF S
    assert cells[0].startswith("–") and cells[8].startswith("–")           # VGGSound, ActivityNet
    assert (out / "runs/UCF/clip_clap/clipclap/seed42-quick/results.json").exists()
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--root", str(tmp_path / "b"), "--table", "2", "--out", str(out)])
    assert "choose from '1', '3', '4', 'clipclap'" in capsys.readouterr().err
