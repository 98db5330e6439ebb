"""Ingestion and input throughput on a VGGSound-sized cls benchmark (128-d audio, 4096-d video).

    python benchmarks/ingest_throughput.py [--scale 0.05] [--train-steps 20]
        [--results benchmarks/results/ingest.md] [-- BEAM_OPTIONS]

Measured in one run on the same files:
1. raw h5 read rate: h5py reads every stage file ('data' + 'video_urls');
2. `avca ingest` (avca_tf.beam.ingest.run_ingest, DirectRunner unless Beam
   options say otherwise), wall time including the runner's start-up, and the
   start-up of an empty pipeline for reference;
3. tf.data input: the TFRecords of all stages read and parsed in batches of
   256 (best of 3 uncached passes);
4. training consumption: AVCA steps/s at batch 256 with the VGGSound cls
   preset, through avca_tf.training.trainer.Trainer.

Targets (issue 6): ingest >= 0.3x raw read; input >= 10x training consumption.
`--scale` multiplies every per-class sample count of the synthesized
benchmark (VGGSound-GZSL cls at scale 1 is about 175k rows per copy).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BATCH = 256


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_before": os.getloadavg()}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the cores are shared)."""
    import resource
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def raw_read(root: Path, dataset: str, feature_set: str, repeats: int = 3) -> dict:
    """Best of `repeats` full reads of all stage h5 files with h5py."""
    import h5py
    from avca_tf.data.formats.benchmark import MODALITIES, STAGES, Layout
    layout = Layout(root, dataset, feature_set)
    files = [p for s in STAGES for m in MODALITIES for p in sorted(layout.stage_dir(m, s).glob("*.h5"))]
    best = best_cpu = None
    for _ in range(repeats):
        rows = nbytes = 0
        t0, c0 = time.perf_counter(), cpu_seconds()
        for p in files:
            with h5py.File(p, "r") as f:
                data, urls = f["data"][()], f["video_urls"][()]
            nbytes += data.nbytes + urls.nbytes
            rows += data.shape[0] if "/audio/" in str(p) else 0
        dt, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        best = dt if best is None else min(best, dt)
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
    return {"files": len(files), "rows": rows, "bytes": nbytes, "seconds": best,
            "cpu_seconds": best_cpu, "rows_per_s": rows / best, "mb_per_s": nbytes / best / 1e6,
            "rows_per_cpu_s": rows / best_cpu}


def empty_pipeline_seconds(beam_args) -> float:
    import apache_beam as beam
    from avca_tf.beam.beam_io import pipeline_options
    t0 = time.perf_counter()
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        _ = p | beam.Create([1]) | beam.Map(lambda x: x)
    return time.perf_counter() - t0


def ingest(root: Path, dataset: str, feature_set: str, out: Path, beam_args, raw: dict) -> dict:
    from avca_tf.beam.ingest import run_ingest
    startup = empty_pipeline_seconds(beam_args)
    t0, c0 = time.perf_counter(), cpu_seconds()
    meta = run_ingest(root, dataset, feature_set, str(out), beam_args=beam_args)
    dt, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    assert meta["total"] == raw["rows"], (meta["total"], raw["rows"])
    return {"rows": meta["total"], "seconds": dt, "cpu_seconds": cpu,
            "rows_per_s": meta["total"] / dt, "rows_per_cpu_s": meta["total"] / cpu,
            "mb_per_s": raw["bytes"] / dt / 1e6, "empty_pipeline_seconds": startup,
            "rows_per_s_excl_startup": meta["total"] / max(dt - startup, 1e-9)}


def tfdata_rates(out: Path) -> dict:
    from avca_tf.data.formats.tfrecord_input import read_metadata, stage_dataset
    meta = read_metadata(str(out))
    n = meta["total"]
    width = meta["widths"]["audio"] + meta["widths"]["video"]
    parse_s = None
    for _ in range(3):  # best of 3 uncached passes over every stage
        t0, seen = time.perf_counter(), 0
        for stage in meta["stages"]:
            for batch in stage_dataset(str(out), stage, meta, batch_size=BATCH, cache=False):
                seen += int(batch["label"].shape[0])
        dt = time.perf_counter() - t0
        parse_s = dt if parse_s is None else min(parse_s, dt)
        assert seen == n
    return {"records": n, "parse_seconds": parse_s, "parse_examples_per_s": n / parse_s,
            "parse_mb_per_s": n * width * 4 / parse_s / 1e6,
            "parse_batches_per_s": n / parse_s / BATCH}


def training_rate(out: Path, steps: int, warmup: int = 3) -> dict:
    import dataclasses
    import keras
    from avca_tf.models import get_preset
    from avca_tf.models import build_model
    from avca_tf.data.formats.tfrecord_input import load_benchmark_from_tfrecords
    from avca_tf.training.trainer import Trainer
    cfg = get_preset("avca", "VGGSound", "cls_features")
    cfg = cfg.replace(train=dataclasses.replace(cfg.train, batch_size=BATCH,
                                                n_batches=steps + warmup))
    bench = load_benchmark_from_tfrecords(str(out))
    keras.utils.set_random_seed(0)
    model = build_model(cfg.model.name, cfg.model, cfg.loss)
    trainer = Trainer(model, cfg.train, bench.protocol(1).train, bench.label_embeddings, seed=0)
    batches = list(trainer.sampler.epoch_dataset(0))
    for idx in batches[:warmup]:
        loss = trainer.train_step(idx)["total"]
    float(loss)
    t0 = time.perf_counter()
    for idx in batches[warmup:]:
        loss = trainer.train_step(idx)["total"]
    float(loss)
    dt = time.perf_counter() - t0
    return {"model": cfg.model.name, "batch_size": BATCH, "steps": steps, "steps_per_s": steps / dt}


