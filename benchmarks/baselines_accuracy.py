"""The six baselines and the four AVCA ablations beside the authors' code (issue 30).

    python benchmarks/baselines_accuracy.py --root DIR --work WORK \
        --reference-repo /work/ref/AVCA-GZSL --torch-python /work/refvenv/bin/python \
        --results benchmarks/results/baselines_accuracy_DATE.jsonl \
        --table benchmarks/results/baselines_accuracy.md \
        --plot benchmarks/results/baselines_accuracy.png

One command runs the whole comparison (`PLAN`, or the part `--only` selects) and skips
every run already in `--results` (same configuration, method, implementation, seed and
schedule), so rerunning it after an interruption continues where it stopped. Several
invocations may share `--work` and `--results` (e.g. one per configuration): each run is
claimed by a `<work>/<run>.claim` file holding the pid of the invocation running it.

`--root` holds one benchmark per dataset (`<root>/<DS>/...`, from `avca synth` with the
packaged real splits); `--root-for CONFIG=DIR` gives a configuration its own root.
For each (configuration, method, implementation, seed) of the plan it runs
- ours: `avca train --model METHOD` with the method's preset (the authors' run script's
  settings: avca_tf/models/baselines.py, ablations.py) and the schedule and seed
  (`benchmarks/avca_accuracy.py`'s `ours`);
- theirs: stage 1 `main.py`, stage 2 `main.py --retrain_all --save_checkpoints` and
  `get_evaluation.py`, with the arguments of the stage-1 line for the configuration's
  split in `run_scripts/<DS>-GZSL/<method>.sh` of their checkout (read at run time) and
  the method flags of its evaluation line; `--root_dir`, `--epochs`, `--n_batches` and
  `--exp_name` replaced, `--device cpu --seed S` added; through
  `benchmarks/reference/run_reference.py` (run-time shims, corrected text pairing), each in
  a fresh working directory that is deleted afterwards (the log is kept);
- theirs with `--gzsl-beta both` (implementation "authors', both beta"): their test of
  the same trained models calibrated with the audio-visual validation beta alone, our
  rule, instead of the mean of their audio, video and audio-visual betas (AVGZSLNet and
  CJME only; the other methods report one beta), i.e. a second `get_evaluation.py`.
The authors' code has no ablations (no flag of main.py builds them), so the ablation rows
are ours only.

Every finished run appends one JSON row to `--results` (test S/U/HM/ZSL in %, the beta of
ours, wall seconds, 1-min load at start/end, schedule, root, commit). `--table` writes
mean ± std (n-1) per configuration, method and implementation, then ours minus theirs per
method with a verdict, then the runs with S, U or ZSL below chance; `--plot` draws HM and
ZSL per run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import avca_accuracy  # noqa: E402  (same folder: ours(), run_cmd, load, PERF)

BASELINES = ("ale", "sje", "devise", "apn", "cjme", "avgzslnet")
ABLATIONS = ("avca-no-xatt", "avca-xatt-lc", "avca-visual", "avca-audio")
OURS, THEIRS, THEIRS_BOTH_BETA = "ours", "authors'", "authors', both beta"
IMPLS = (OURS, THEIRS, THEIRS_BOTH_BETA)
BETA_MODE = {THEIRS: "averaged", THEIRS_BOTH_BETA: "both"}  # run_reference.py --gzsl-beta
SPLITS = {"main": "main_split", "cls": "cls_split"}
MAIN_SEEDS = (0, 1, 2)


def _plan():
    """(configuration, method, implementation, seeds) of the whole comparison."""
    plan = []
    for cfg in ("UCF-main", "UCF-cls", "ActivityNet-main"):
        for m in BASELINES:
            seeds = MAIN_SEEDS + ((3, 4, 5) if cfg == "UCF-main" and m in ("apn", "avgzslnet")
                                  else ())
            plan += [(cfg, m, OURS, seeds), (cfg, m, THEIRS, seeds)]
            if m in ("avgzslnet", "cjme"):
                plan.append((cfg, m, THEIRS_BOTH_BETA, seeds))
        if cfg == "UCF-main":
            plan += [(cfg, m, OURS, MAIN_SEEDS) for m in ABLATIONS]
    return plan


PLAN = _plan()


def script_args(repo, dataset, split, method):
    """(stage-1 main.py arguments, get_evaluation.py method flags) of their run script for
    `method` on `dataset`/`split`, with the arguments this benchmark sets removed."""
    path = os.path.join(repo, "run_scripts", f"{dataset}-GZSL", f"{method}.sh")
    with open(path) as f:
        lines = [shlex.split(line) for line in f if line.strip() and not line.startswith("#")]
    train = [t for t in lines if "main.py" in t and "--retrain_all" not in t
             and t[t.index("--zero_shot_split") + 1] == split]
    evals = [t for t in lines if "get_evaluation.py" in t]
    if len(train) != 1 or not evals:
        raise RuntimeError(f"{path}: expected one stage-1 line for {split} and an "
                           f"evaluation line, found {len(train)} and {len(evals)}")
    drop = {"--root_dir", "--epochs", "--n_batches", "--exp_name", "--seed", "--device"}
    args, tokens = [], train[0][train[0].index("main.py") + 1:]
    i = 0
    while i < len(tokens):
        if tokens[i] in drop:
            i += 2
            continue
        args.append(tokens[i])
        i += 1
    ev = evals[0][evals[0].index("get_evaluation.py") + 1:]
    flags = [t for k, t in enumerate(ev) if t.startswith("--") and t not in
             ("--load_path_stage_A", "--load_path_stage_B", "--dataset_name")
             and (k + 1 >= len(ev) or ev[k + 1].startswith("--"))]
    return args, flags


def theirs(args, dataset, short, method, seed, work, log, root, gzsl_betas):
    """Their two stages, then get_evaluation.py once per test calibration in `gzsl_betas`
    (the same trained models): {gzsl_beta: result}."""
    stage1, eval_flags = script_args(args.reference_repo, dataset, SPLITS[short], method)
    shutil.rmtree(work, ignore_errors=True)  # their feature cache lives under the cwd
    os.makedirs(work)
    common = [*stage1, "--root_dir", os.path.join(root, dataset), "--epochs", str(args.epochs),
              "--n_batches", str(args.n_batches), "--device", "cpu", "--seed", str(seed)]
    launcher = [args.torch_python, os.path.join(HERE, "reference", "run_reference.py"),
                "--reference-repo", args.reference_repo, "--pairing", "corrected"]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
    run = avca_accuracy.run_cmd
    run(launcher + ["--", "main.py", *common, "--exp_name", "val"], work, log, env)
    run(launcher + ["--", "main.py", *common, "--retrain_all", "--save_checkpoints",
                    "--exp_name", "all"], work, log, env)
    best = [b for b in os.listdir(os.path.join(work, "runs", "val")) if b.endswith("_score.pt")]
    out = {}
    for gzsl_beta in gzsl_betas:
        eval_log = os.path.join(work, "runs", "all", "eval.log")
        if os.path.exists(eval_log):
            os.remove(eval_log)
        run(launcher + ["--gzsl-beta", gzsl_beta, "--", "get_evaluation.py",
                        "--load_path_stage_A", "runs/val", "--load_path_stage_B", "runs/all",
                        "--dataset_name", dataset, *eval_flags, "--device", "cpu"],
            work, log, env)
        with open(eval_log) as f:
            text = f.read()
        found = avca_accuracy.PERF.findall(text)
        if not found:
            raise RuntimeError(f"no test performance in {eval_log}")
        beta = re.findall(r"Best beta combined: ([-\d.e]+)", text)
        with open(log, "a") as f:
            f.write(text)
        s, u, hm, zsl = map(float, found[-1])
        out[gzsl_beta] = {"S": s, "U": u, "HM": hm, "ZSL": zsl, "best_file": best,
                          "beta": float(beta[-1]) if beta else None}
    shutil.rmtree(work, ignore_errors=True)
    return out


def ours(args, dataset, short, method, seed, work, log, root):
    res = avca_accuracy.ours(args, dataset, short, seed, ["--model", method], work, log, root)
    with open(os.path.join(work, "results.json")) as f:
        res["beta"] = json.load(f)["test"]["beta"]
    shutil.rmtree(work, ignore_errors=True)
    return res


def claim(path) -> bool:
    """Whether this process may run the job of `path`: a claim file holding the pid of the
    invocation that runs it (several invocations may share one --work and --results); a
    claim of a process that no longer exists is taken over."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(path) as f:
                    os.kill(int(f.read().strip() or 0), 0)
                return False  # its owner is alive
            except (ProcessLookupError, ValueError, FileNotFoundError):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
                continue
            except PermissionError:
                return False
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def chance(root, dataset, short):
    """(S/U chance, ZSL chance) in %: 1 / test classes, 1 / unseen test classes."""
    split = os.path.join(root, dataset, "class-split", SPLITS[short])

    def count(name):
        with open(os.path.join(split, name)) as f:
            return sum(1 for line in f if line.strip())
    seen, unseen = count("stage_2_test_seen.txt"), count("stage_2_test_unseen.txt")
    return 100.0 / (seen + unseen), 100.0 / unseen


