"""Helpers shared by the side-by-side benchmarks against the authors' code
(compare_tcaf.py, compare_clipclap.py, tcaf_throughput.py): subprocess runs with a
log, the single-thread environment of our runs, the mean ± std table, machine load."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
METRICS = ("S", "U", "HM", "ZSL")


def sh(cmd, log, env=None):
    """Runs `cmd` with stdout+stderr to `log`; its wall time in seconds (exits on failure)."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - t0
    if rc:
        raise SystemExit(f"failed ({rc}): {' '.join(cmd)}; see {log}")
    return wall


def our_env(threads):
    """Environment of our subprocesses: `threads` TF/OMP threads, this checkout first on the path."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads),
               OMP_NUM_THREADS=str(threads))
    rest = [x for x in env.get("PYTHONPATH", "").split(os.pathsep) if x]
    env["PYTHONPATH"] = os.pathsep.join([REPO] + rest)
    return env


def torch_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def fmt(vals):
    """Percent, mean ± sample std (one value: as is)."""
    v = [100 * x for x in vals]
    if len(v) == 1:
        return f"{v[0]:.2f}"
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"


def table(results, configs, impls):
    """Markdown: one row per (config, implementation), test metrics mean ± std over seeds."""
    lines = ["| config | implementation | seeds | S | U | HM | ZSL | best epoch (1-based) | "
             "stage-2 epochs | wall s / run |", "|---" * 10 + "|"]
    for cfg in configs:
        for impl in impls:
            rs = [r for r in results if r["config"] == cfg and r["implementation"] == impl]
            if not rs:
                continue
            m = {k: fmt([r["test"][k] for r in rs]) for k in METRICS}
            lines.append(f"| {cfg} | {impl} | {len(rs)} | {m['S']} | {m['U']} | {m['HM']} | "
                         f"{m['ZSL']} | {','.join(str(r['best_epoch_1based']) for r in rs)} | "
                         f"{','.join(str(r['stage2_epochs']) for r in rs)} | "
                         f"{statistics.mean(r['wall_s'] for r in rs):.0f} |")
    return "\n".join(lines)


def per_seed_table(results):
    """Markdown: one row per run (test metrics in percent, beta, epochs, wall time, load)."""
    lines = ["| config | implementation | seed | S | U | HM | ZSL | beta | best epoch (1-based) | "
             "stage-2 epochs | wall s | load avg (1 min) before / after |", "|---" * 12 + "|"]
    for r in results:
        t = r["test"]
        load = r.get("load_avg")
        lines.append(
            f"| {r['config']} | {r['implementation']} | {r['seed']} | "
            + " | ".join(f"{100 * t[k]:.2f}" for k in METRICS)
            + f" | {r['beta'] if r['beta'] is None else round(float(r['beta']), 3)} | "
              f"{r['best_epoch_1based']} | {r['stage2_epochs']} | {r['wall_s']:.0f} | "
            + (f"{load[0]:.2f} / {load[1]:.2f} |" if load else "– |"))
    return "\n".join(lines)


def machine():
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, shell=True).stdout.strip()
        except Exception:
            return ""
    return {"nproc": os.cpu_count(), "cpu": out("lscpu | grep 'Model name' | sed 's/.*: *//'"),
            "uptime": out("uptime"), "loadavg": os.getloadavg(),
            "python": platform.python_version()}


def write_report(out, stem, md, repro, before, after, summary):
    """Appends the reproducibility and machine lines to the markdown lines `md`, writes
    <out>/<stem>.md and <out>/summary.json (`summary` plus repro and machine) and prints it."""
    import json
    if repro:
        md.append(f"Bit-reproducibility: {repro.get('config', '')} seed {repro['seed']} run "
                  f"twice, results.json identical: {repro['results_json_identical']}.")
    md += ["", f"Machine: {before['nproc']} CPUs, {before['cpu']}; load before: "
               f"`{before['uptime']}`; after: `{after['uptime']}`."]
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({**summary, "repro": repro, "machine_before": before, "machine_after": after},
                  f, indent=1)
    print("\n".join(md))