def report(res: dict) -> str:
    r, i, t, tr = res["raw"], res["ingest"], res["tfdata"], res["training"]
    ratio = i["rows_per_s"] / r["rows_per_s"]
    ratio_ex = i["rows_per_s_excl_startup"] / r["rows_per_s"]
    ratio_cpu = i["rows_per_cpu_s"] / r["rows_per_cpu_s"]
    in_ratio = t["parse_batches_per_s"] / tr["steps_per_s"]
    ok = lambda x, target: "meets" if x >= target else "MISSES"  # noqa: E731
    m = res["machine"]
    return "\n".join([
        "# Ingestion and input throughput (benchmarks/ingest_throughput.py)",
        "",
        f"Command: `{res['command']}`",
        f"Machine: {m['cpu']}, {m['cores']} cores; load average before "
        f"{m['load_before'][0]:.2f}, after {m['load_after'][0]:.2f} (the cores were shared "
        f"with other jobs). Beam options: `{' '.join(res['beam_args']) or '(none: DirectRunner)'}`.",
        f"Data: synthetic VGGSound cls benchmark (real class splits, 128-d audio, 4096-d video), "
        f"--scale {res['scale']}: {r['rows']} rows in {r['files']} h5 files, "
        f"{r['bytes'] / 1e6:.1f} MB.",
        "",
        "| measure | rows/s | MB/s | seconds | CPU seconds | rows per CPU second |",
        "|---|---|---|---|---|---|",
        f"| raw h5 read (h5py, best of 3) | {r['rows_per_s']:.0f} | {r['mb_per_s']:.0f} | "
        f"{r['seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['rows_per_cpu_s']:.0f} |",
        f"| `avca ingest` (wall, incl. pipeline construction and runner start-up) | "
        f"{i['rows_per_s']:.0f} | {i['mb_per_s']:.1f} | {i['seconds']:.2f} | "
        f"{i['cpu_seconds']:.2f} | {i['rows_per_cpu_s']:.0f} |",
        f"| `avca ingest` minus empty-pipeline start-up ({i['empty_pipeline_seconds']:.1f} s) | "
        f"{i['rows_per_s_excl_startup']:.0f} | | | | |",
        f"| tf.data TFRecord read + parse, batch {BATCH} (uncached, all stages, best of 3) | {t['parse_examples_per_s']:.0f} | "
        f"{t['parse_mb_per_s']:.0f} | {t['parse_seconds']:.2f} | | |",
        "",
        f"- Ingest / raw read: **{ratio:.2f}x** wall ({ok(ratio, 0.3)} the 0.3x target); "
        f"{ratio_ex:.2f}x without the runner's fixed start-up; **{ratio_cpu:.2f}x** in rows per "
        f"CPU second ({ok(ratio_cpu, 0.3)} the target; CPU time does not depend on how busy "
        f"the shared cores were).",
        f"- Training consumption ({tr['model']}, batch {BATCH}, Trainer.train_step): "
        f"{tr['steps_per_s']:.2f} steps/s.",
        f"- tf.data TFRecord input: {t['parse_batches_per_s']:.1f} batches of {BATCH}/s = "
        f"**{in_ratio:.1f}x** training consumption ({ok(in_ratio, 10)} the 10x target).",
        "",
    ])


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--workdir", help="where to synthesize (default: a temporary folder)")
    ap.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "ingest.md"))
    args = ap.parse_args(own)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from avca_tf.data.synthesis.synth import synthesize
    res = {"machine": machine(), "scale": args.scale, "beam_args": beam_args,
           "command": "python benchmarks/ingest_throughput.py " + " ".join(argv)}
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        root, out = Path(work) / "bench", Path(work) / "tfrec"
        print(f"synthesizing VGGSound cls_features at scale {args.scale} ...", flush=True)
        synthesize(root, dataset="VGGSound", feature_set="cls_features",
                   seed=0, scale=args.scale, progress=True)
        print("raw h5 read ...", flush=True)
        res["raw"] = raw_read(root, "VGGSound", "cls_features")
        print(f"  {res['raw']['rows_per_s']:.0f} rows/s", flush=True)
        res["ingest"] = ingest(root, "VGGSound", "cls_features", out, beam_args, res["raw"])
        print(f"  ingest {res['ingest']['rows_per_s']:.0f} rows/s", flush=True)
        print("tf.data input ...", flush=True)
        res["tfdata"] = tfdata_rates(out)
        print("training steps ...", flush=True)
        res["training"] = training_rate(out, args.train_steps)
    res["machine"]["load_after"] = os.getloadavg()
    text = report(res)
    print(text)
    os.makedirs(os.path.dirname(args.results), exist_ok=True)
    from avca_tf.io_utils import atomic_path, write_json
    with atomic_path(args.results) as tmp:
        Path(tmp).write_text(text)
    write_json(os.path.splitext(args.results)[0] + ".json", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