def schedule(row) -> str:
    return f"{row['epochs']}x{row['n_batches']}"


def _ms(vals, digits=2):
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.{digits}f} ± {sd:.{digits}f}"


def _groups(rows):
    """{(config, method, schedule): {impl: [rows by seed]}} in plan order."""
    order = {(c, m): k for k, (c, m, _, _) in enumerate(PLAN)}
    out = {}
    for r in sorted(rows, key=lambda r: (order.get((r["config"], r["method"]), 1e9),
                                          r["config"], r["method"], schedule(r), r["seed"])):
        out.setdefault((r["config"], r["method"], schedule(r)), {}).setdefault(
            r["impl"], []).append(r)
    return out


def verdict(ours_rows, their_rows) -> tuple[str, float, float]:
    """('at or above theirs' | 'below, within the seed spread' | 'below', dHM, dZSL) on the
    seeds both sides have."""
    seeds = {r["seed"] for r in ours_rows} & {r["seed"] for r in their_rows}
    o = [r for r in ours_rows if r["seed"] in seeds]
    t = [r for r in their_rows if r["seed"] in seeds]
    d = {k: statistics.mean(r[k] for r in o) - statistics.mean(r[k] for r in t)
         for k in ("HM", "ZSL")}
    if min(d.values()) >= 0:
        return "at or above theirs", d["HM"], d["ZSL"]
    spread = max(statistics.stdev([r[k] for r in rs]) if len(rs) > 1 else 0.0
                 for rs in (o, t) for k in ("HM", "ZSL"))
    worst = min(d.values())
    return ("below, within the seed spread" if -worst <= spread else "below"), d["HM"], d["ZSL"]


