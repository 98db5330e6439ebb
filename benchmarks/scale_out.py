"""Scale-out numbers (issue 16): `avca reproduce --table 3 --quick` with 1 and 2 DirectRunner
workers, and the AVCA training step with MultiWorkerMirroredStrategy (2 local worker
processes) vs one worker, same global batch.

    PYTHONPATH=. python benchmarks/scale_out.py --out benchmarks/results/scale_out.md

Writes a markdown report with the machine, its load (uptime) before and after each
measurement, and the numbers. The step benchmark re-runs this file with `--step-worker`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def reproduce_times(root: Path, work: Path) -> dict:
    out = {}
    for workers in (1, 2):
        dest = work / f"rep{workers}"
        cmd = [sys.executable, "-m", "avca_tf.cli", "reproduce", "--root", str(root),
               "--table", "3", "--quick", "-q", "--out", str(dest), "--",
               f"--direct_num_workers={workers}"]
        load = _uptime()
        t0 = time.perf_counter()
        subprocess.run(cmd, env=_env(), check=True, capture_output=True)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        rerun = subprocess.run(cmd, env=_env(), check=True, capture_output=True, text=True)
        out[workers] = {"wall_s": wall, "rerun_s": time.perf_counter() - t0,
                        "rerun_skipped": rerun.stdout.count("finished run"),
                        "load_before": load, "load_after": _uptime(),
                        "csv": (dest / "table3.csv").read_text()}
    out["same_table"] = out[1]["csv"] == out[2]["csv"]
    return out


def step_worker(root: str, steps: int, batch: int) -> None:
    """One process of the step benchmark: strategy from TF_CONFIG's presence."""
    import dataclasses
    strategy_name = "multi-worker" if os.environ.get("TF_CONFIG") else "default"
    from avca_tf.training.trainer import Trainer, get_strategy
    strategy = get_strategy(strategy_name)
    from avca_tf.data.formats.benchmark import load_benchmark
    from avca_tf.models import build_model
    from avca_tf.models.registry import get_preset
    cfg = get_preset("avca", "UCF", "main_features", root)
    train = dataclasses.replace(cfg.train, batch_size=batch, n_batches=steps + 10,
                                strategy=strategy_name)
    bench = load_benchmark(root, "UCF", "main_features")
    data = bench.protocol(1)
    with strategy.scope():
        model = build_model("avca", cfg.model, cfg.loss)
        trainer = Trainer(model, train, data.train, bench.label_embeddings)
    batches = list(trainer.sampler.epoch_dataset(0))
    for b in batches[:10]:
        trainer.train_step(b)
    float(trainer.train_step(batches[10])["total"])
    t0 = time.perf_counter()
    for b in batches[10:10 + steps]:
        losses = trainer.train_step(b)
    float(losses["total"])
    print(json.dumps({"strategy": strategy_name, "ms_per_step":
                      1000 * (time.perf_counter() - t0) / steps}))


def step_times(root: Path, steps: int, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--step-worker", "--root", str(root),
           "--steps", str(steps), "--batch", str(batch)]
    out = {}
    load = _uptime()
    single = subprocess.run(cmd, env=_env(), check=True, capture_output=True, text=True)
    out["single"] = json.loads(single.stdout.strip().splitlines()[-1])
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = [subprocess.Popen(cmd, env=_env(TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}})), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True) for i in range(2)]
    try:
        outs = [p.communicate(timeout=900)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    out["multi_worker"] = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    out["load_before"], out["load_after"] = load, _uptime()
    return out


def main():
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/scale_out.md"))
    ap.add_argument("--root", help="UCF main benchmark (default: synthesized at scale 0.1)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--step-worker", action="store_true")
    args = ap.parse_args()
    if args.step_worker:
        step_worker(args.root, args.steps, args.batch)
        return
    work = Path(tempfile.mkdtemp(prefix="scale-out-"))
    root = Path(args.root) if args.root else work / "ucf"
    if not args.root:
        subprocess.run([sys.executable, "-m", "avca_tf.cli", "synth", "--out", str(root),
                        "--dataset", "UCF", "--features", "main_features", "--scale", "0.1"],
                       env=_env(), check=True, capture_output=True)
    rep = reproduce_times(root, work)
    step = step_times(root, args.steps, args.batch)
    mw = max(w["ms_per_step"] for w in step["multi_worker"])
    lines = [
        "# Scale out (issue 16) - `benchmarks/scale_out.py`", "",
        f"Machine: {platform.node()}, {os.cpu_count()} vCPUs, {platform.platform()}, "
        f"Python {platform.python_version()}. **Shared with other jobs** (load below).", "",
        "## `avca reproduce --table 3 --quick` (4 runs, UCF main at scale 0.1)", "",
        "| DirectRunner workers | wall time | rerun (all skipped) | load before | load after |",
        "|---|---|---|---|---|"]
    for w in (1, 2):
        r = rep[w]
        lines.append(f"| {w} | {r['wall_s']:.1f} s | {r['rerun_s']:.1f} s "
                     f"({r['rerun_skipped']} finished runs skipped) | {r['load_before']} | "
                     f"{r['load_after']} |")
    lines += ["", f"Ratio 1 worker / 2 workers: **{rep[1]['wall_s'] / rep[2]['wall_s']:.2f}x**. "
              f"Same table3.csv with 1 and 2 workers: {rep['same_table']}.", "",
              f"## Training step, AVCA UCF-main, global batch {args.batch}, {args.steps} steps", "",
              "| setup | ms/step |", "|---|---|",
              f"| one worker (default strategy) | {step['single']['ms_per_step']:.1f} |",
              f"| MultiWorkerMirroredStrategy, 2 local worker processes ({args.batch // 2} "
              f"each), slowest | {mw:.1f} |", "",
              f"Multi-worker / single step time: **{mw / step['single']['ms_per_step']:.2f}x** "
              f"(load before {step['load_before']}; after {step['load_after']}).", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
