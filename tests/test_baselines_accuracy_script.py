"""benchmarks/baselines_accuracy.py without training: the commands are replaced by a stub
that writes what `avca train` and the authors' get_evaluation.py write, so the driver's
bookkeeping (their run-script arguments, rows, resume, tables) is checked fast."""
import importlib.util
import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "benchmarks", "baselines_accuracy.py")

# the shape of their run_scripts/UCF-GZSL/<method>.sh (two feature sets, two stages, eval)
RUN_SCRIPT = """#First stage training
python main.py --root_dir avgzsl_benchmark_datasets/UCF/ --feature_extraction_method main_features --input_size_audio 512 --input_size_video 512 --lr_scheduler --dataset_name UCF --zero_shot_split main_split --epochs 50 --lr 0.001 --n_batches 500   --dropout_baselines 0.2 --{m} --exp_name {m}_ucf_val_main
python main.py --root_dir avgzsl_benchmark_datasets/UCF/ --feature_extraction_method cls_features --input_size_audio 128 --input_size_video 4096 --lr_scheduler --dataset_name UCF --zero_shot_split cls_split --epochs 50 --lr 0.001 --n_batches 500   --dropout_baselines 0.2 --{m} --norm_inputs --exp_name {m}_ucf_val_cls
#Second stage training
python main.py --root_dir avgzsl_benchmark_datasets/UCF/ --feature_extraction_method main_features --input_size_audio 512 --input_size_video 512 --lr_scheduler --dataset_name UCF --zero_shot_split main_split --epochs 50 --lr 0.001 --n_batches 500   --dropout_baselines 0.2 --{m} --retrain_all  --save_checkpoints --exp_name {m}_ucf_all_main

#Evaluation scripts
python get_evaluation.py --load_path_stage_A runs/{m}_ucf_val_main --load_path_stage_B runs/{m}_ucf_all_main  --dataset_name UCF --{m}
"""


