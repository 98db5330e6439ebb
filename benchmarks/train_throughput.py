"""Training speed of AVCA against the authors' code, in one run (issue 17).

    python benchmarks/train_throughput.py [--root BENCH_ROOT] \
        [--modes default,function:0,function,bf16-matmul,xla] [--steps 40] [--repeats 3] \
        [--torch-python PATH --reference-repo PATH [--torch-threads 1,2]] \
        [--protocol EPOCHS,BATCHES] [--interleave ROUNDS] [--json-out FILE]

Step: steps/s of our training step (UCF main preset, batch 256, every loss term) per
mode, each mode in its own process (TensorFlow's thread pools are fixed per process).
A mode is `<kind>[:<intra-op threads>[:<inter-op threads>]]`; kind is default (the
preset's precision, "auto" resolved for this CPU), function (tf.function, float32), xla
(jit_compile), bf16-matmul (dense matmuls in bfloat16), mixed (Keras mixed_bfloat16) or
eager; the thread counts default to the preset's (1 and 1; 0 is TensorFlow's pool, one
per core).
With --torch-python (a Python with torch) and --reference-repo (the authors' AVCA-GZSL
checkout) the authors' step (`optimize_params` + their extra `get_embeddings`) is timed
by benchmarks/reference/ref_step.py right after, once per --torch-threads value; ratios
are against their fastest thread count and against torch's default (one per core).

Protocol (--protocol E,N): a whole `avca train` (stage 1, stage 2, validation, checkpoints,
test evaluation; our defaults) against the authors' stage 1 + stage 2 + get_evaluation.py
(as benchmarks/avca_accuracy.py runs them, fresh working dir) at E epochs x N batches,
their code at their fastest step thread count. `--interleave R` repeats ours and theirs R
times, alternating, so that both meet the same load on a shared machine; each ratio is
the median of the rounds' ratios. Without --root a full-scale synthetic UCF
main benchmark is generated from the packaged real splits. Each number comes with the
machine's load average; the report is printed as JSON (and written to --json-out).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
TORCH_TIMER = os.path.join(REPO, "benchmarks", "reference", "ref_step.py")
KINDS = ("default", "function", "xla", "bf16-matmul", "mixed", "eager")


def parse_mode(spec: str) -> tuple[str, int | None, int | None]:
    kind, *threads = spec.split(":")
    if kind not in KINDS or len(threads) > 2 or not all(t.isdigit() for t in threads):
        raise SystemExit(f"error: unknown mode {spec!r}; expected <kind>[:<intra>[:<inter>]], "
                         f"kind one of {list(KINDS)}, thread counts >= 0")
    intra, inter = ([int(t) for t in threads] + [None, None])[:2]
    return kind, intra, inter


def child(args) -> dict:
    """Times one mode in this process: steps/s, CPU ms per step, peak RSS, validation time."""
    import dataclasses
    import keras
    import tensorflow as tf
    from avca_tf.data.formats.benchmark import load_benchmark
    from avca_tf.models import build_model, get_preset
    from avca_tf.training.trainer import (DistanceFn, Trainer, evaluate_gzsl, prepare_process,
                                          resolve_precision)
    kind, intra, inter = parse_mode(args.child)
    cfg = get_preset("avca", "UCF", "main_features")
    train = dataclasses.replace(
        cfg.train, batch_size=args.batch_size, jit_compile=kind == "xla",
        precision=resolve_precision(cfg.train.precision) if kind == "default" else
        {"bf16-matmul": "bf16-matmul", "mixed": "mixed"}.get(kind, "float32"),
        intra_op_threads=cfg.train.intra_op_threads if intra is None else intra,
        inter_op_threads=cfg.train.inter_op_threads if inter is None else inter)
    prepare_process(train)  # the thread pools, as every training process
    if kind == "mixed":  # as protocol._precision
        gpu = bool(tf.config.list_physical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    bench = load_benchmark(args.root, args.dataset, "main_features")
    keras.utils.set_random_seed(0)
    model = build_model(cfg.model.name, cfg.model, cfg.loss)
    data = bench.protocol(1)
    trainer = Trainer(model, train, data.train, bench.label_embeddings, seed=0)
    steps = args.eager_steps if kind == "eager" else args.steps
    repeats = 1 if kind == "eager" else args.repeats
    batches = [trainer.sampler.batch_indices(0, i) for i in range(args.warmup + steps * repeats)]
    step = ((lambda idx: trainer._step(idx, *trainer._data)) if kind == "eager"
            else trainer.train_step)
    t0 = time.perf_counter()
    for idx in batches[:args.warmup]:
        loss = step(idx)["total"]
    float(loss)
    warmup_s = time.perf_counter() - t0
    rates, cpu = [], []
    for r in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        for idx in batches[args.warmup + r * steps: args.warmup + (r + 1) * steps]:
            loss = step(idx)["total"]
        float(loss)  # waits for the device
        rates.append(steps / (time.perf_counter() - t0))
        cpu.append((time.process_time() - c0) / steps * 1e3)
    fn = DistanceFn(model, train.eval_batch_size)
    evaluate_gzsl(fn, data, bench.label_embeddings)  # trace
    t0 = time.perf_counter()
    for _ in range(3):
        evaluate_gzsl(fn, data, bench.label_embeddings)
    val_s = (time.perf_counter() - t0) / 3
    rate = sorted(rates)[len(rates) // 2]
    return {"mode": args.child, "precision": train.precision, "jit_compile": train.jit_compile,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "steps_per_s": rate, "steps_per_s_best": max(rates),
            "cpu_ms_per_step": sorted(cpu)[len(cpu) // 2], "warmup_s": warmup_s,
            "final_loss": float(loss),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "validation_s": val_s,
            "validation_share_of_epoch": val_s / (val_s + cfg.train.n_batches / rate),
            "load_avg": os.getloadavg()}


def last_json(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"no JSON in output: {stdout[-500:]}"}


def time_mode(args, spec) -> dict:
    cmd = [sys.executable, __file__, "--child", spec, "--root", args.root, "--dataset",
           args.dataset, "--steps", str(args.steps), "--eager-steps", str(args.eager_steps),
           "--warmup", str(args.warmup), "--repeats", str(args.repeats), "--batch-size",
           str(args.batch_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"))
    if proc.returncode != 0:
        return {"mode": spec, "error": proc.stderr[-2000:]}
    return last_json(proc.stdout)


def time_torch(args, threads: int) -> dict:
    cmd = [args.torch_python, TORCH_TIMER, "--model", "avca", "--config", "UCF-main",
           "--reference-repo", args.reference_repo, "--steps", str(args.steps), "--batch-size",
           str(args.batch_size), "--repeats", str(args.repeats), "--threads", str(threads)]
    # their OpenMP threads wait passively (as benchmarks/avca_accuracy.py runs them): spinning
    # threads stall a shared machine, and theirs with it
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"threads": threads, "error": proc.stderr[-2000:]}
    return last_json(proc.stdout)


def time_protocol(args, epochs: int, n_batches: int, torch_threads: int) -> dict:
    """Wall seconds of whole protocol runs of ours and of theirs (UCF main, seed 0), each
    in fresh processes: `--interleave` rounds, alternating which goes first."""
    from benchmarks.avca_accuracy import ours, theirs
    work = tempfile.mkdtemp(prefix="avca_protocol_")
    ns = argparse.Namespace(root=args.root, python=sys.executable, epochs=epochs,
                            n_batches=n_batches, torch_python=args.torch_python,
                            reference_repo=args.reference_repo, pairing="corrected",
                            threads=torch_threads)
    runners = {"ours": lambda d, log: ours(ns, args.dataset, "main", 0, [], d, log, args.root),
               "theirs": lambda d, log: theirs(ns, args.dataset, "main", 0, d, log, args.root)}
    out = {"epochs": epochs, "n_batches": n_batches, "torch_threads": torch_threads,
           "rounds": []}
    for rnd in range(args.interleave):
        row = {}
        for name in ("ours", "theirs") if rnd % 2 == 0 else ("theirs", "ours"):
            run_dir = os.path.join(work, f"{name}{rnd}")
            load0, t0 = os.getloadavg()[0], time.perf_counter()
            res = runners[name](run_dir, os.path.join(work, f"{name}{rnd}.log"))
            row[name] = {"wall_s": time.perf_counter() - t0, "load_avg_start": load0,
                         "load_avg_end": os.getloadavg()[0],
                         **{k: res[k] for k in ("S", "U", "HM", "ZSL")}}
            timing = os.path.join(run_dir, "timing.json")
            if name == "ours" and os.path.exists(timing):  # our run's parts, in seconds
                with open(timing) as f:
                    row[name]["parts"] = json.load(f)
            print(json.dumps({f"protocol_{name}": row[name], "round": rnd}), flush=True)
        row["ratio"] = row["theirs"]["wall_s"] / row["ours"]["wall_s"]
        out["rounds"].append(row)
    out["ratio"] = median([r["ratio"] for r in out["rounds"]])
    out["work"] = work
    return out


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def step_ratios(modes: list[dict], torch: list[dict]) -> dict:
    """Per mode: its steps/s over the authors' fastest thread count (and over torch's default,
    one thread per core) of the same round, per round and their median."""
    out = {}
    for rnd in sorted({r.get("round", 0) for r in modes}):
        ref = [t for t in torch if "steps_per_s" in t and t.get("round", 0) == rnd]
        if not ref:
            continue
        best = max(ref, key=lambda t: t["steps_per_s"])
        default = next((t for t in ref if t["threads"] == os.cpu_count()), best)
        for r in modes:
            if "steps_per_s" in r and r.get("round", 0) == rnd:
                o = out.setdefault(r["mode"], {"vs_authors_best_per_round": [],
                                               "vs_authors_default_threads_per_round": [],
                                               "authors_best_threads": []})
                o["vs_authors_best_per_round"].append(r["steps_per_s"] / best["steps_per_s"])
                o["vs_authors_default_threads_per_round"].append(
                    r["steps_per_s"] / default["steps_per_s"])
                o["authors_best_threads"].append(best["threads"])
                if "cpu_ms_per_step" in best:  # CPU time per step: less bent by a shared machine
                    o.setdefault("authors_best_cpu_ms_over_ours_per_round", []).append(
                        best["cpu_ms_per_step"] / r["cpu_ms_per_step"])
    for o in out.values():
        o["vs_authors_best"] = median(o["vs_authors_best_per_round"])
        o["vs_authors_default_threads"] = median(o["vs_authors_default_threads_per_round"])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="benchmark root holding main_features (default: synthesize)")
    p.add_argument("--dataset", default="UCF",
                   help="dataset under --root (default UCF; Toy for the toy benchmark)")
    p.add_argument("--modes", default="default,function:0,function,bf16-matmul,xla")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--eager-steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3, help="timed windows; steps/s is their median")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--torch-python", help="python of a venv with torch (times the authors' step)")
    p.add_argument("--reference-repo", help="checkout of the authors' AVCA-GZSL code "
                                            "(its model is imported by the torch timer)")
    p.add_argument("--torch-threads", default="1,2", help="torch thread counts to time")
    p.add_argument("--protocol", metavar="EPOCHS,BATCHES",
                   help="also time a whole protocol run of both at this schedule")
    p.add_argument("--interleave", type=int, default=1, metavar="ROUNDS",
                   help="rounds of ours then theirs (step: every mode, then every torch thread "
                        "count; protocol: alternating which runs first), so both share the "
                        "machine's load; ratios are the median of each round's")
    p.add_argument("--json-out", help="also write the results as JSON here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    for spec in args.modes.split(","):
        parse_mode(spec)
    if args.interleave < 1:
        raise SystemExit("error: --interleave must be >= 1")
    if args.protocol and not (args.torch_python and args.reference_repo):
        raise SystemExit("error: --protocol needs --torch-python and --reference-repo")
    if args.root is None:  # full-scale UCF from the packaged real splits
        from avca_tf.data.synthesis.synth import synthesize
        args.root, args.dataset = tempfile.mkdtemp(prefix="avca_bench_"), "UCF"
        synthesize(args.root, dataset="UCF", feature_set="main_features", seed=0)
    args.root = os.path.abspath(args.root)
    report = {"data": f"{args.dataset} main_features ({args.root})", "cpu_count": os.cpu_count(),
              "batch_size": args.batch_size, "load_avg_before": os.getloadavg(), "modes": []}
    if args.torch_python:
        report["torch_reference"] = []
    for rnd in range(args.interleave):  # ours and theirs alternate, sharing the load
        for spec in args.modes.split(","):
            res = dict(time_mode(args, spec), round=rnd)
            report["modes"].append(res)
            print(json.dumps(res), flush=True)
        for threads in ([int(t) for t in args.torch_threads.split(",")]
                        if args.torch_python else []):
            res = dict(time_torch(args, threads), round=rnd)
            report["torch_reference"].append(res)
            print(json.dumps({"torch_reference": res}), flush=True)
    if args.torch_python:
        report["ratios"] = step_ratios(report["modes"], report["torch_reference"])
        torch_ok = [t for t in report["torch_reference"] if "steps_per_s" in t]
        if args.protocol and torch_ok:
            epochs, n_batches = (int(x) for x in args.protocol.split(","))
            threads = [t["threads"] for t in torch_ok]
            fastest = max(set(threads), key=lambda n: median(
                [t["steps_per_s"] for t in torch_ok if t["threads"] == n]))
            report["protocol"] = time_protocol(args, epochs, n_batches, fastest)
    report["load_avg_after"] = os.getloadavg()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