def table(rows, chances) -> str:
    out = ["| config | method | implementation | schedule | seeds | S | U | HM | ZSL | "
           "wall s per run |", "|---|---|---|---|---|---|---|---|---|---|"]
    groups = _groups(rows)
    for (cfg, method, sched), impls in groups.items():
        for impl in IMPLS:
            sel = impls.get(impl)
            if not sel:
                continue
            seeds = ", ".join(str(r["seed"]) for r in sel)
            out.append(f"| {cfg} | {method} | {impl} | {sched} | {seeds} | "
                       f"{_ms([r['S'] for r in sel])} | {_ms([r['U'] for r in sel])} | "
                       f"{_ms([r['HM'] for r in sel])} | {_ms([r['ZSL'] for r in sel])} | "
                       f"{_ms([r['wall_s'] for r in sel], 0)} |")
    out += ["", "Ours minus theirs (means over the seeds both have):", "",
            "| config | method | schedule | seeds | HM | ZSL | verdict |", "|---|---|---|---|---|---|---|"]
    for (cfg, method, sched), impls in groups.items():
        if OURS in impls and THEIRS in impls:
            v, dhm, dzsl = verdict(impls[OURS], impls[THEIRS])
            n = len({r["seed"] for r in impls[OURS]} & {r["seed"] for r in impls[THEIRS]})
            out.append(f"| {cfg} | {method} | {sched} | {n} | {dhm:+.2f} | {dzsl:+.2f} | {v} |")
        elif OURS in impls:
            why = ("ours only (the authors' code has no ablations)" if method in ABLATIONS
                   else "theirs not run yet")
            out.append(f"| {cfg} | {method} | {sched} | - | - | - | {why} |")
    low = []
    for r in rows:
        c = chances.get(r["config"])
        if c and (min(r["S"], r["U"]) < c[0] or r["ZSL"] < c[1]):
            low.append(f"| {r['config']} | {r['method']} | {r['impl']} | {schedule(r)} | "
                       f"{r['seed']} | {r['S']:.2f} | {r['U']:.2f} | {r['ZSL']:.2f} | "
                       f"{c[0]:.2f} / {c[1]:.2f} |")
    out += ["", "Runs with S, U or ZSL below chance (1 / test classes; ZSL: 1 / unseen test "
            "classes):", ""]
    out += (["| config | method | implementation | schedule | seed | S | U | ZSL | "
             "chance S,U / ZSL |", "|---|---|---|---|---|---|---|---|---|"] + low
            if low else ["none"])
    return "\n".join(out) + "\n"