@pytest.fixture()
def bench(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("baselines_accuracy", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    repo = tmp_path / "AVCA-GZSL"
    (repo / "run_scripts" / "UCF-GZSL").mkdir(parents=True)
    for m in mod.BASELINES:
        (repo / "run_scripts" / "UCF-GZSL" / f"{m}.sh").write_text(RUN_SCRIPT.format(m=m))
    calls = []

    def fake_run_cmd(cmd, cwd, log, env=None):
        calls.append((cmd, cwd))
        seed = int(cmd[cmd.index("--seed") + 1]) if "--seed" in cmd else None
        if "--out" in cmd:   # ours: avca train
            out = cmd[cmd.index("--out") + 1]
            os.makedirs(out, exist_ok=True)
            test = {"S": 0.5 + 0.1 * seed, "U": 0.1, "HM": 0.2, "ZSL": 0.1, "beta": 0.4}
            with open(os.path.join(out, "results.json"), "w") as f:
                json.dump({"test": test, "stage1": {"best_epoch": 2}}, f)
        elif "main.py" in cmd:
            name = cmd[cmd.index("--exp_name") + 1]
            os.makedirs(os.path.join(cwd, "runs", name), exist_ok=True)
            if name == "val":
                open(os.path.join(cwd, "runs", name, "Model_score.pt"), "w").close()
        else:                # get_evaluation.py
            both = "--gzsl-beta" in cmd and cmd[cmd.index("--gzsl-beta") + 1] == "both"
            with open(os.path.join(cwd, "runs", "all", "eval.log"), "w") as f:
                f.write(f"Best beta combined: {0.2 if both else 0.6}\n"
                        "Seen performance=40.00, Unseen performance=10.00, "
                        f"GZSL performance={16.0 if both else 30.0:.2f}, ZSL performance=12.00\n")

    monkeypatch.setattr(mod.avca_accuracy, "run_cmd", fake_run_cmd)
    monkeypatch.setattr(mod.avca_accuracy, "git_commit", lambda: "abc1234")
    return mod, calls, str(repo)


def test_their_run_script_arguments(bench):
    mod, _, repo = bench
    args, flags = mod.script_args(repo, "UCF", "cls_split", "sje")
    assert flags == ["--sje"]
    assert "--norm_inputs" in args and "--sje" in args and "--retrain_all" not in args
    assert args[args.index("--input_size_video") + 1] == "4096"
    for dropped in ("--root_dir", "--epochs", "--n_batches", "--exp_name"):
        assert dropped not in args
    with pytest.raises(RuntimeError, match="expected one stage-1 line"):
        mod.script_args(repo, "UCF", "no_split", "sje")


def test_rows_resume_and_tables(bench, tmp_path):
    mod, calls, repo = bench
    results, table = str(tmp_path / "r.jsonl"), str(tmp_path / "t.md")
    argv = ["--root", str(tmp_path / "data"), "--work", str(tmp_path / "work"),
            "--results", results, "--reference-repo", repo, "--torch-python", "python",
            "--only", "UCF-cls:avgzslnet", "UCF-main:avca-audio", "--epochs", "2",
            "--n-batches", "5", "--table", table, "--per-seed", str(tmp_path / "p.md"),
            "--plot", str(tmp_path / "p.png")]
    mod.main(argv)
    rows = [json.loads(line) for line in open(results)]
    # avgzslnet: ours, theirs and theirs with the both beta x 3 seeds; avca-audio: ours x 3
    assert len(rows) == 12
    assert {r["impl"] for r in rows if r["method"] == "avca-audio"} == {"ours"}
    their_cmds = [c for c, _ in calls if "main.py" in c]
    assert all(c[c.index("--epochs") + 1] == "2" and c[c.index("--n_batches") + 1] == "5"
               and c[c.index("--zero_shot_split") + 1] == "cls_split" for c in their_cmds)
    evals = [c for c, _ in calls if "get_evaluation.py" in c]
    assert all("--avgzslnet" in c for c in evals)  # the method flag of their eval line
    # the both-beta rows are a second evaluation of the same trained models
    assert len(evals) == 6 and len(their_cmds) == 6
    assert sum(c[c.index("--gzsl-beta") + 1] == "both" for c in evals) == 3
    ours = [c for c, _ in calls if "--out" in c]
    assert all(c[c.index("--model") + 1] in ("avgzslnet", "avca-audio") for c in ours)
    theirs = next(r for r in rows if r["impl"] == "authors'" and r["seed"] == 1)
    assert (theirs["HM"], theirs["beta"], theirs["best_file"]) == (30.0, 0.6, ["Model_score.pt"])
    mine = next(r for r in rows if r["impl"] == "ours" and r["method"] == "avgzslnet"
                and r["seed"] == 2)
    assert mine["S"] == pytest.approx(70.0) and mine["beta"] == 0.4
    assert not any(os.path.isdir(os.path.join(tmp_path, "work", d))
                   for d in os.listdir(tmp_path / "work"))  # run folders removed, logs kept
    text = open(table).read()
    assert "| UCF-cls | avgzslnet | ours | 2x5 | 0, 1, 2 | 60.00 ± 10.00 |" in text
    assert "| UCF-cls | avgzslnet | 2x5 | 3 | -10.00 | -2.00 | below |" in text
    assert "| UCF-main | avca-audio | 2x5 | - | - | - | ours only" in text
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| UCF-cls | avgzslnet | authors', both beta | 2x5 | 0 | 40.00 | 10.00 | 16.00 |" \
        in open(tmp_path / "p.md").read()

    n = len(calls)
    mod.main(argv)   # everything is in the results: nothing reruns
    assert len(calls) == n
    mod.main(argv[:argv.index("--epochs")] + ["--epochs", "3", "--n-batches", "5"])
    assert len(calls) > n  # another schedule is another run


def test_verdict_within_spread():
    spec = importlib.util.spec_from_file_location("baselines_accuracy", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    row = lambda seed, hm, zsl: {"seed": seed, "HM": hm, "ZSL": zsl}  # noqa: E731
    ours = [row(0, 10, 10), row(1, 20, 20)]
    assert mod.verdict(ours, [row(0, 14, 14), row(1, 18, 18)])[0] == \
        "below, within the seed spread"
    assert mod.verdict(ours, [row(0, 30, 30), row(1, 31, 31)])[0] == "below"
    assert mod.verdict(ours, [row(0, 5, 5), row(1, 20, 20), row(7, 99, 99)])[0] == \
        "at or above theirs"


def test_claims_share_work_between_invocations(bench, tmp_path):
    mod, calls, repo = bench
    work = tmp_path / "work"
    work.mkdir()
    tag = "UCF_main_ale_ours_s1_2x5"
    (work / f"{tag}.claim").write_text(str(os.getpid()))        # running elsewhere
    (work / "UCF_main_ale_ours_s2_2x5.claim").write_text("999999999")  # owner gone
    argv = ["--root", str(tmp_path), "--work", str(work), "--results", str(tmp_path / "r.jsonl"),
            "--no-reference", "--only", "UCF-main:ale:ours", "--epochs", "2", "--n-batches", "5"]
    mod.main(argv)
    rows = [json.loads(line) for line in open(tmp_path / "r.jsonl")]
    assert sorted(r["seed"] for r in rows) == [0, 2]
    assert [f for f in os.listdir(work) if f.endswith(".claim")] == [f"{tag}.claim"]
