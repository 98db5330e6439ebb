"""`avca evaluate RUN_DIR`: recompute the test metrics of a finished run from its saved weights."""
from __future__ import annotations

import dataclasses
import math
import os


def add_arguments(p):
    p.add_argument("run_dir", help="a finished `avca train` run directory")
    p.add_argument("--root", help="benchmark root, if it moved since training")
    p.add_argument("--tol", type=float, default=1e-6,
                   help="largest accepted difference to results.json (default 1e-6)")


def run(args) -> int:
    from avca_tf.commands.train import load_data
    from avca_tf.training.protocol import load_run, sequence_spec
    from avca_tf.training.trainer import evaluate_gzsl, make_distance_fn
    loaded = load_run(args.run_dir)
    cfg = loaded.run_config
    if args.root:
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, root=os.path.abspath(args.root),
                                                   tfrecords=None))
    bench = load_data(cfg)
    distance_fn = make_distance_fn(loaded.model, cfg.train, sequence_spec(bench, cfg))
    _, res = evaluate_gzsl(distance_fn, bench.protocol(2),
                           loaded.label_embeddings, beta=loaded.beta)
    saved = loaded.results["test"]
    worst = 0.0
    print(f"{'metric':<6} {'recomputed':>10} {'results.json':>12}")
    for key in ("S", "U", "HM", "ZSL"):
        value = float(getattr(res, key))
        worst = max(worst, abs(value - saved[key]))
        print(f"{key:<6} {100 * value:>10.2f} {100 * saved[key]:>12.2f}")
    if not math.isfinite(worst) or worst > args.tol:
        print(f"MISMATCH: largest difference {worst:.3g} > {args.tol:g}")
        return 1
    print(f"matches results.json (largest difference {worst:.3g}, beta {loaded.beta:.2f})")
    return 0