def per_seed_table(rows) -> str:
    out = ["| config | method | implementation | schedule | seed | S | U | HM | ZSL | beta | "
           "wall s | load start / end |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (cfg, method, sched), impls in _groups(rows).items():
        for impl in IMPLS:
            for r in impls.get(impl, []):
                beta = "" if r.get("beta") is None else f"{r['beta']:.2f}"
                out.append(f"| {cfg} | {method} | {impl} | {sched} | {r['seed']} | "
                           f"{r['S']:.2f} | {r['U']:.2f} | {r['HM']:.2f} | {r['ZSL']:.2f} | "
                           f"{beta} | {r['wall_s']:.0f} | {r['load_start']} / {r['load_end']} |")
    return "\n".join(out) + "\n"


def plot(rows, path) -> None:
    """HM and ZSL: one panel row per configuration, bars = means, dots = runs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    configs = list(dict.fromkeys(r["config"] for r in sorted(
        rows, key=lambda r: [c for c, *_ in PLAN].index(r["config"])
        if r["config"] in [c for c, *_ in PLAN] else 99)))
    groups = _groups(rows)
    fig, axes = plt.subplots(len(configs), 2, figsize=(14, 3.2 * len(configs)), squeeze=False)
    width = 0.8 / len(IMPLS)
    for row, cfg in enumerate(configs):
        keys = [k for k in groups if k[0] == cfg]
        for col, metric in enumerate(("HM", "ZSL")):
            ax = axes[row, col]
            for k, impl in enumerate(IMPLS):
                for g, key in enumerate(keys):
                    vals = [r[metric] for r in groups[key].get(impl, [])]
                    if not vals:
                        continue
                    x = g - 0.4 + width * (k + 0.5)
                    ax.bar(x, statistics.mean(vals), width * 0.9, color=f"C{k}", alpha=0.35,
                           label=impl if g == min(i for i, kk in enumerate(keys)
                                                  if groups[kk].get(impl)) else None)
                    ax.plot([x] * len(vals), vals, "o", color=f"C{k}", markersize=3)
            ax.set_xticks(range(len(keys)))
            ax.set_xticklabels([m for _, m, _ in keys], fontsize=8, rotation=20)
            ax.set_ylabel(f"test {metric} (%)")
            ax.set_title(f"{cfg} ({', '.join(sorted({s for _, _, s in keys}))})", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("synthetic features: bars = mean over seeds, dots = one run each", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="benchmark root holding <DS>/ folders")
    p.add_argument("--root-for", action="append", default=[], metavar="CONFIG=DIR",
                   help="a configuration's own benchmark root (repeatable)")
    p.add_argument("--work", required=True, help="run directories and logs")
    p.add_argument("--results", help="JSON lines, one per finished run (default "
                   "WORK/results.jsonl); runs already there are skipped")
    p.add_argument("--only", nargs="+", default=[], metavar="CONFIG[:METHOD[:IMPL]]",
                   help="run only these parts of the plan (e.g. UCF-main:ale, UCF-cls)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n-batches", type=int, default=20)
    p.add_argument("--python", default=sys.executable, help="Python with avca_tf's dependencies")
    p.add_argument("--reference-repo", help="checkout of ExplainableML/AVCA-GZSL")
    p.add_argument("--torch-python", help="Python with torch for the authors' code")
    p.add_argument("--threads", type=int, default=1, help="OMP threads of their runs")
    p.add_argument("--no-reference", action="store_true", help="run ours only")
    p.add_argument("--dry-run", action="store_true", help="list the runs still to do")
    p.add_argument("--table", help="markdown file: the tables")
    p.add_argument("--per-seed", help="markdown file: one row per run")
    p.add_argument("--plot", help="PNG: HM and ZSL per run and mean")
    args = p.parse_args(argv)
    args.root = os.path.abspath(args.root)
    roots = {c: os.path.abspath(d) for c, d in (v.split("=", 1) for v in args.root_for)}
    if not (args.no_reference or args.dry_run) and not (args.reference_repo and
                                                       args.torch_python):
        p.error("--reference-repo and --torch-python are needed (or --no-reference)")
    if args.reference_repo:
        args.reference_repo = os.path.abspath(args.reference_repo)
    os.makedirs(args.work, exist_ok=True)
    results = args.results or os.path.join(args.work, "results.jsonl")
    def read_done():
        rows = []
        if os.path.exists(results):
            with open(results) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        first = {}  # one row per run (the first written)
        for r in rows:
            first.setdefault((r["config"], r["method"], r["impl"], r["seed"], r["epochs"],
                              r["n_batches"]), r)
        return list(first.values()), set(first)
    rows, done = read_done()

    def selected(cfg, method, impl):
        return not args.only or any(
            sel.split(":") == [cfg, method, impl][:len(sel.split(":"))] for sel in args.only)

    todo = [(cfg, method, impl, seed) for cfg, method, impl, seeds in PLAN for seed in seeds
            if selected(cfg, method, impl)
            and not (args.no_reference and impl != OURS)
            and (cfg, method, impl, seed, args.epochs, args.n_batches) not in done]
    todo.sort(key=lambda t: t[3] not in MAIN_SEEDS)  # three seeds everywhere first
    print(f"{len(todo)} runs to do, {len(done)} done", flush=True)
    for k, (cfg, method, impl, seed) in enumerate(todo):
        if args.dry_run:
            print(f"  {cfg} {method} {impl} seed {seed}")
            continue
        rows, done = read_done()  # another invocation may share the results file
        if (cfg, method, impl, seed, args.epochs, args.n_batches) in done:
            continue  # written meanwhile, or with the run of another implementation
        dataset, short = cfg.split("-")
        root = roots.get(cfg, args.root)
        # the both-beta row comes from the authors' run (the same training): one claim
        run_impl = THEIRS if impl == THEIRS_BOTH_BETA else impl
        tag = re.sub(r"[^A-Za-z0-9]+", "_", f"{cfg}_{method}_{run_impl}_s{seed}_"
                     f"{args.epochs}x{args.n_batches}")
        log = os.path.join(args.work, tag + ".log")
        if not claim(os.path.join(args.work, tag + ".claim")):
            continue  # another invocation is running it
        l0, t0 = avca_accuracy.load(), time.time()
        print(f"[{k + 1}/{len(todo)}] {cfg} {method} {impl} seed {seed}", flush=True)
        if impl == OURS:
            found = {impl: ours(args, dataset, short, method, seed,
                                os.path.join(args.work, tag), log, root)}
        else:
            # the both-beta row comes from the same trained models as the authors' row
            impls = [i for i in (THEIRS, THEIRS_BOTH_BETA) if (cfg, method, i, seed) in todo
                     and (cfg, method, i, seed, args.epochs, args.n_batches) not in done]
            res = theirs(args, dataset, short, method, seed, os.path.join(args.work, tag), log,
                         root, [BETA_MODE[i] for i in impls])
            found = {i: res[BETA_MODE[i]] for i in impls}
        os.remove(os.path.join(args.work, tag + ".claim"))
        wall = round(time.time() - t0, 1)
        for i, res in found.items():
            row = {"config": cfg, "method": method, "impl": i, "seed": seed,
                   "epochs": args.epochs, "n_batches": args.n_batches, "root": root, **res,
                   "wall_s": wall, "load_start": l0, "load_end": avca_accuracy.load()}
            rows.append(row)
            done.add((cfg, method, i, seed, args.epochs, args.n_batches))
            with open(results, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    if args.dry_run:
        return
    rows, done = read_done()
    chances = {}
    for cfg in {r["config"] for r in rows}:
        dataset, short = cfg.split("-")
        try:
            chances[cfg] = chance(roots.get(cfg, args.root), dataset, short)
        except OSError:
            pass
    text = table(rows, chances)
    print(text)
    if args.table:
        with open(args.table, "w") as f:
            f.write(text)
    if args.per_seed:
        with open(args.per_seed, "w") as f:
            f.write(per_seed_table(rows))
    if args.plot and rows:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
