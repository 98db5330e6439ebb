"""Training throughput of AVCA with the UCF main preset (batch 256): steps/s for
eager, tf.function and XLA, peak memory, and validation time as a share of an epoch.

    python benchmarks/train_throughput.py [--root BENCH_ROOT] [--modes eager,function,xla]
        [--steps 60] [--mixed-precision] [--torch-python PATH --reference-repo PATH]

Without --root a full-scale synthetic UCF main benchmark is generated from the
real splits shipped in the package (into a temporary folder). With
--torch-python PATH (a Python with torch) and --reference-repo PATH (a checkout
of the authors' AVCA-GZSL code), the authors' training step is timed in the same
run by our harness benchmarks/reference/ref_step.py, which imports their model
from that checkout.
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
TORCH_TIMER = os.path.join(REPO, "benchmarks", "reference", "ref_step.py")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def gpu_peak_mib(tf):
    if not tf.config.list_physical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def time_mode(mode, bench, cfg, steps, warmup, repeats, tf, keras):
    """steps/s of one execution mode on the stage-1 training set (median of `repeats` windows)."""
    import dataclasses
    from avca_tf.models import build_model
    from avca_tf.training.trainer import Trainer
    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")
    keras.utils.set_random_seed(0)
    train_cfg = dataclasses.replace(cfg.train, jit_compile=(mode == "xla"))
    data = bench.protocol(1)
    model = build_model(cfg.model.name, cfg.model, cfg.loss)
    trainer = Trainer(model, train_cfg, data.train, bench.label_embeddings, seed=0)
    batches = [trainer.sampler.batch_indices(0, i) for i in range(warmup + steps * repeats)]
    step = ((lambda idx: trainer._step(idx, *trainer._data)) if mode == "eager"
            else trainer.train_step)
    t0 = time.perf_counter()
    for idx in batches[:warmup]:
        loss = step(idx)["total"]
    float(loss)
    first = time.perf_counter() - t0
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for idx in batches[warmup + r * steps: warmup + (r + 1) * steps]:
            loss = step(idx)["total"]
        float(loss)  # waits for the device
        rates.append(steps / (time.perf_counter() - t0))
    return {"mode": mode, "steps_per_s": sorted(rates)[len(rates) // 2],
            "steps_per_s_best": max(rates), "warmup_s": first,
            "final_loss": float(loss), "peak_rss_mib": peak_rss_mib(),
            "gpu_peak_mib": gpu_peak_mib(tf)}, model


def time_validation(model, bench, cfg, repeats=3):
    """Seconds of one stage-1 validation (distances + 16-beta search)."""
    from avca_tf.training.trainer import DistanceFn, evaluate_gzsl
    fn = DistanceFn(model, cfg.train.eval_batch_size)
    data = bench.protocol(1)
    evaluate_gzsl(fn, data, bench.label_embeddings)  # trace
    t0 = time.perf_counter()
    for _ in range(repeats):
        evaluate_gzsl(fn, data, bench.label_embeddings)
    return (time.perf_counter() - t0) / repeats, len(data.eval_seen) + len(data.eval_unseen)


def time_torch(python, repo, steps, batch, repeats):
    if not (python and repo):
        return {"skipped": "needs --torch-python and --reference-repo"}
    cmd = [python, TORCH_TIMER, "--model", "avca", "--config", "UCF-main",
           "--reference-repo", repo, "--steps", str(steps), "--batch-size", str(batch),
           "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"no JSON in output: {proc.stdout[-500:]}"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="benchmark root holding main_features (default: synthesize)")
    p.add_argument("--dataset", default="UCF",
                   help="dataset under --root (default UCF; Toy for the toy benchmark)")
    p.add_argument("--modes", default="eager,function,xla")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--eager-steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="timed windows; steps/s is their median")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--torch-python", help="python of a venv with torch (times the authors' step)")
    p.add_argument("--reference-repo", help="checkout of the authors' AVCA-GZSL code "
                                            "(its model is imported by the torch timer)")
    p.add_argument("--json-out", help="also write the results as JSON here")
    args = p.parse_args(argv)

    import dataclasses
    import keras
    import tensorflow as tf
    from avca_tf.data.benchmark import load_benchmark
    from avca_tf.models import get_preset

    root, dataset = args.root, args.dataset
    if root is None:  # full-scale UCF from the packaged real splits
        from avca_tf.data.synth import synthesize
        root = tempfile.mkdtemp(prefix="avca_bench_")
        dataset = "UCF"
        synthesize(root, dataset=dataset, feature_set="main_features", seed=0)
    bench = load_benchmark(root, dataset, "main_features")
    cfg = get_preset("avca", "UCF", "main_features")
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, batch_size=args.batch_size,
                                                mixed_precision=args.mixed_precision))
    if args.mixed_precision:
        gpu = bool(tf.config.list_physical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    gpus = tf.config.list_physical_devices("GPU")
    device = (tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
              if gpus else "CPU")
    report = {"device": device, "data": f"{dataset} main_features ({root})",
              "cpu_count": os.cpu_count(), "load_avg_before": os.getloadavg(),
              "batch_size": args.batch_size, "policy": keras.mixed_precision.global_policy().name,
              "tensorflow": tf.__version__, "keras": keras.__version__, "modes": []}
    model = None
    for mode in [m for m in args.modes.split(",") if m]:
        steps = args.eager_steps if mode == "eager" else args.steps
        res, model = time_mode(mode, bench, cfg, steps, args.warmup,
                               1 if mode == "eager" else args.repeats, tf, keras)
        report["modes"].append(res)
        print(json.dumps(res), flush=True)
    if model is not None:
        val_s, n_val = time_validation(model, bench, cfg)
        best = max(r["steps_per_s"] for r in report["modes"])
        epoch_train_s = cfg.train.n_batches / best
        report["validation"] = {"seconds": val_s, "samples": n_val,
                                "epoch_train_s_at_best_mode": epoch_train_s,
                                "share_of_epoch": val_s / (val_s + epoch_train_s)}
        print(json.dumps(report["validation"]), flush=True)
    if args.torch_python:
        report["torch_reference"] = time_torch(args.torch_python, args.reference_repo,
                                               args.steps, args.batch_size, args.repeats)
        print(json.dumps({"torch_reference": report["torch_reference"]}), flush=True)
    report["load_avg_after"] = os.getloadavg()
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
