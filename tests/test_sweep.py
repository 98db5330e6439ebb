"""The sweep Beam job behind `avca reproduce`: runs on two DirectRunner worker processes equal
serial runs bit for bit, finished runs are skipped, the table is re-assembled alone, a run
dir on an object store (TensorFlow's ram:// filesystem here) trains the same run, a run
dir has one writer at a time, and a run dir of another configuration (Table 1's run in
Table 3's place) is refused, never reused."""
import json
import threading
import time

import pytest

from avca_tf import cli
from avca_tf.beam import sweep
from avca_tf.data.synthesis.synth import synthesize
from avca_tf.errors import ConfigError
from avca_tf.evaluation.reproduce import ReproduceConfig, plan_runs

RUNS = "avca,avgzslnet"


def _weights(path):
    """Every array of a Keras .weights.h5 file (the file itself holds HDF5 timestamps)."""
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes())
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def _tree(folder):
    """Run dirs' results, configs and weights, and the table files, by relative path."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.name in ("results.json", "config.json") or p.suffix in (".md", ".csv"):
            out[str(p.relative_to(folder))] = p.read_bytes()
        elif p.name == "model.weights.h5":
            out[str(p.relative_to(folder))] = _weights(p)
    return out


def test_two_workers_equal_serial_and_rerun_skips(ucf_main_root, tmp_path, capsys):
    rep = ["reproduce", "--root", str(ucf_main_root), "--table", "3", "--quick", "--models", RUNS]
    two, one = tmp_path / "two", tmp_path / "one"
    assert cli.main(rep + ["--out", str(two), "--", "--direct_num_workers=2"]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs to train on DirectRunner (multi_processing, 2 worker(s))" in out
    assert "on 2 worker process(es)" in out      # the runs really went to different processes
    assert cli.main(rep + ["--out", str(one), "-q", "--", "--direct_running_mode=in_memory"]) == 0
    a, b = _tree(two), _tree(one)
    assert sorted(k for k in a if k.endswith("results.json")) == [
        "runs/UCF/main_features/avca/seed42-quick/results.json",
        "runs/UCF/main_features/avgzslnet/seed42-quick/results.json"]
    assert a.keys() == b.keys() and len(a) == 8
    for name in a:
        assert a[name] == b[name], name
    assert "| AVCA |" in a["table3.md"].decode() and "| AVGZSLNet |" in a["table3.md"].decode()

    stamps = {p: p.stat().st_mtime_ns for p in two.rglob("results.json")}
    capsys.readouterr()
    assert cli.main(rep + ["--out", str(two), "--", "--direct_num_workers=2"]) == 0
    out = capsys.readouterr().out
    assert out.count("finished run") == 2 and "runs to train" not in out
    assert {p: p.stat().st_mtime_ns for p in two.rglob("results.json")} == stamps

    # the table alone, from the run dirs
    (two / "table3.md").unlink()
    (two / "table3.csv").unlink()
    assert cli.main(rep + ["--out", str(two), "--assemble-only"]) == 0
    assert _tree(two) == a

    # a run dir on an object store: trained locally, uploaded after every epoch, same bits
    cfg = ReproduceConfig(root=str(ucf_main_root), table=3, out="ram://sweep", quick=True,
                          models=("avca",))
    run = plan_runs(cfg)[0]
    outcome = sweep.train_run("ram://sweep", run, log=lambda line: None)
    assert outcome.status == "trained"
    remote = sweep.read_results(sweep.run_dir("ram://sweep", run.name))
    assert remote == json.loads(a[run.name + "/results.json"])
    assert sweep.train_run("ram://sweep", run).status == "finished"


def test_bad_input_is_a_usage_error(ucf_main_root, tmp_path, capsys):
    rep = ["reproduce", "--root", str(ucf_main_root), "--table", "3", "--quick",
           "--out", str(tmp_path / "o")]
    assert cli.main(rep + ["--models", "avca,nope"]) == 2
    assert "error: --models ['nope'] are not rows of Table 3" in capsys.readouterr().err
    assert cli.main(rep + ["--assemble-only"]) == 2
    assert "holds no finished run of Table 3" in capsys.readouterr().err
    assert cli.main(rep + ["--", "direct_num_workers=2"]) == 2
    assert "Beam options look like --name=value" in capsys.readouterr().err
    with pytest.raises(Exception, match="must be unique"):
        sweep.check_runs([sweep.SweepRun("a", None), sweep.SweepRun("a", None)])


def test_run_dir_has_one_writer_at_a_time(tmp_path):
    path = str(tmp_path / "runs" / "r")
    order = []

    def second():
        with sweep.run_dir_lock(path):
            order.append("second")

    with sweep.run_dir_lock(path):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        order.append("first")
    t.join(timeout=10)
    assert order == ["first", "second"]


def test_tables_on_other_features_get_distinct_run_dirs(tmp_path):
    synthesize(tmp_path, dataset="UCF", feature_set="cls_features", scale=0.02)
    synthesize(tmp_path, dataset="UCF", feature_set="main_features", scale=0.02)
    names = {t: [r.name for r in plan_runs(ReproduceConfig(root=str(tmp_path), table=t, out="o",
                                                            quick=True, models=("avca",)))]
             for t in (1, 3)}
    assert names == {1: ["runs/UCF/cls_features/avca/seed42-quick"],
                     3: ["runs/UCF/main_features/avca/seed42-quick"]}


def _fake_run(path, config):
    """A finished run dir holding `config` (a dict) and a results.json."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "results.json").write_text(json.dumps({"test": {"HM": 0.5}}))


def test_run_dir_of_another_configuration_is_refused_not_reused(ucf_main_root, tmp_path, capsys):
    out = tmp_path / "rep"
    [run] = plan_runs(ReproduceConfig(root=str(ucf_main_root), table=3, out=str(out), quick=True,
                                      models=("avca",)))
    path = out / run.name
    # a run of the same model on cls features (Table 1's) where Table 3 plans its run
    _fake_run(path, run.config.replace(data__feature_set="cls_features").to_dict())
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    rep = ["reproduce", "--root", str(ucf_main_root), "--table", "3", "--quick",
           "--models", "avca", "--out", str(out)]
    assert cli.main(rep) == 2
    captured = capsys.readouterr()
    assert "finished run" not in captured.out
    assert (f"error: {path} holds a run of another configuration (data.feature_set: "
            f"'cls_features' (in run dir) vs 'main_features' (planned))") in captured.err
    assert "choose another --out or delete that run dir" in captured.err
    assert cli.main(rep + ["--assemble-only"]) == 2
    assert "data.feature_set: 'cls_features'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="data.feature_set"):   # a worker refuses it too
        sweep.train_run(str(out), run, log=lambda line: None)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before   # nothing overwritten

    # a config.json written before a field existed compares by that field's default
    legacy = run.config.to_dict()
    del legacy["data"]["audio_window"]
    (path / "config.json").write_text(json.dumps(legacy))
    [outcome] = sweep.run_sweep([run], str(out), log=lambda line: None)
    assert outcome.status == "finished"
