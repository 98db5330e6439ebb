"""benchmarks/avca_accuracy.py without training: `avca train` is replaced by a stub that
writes a results.json, so the driver's bookkeeping (rows, resume, table) is checked fast."""
import importlib.util
import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "benchmarks", "avca_accuracy.py")


@pytest.fixture()
def acc(monkeypatch):
    spec = importlib.util.spec_from_file_location("avca_accuracy", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    calls = []

    def fake_run_cmd(cmd, cwd, log, env=None):
        calls.append(cmd)
        out = cmd[cmd.index("--out") + 1]
        seed = int(cmd[cmd.index("--seed") + 1])
        os.makedirs(out, exist_ok=True)
        test = {"S": 0.5 + 0.1 * seed, "U": 0.1, "HM": 0.2, "ZSL": 0.1 + 0.01 * seed}
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump({"test": test, "stage1": {"best_epoch": 3 + seed}}, f)

    monkeypatch.setattr(mod, "run_cmd", fake_run_cmd)
    monkeypatch.setattr(mod, "git_commit", lambda: "abc1234")
    return mod, calls


def test_ours_rows_resume_and_table(acc, tmp_path):
    mod, calls = acc
    work, table = str(tmp_path / "work"), str(tmp_path / "t.md")
    argv = ["--root", str(tmp_path), "--root-for", f"UCF-cls={tmp_path / 'ucf'}",
            "--configs", "UCF-cls", "--seeds", "0", "1", "--epochs", "4", "--n-batches", "7",
            "--work", work, "--no-reference", "--variant", 'bn=--bn-double-update',
            "--table", table]
    mod.main(argv)
    assert len(calls) == 4  # 2 seeds x (ours, bn)
    assert all(c[c.index("--root") + 1] == str(tmp_path / "ucf") for c in calls)
    assert sum("--bn-double-update" in c for c in calls) == 2
    assert all(c[c.index("--epochs") + 1] == "4" and c[c.index("--n-batches") + 1] == "7"
               for c in calls)
    rows = [json.loads(line) for line in open(os.path.join(work, "results.jsonl"))]
    assert {(r["impl"], r["seed"]) for r in rows} == {("ours", 0), ("ours", 1),
                                                     ("bn", 0), ("bn", 1)}
    r = next(r for r in rows if r["impl"] == "ours" and r["seed"] == 1)
    assert r["S"] == pytest.approx(60.0) and r["best_epoch"] == 4
    assert (r["epochs"], r["n_batches"], r["commit"]) == (4, 7, "abc1234")
    text = open(table).read()
    assert "| UCF-cls | ours | 4x7 | 0, 1 | 55.00 ± 7.07 |" in text

    mod.main(argv)  # everything is in results.jsonl: nothing reruns
    assert len(calls) == 4
    mod.main(argv[:argv.index("--epochs")] + ["--epochs", "5", "--n-batches", "7"]
             + argv[argv.index("--work"):])  # another schedule is another run
    assert len(calls) == 8
    mod.main(argv + ["--per-seed", "--plot", str(tmp_path / "acc.png")])
    assert (tmp_path / "acc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    per_seed = open(table).read()
    assert "| UCF-cls | bn | 5x7 | 1 | 60.00 | 10.00 | 20.00 | 11.00 | 4 |" in per_seed
