"""Op-time profile of our training step (issue 17: AVCA; issue 13: `--model tcaf`): a TF
profiler trace of `--steps` compiled steps and a table of where the op time goes, by op type.

    python benchmarks/profile_step.py --root BENCH_ROOT [--model avca|tcaf]
        [--features main_features|cls_features] [--batch-size N] [--steps 20]
        [--jit-compile] [--precision float32|bf16-matmul|mixed] [--intra-op-threads N]
        [--logdir DIR] [--top 25]

The batch size defaults to the preset's (AVCA UCF main: 256; TCaF: 64). For tcaf, --root
holds the non-averaged layout (`avca synth --temporal`) and batches are padded to the
batch maximum, as in training.

The trace (viewable in TensorBoard's profile plugin) is written under --logdir;
the table sums the executor's op events of the host plane over the traced steps
(both cores: an op running on two threads counts twice) and divides by the steps.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def op_table(logdir: str):
    """{op type: (total ms, count)} over the TF op events of the newest trace in logdir."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    path = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.defaultdict(lambda: [0.0, 0])
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        meta = plane.event_metadata
        for line in plane.lines:
            if not line.name.startswith("tf_"):  # the executor's threads, not Python's
                continue
            for ev in line.events:
                name = meta[ev.metadata_id].name
                # op events are "<op name>:<op type>"; executor/Eigen frames have no type
                if ":" not in name or "::" in name:
                    continue
                totals[name.rsplit(":", 1)[1]][0] += ev.duration_ps / 1e9
                totals[name.rsplit(":", 1)[1]][1] += 1
    return path, dict(totals)


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="benchmark root holding <dataset>/")
    p.add_argument("--model", choices=["avca", "tcaf"], default="avca")
    p.add_argument("--dataset", default="UCF")
    p.add_argument("--features", default="main_features")
    p.add_argument("--batch-size", type=int, help="default: the preset's")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--jit-compile", action="store_true")
    p.add_argument("--precision", choices=["float32", "bf16-matmul", "mixed"],
                   help="default: the preset's")
    p.add_argument("--intra-op-threads", type=int,
                   help="threads per TF op (default: the preset's; 0: one per core, TF's default)")
    p.add_argument("--logdir", help="trace directory (default: a temporary one)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--json-out")
    args = p.parse_args(argv)

    import keras
    import tensorflow as tf
    from avca_tf.data.formats.benchmark import load_benchmark
    from avca_tf.data.formats.temporal import load_temporal_benchmark
    from avca_tf.models import build_model, get_preset
    from avca_tf.inputs import kind_of
    from avca_tf.training.trainer import Trainer, prepare_process

    cfg = get_preset(args.model, args.dataset, args.features, args.root)
    args.batch_size = args.batch_size or cfg.train.batch_size
    train_cfg = dataclasses.replace(
        cfg.train, batch_size=args.batch_size, jit_compile=args.jit_compile,
        precision=args.precision or cfg.train.precision,
        intra_op_threads=(cfg.train.intra_op_threads if args.intra_op_threads is None
                          else args.intra_op_threads))
    prepare_process(train_cfg)
    if train_cfg.precision == "mixed":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if args.model == "tcaf":
        bench = load_temporal_benchmark(args.root, args.dataset, args.features)
        extra = {"batching": kind_of("tcaf").batching(cfg, bench)}
    else:
        bench, extra = load_benchmark(args.root, args.dataset, args.features), {}
    keras.utils.set_random_seed(0)
    model = build_model(cfg.model.name, cfg.model, cfg.loss)
    trainer = Trainer(model, train_cfg, bench.protocol(1).train, bench.label_embeddings, seed=0,
                      **extra)
    batches = [trainer.sampler.batch_indices(0, i) for i in range(5 + args.steps)]
    for idx in batches[:5]:
        loss = trainer.train_step(idx)["total"]
    float(loss)
    logdir = args.logdir or tempfile.mkdtemp(prefix="avca_profile_")
    tf.profiler.experimental.start(logdir)
    t0 = time.perf_counter()
    for idx in batches[5:]:
        loss = trainer.train_step(idx)["total"]
    float(loss)
    wall = (time.perf_counter() - t0) / args.steps
    tf.profiler.experimental.stop()
    path, totals = op_table(logdir)
    rows = sorted(((ms / args.steps, n // args.steps, op) for op, (ms, n) in totals.items()),
                  reverse=True)
    op_ms = sum(r[0] for r in rows)
    report = {"wall_ms_per_step": wall * 1e3, "op_ms_per_step": op_ms,
              "ops_per_step": sum(r[1] for r in rows), "load_avg": os.getloadavg(),
              "model": args.model, "dataset": args.dataset, "features": args.features,
              "jit_compile": args.jit_compile, "precision": train_cfg.precision,
              "intra_op_threads": train_cfg.intra_op_threads,
              "batch_size": args.batch_size, "trace": path,
              "top": [{"op": op, "ms_per_step": round(ms, 3), "count_per_step": n}
                      for ms, n, op in rows[:args.top]]}
    print(f"wall {wall * 1e3:.1f} ms/step, op time {op_ms:.1f} ms/step (both cores), "
          f"{report['ops_per_step']} ops/step, load {report['load_avg'][0]:.2f}")
    print(f"{'op type':32s} {'ms/step':>8s} {'share':>6s} {'count':>6s}")
    for ms, n, op in rows[:args.top]:
        print(f"{op:32s} {ms:8.2f} {100 * ms / op_ms:5.1f}% {n:6d}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
