"""Does a training step repeat to the bit? Replays the same training steps from the same
state several times in one process and reports the first step whose loss bits differ.

    python benchmarks/determinism_probe.py --root UCF_ROOT [--dataset UCF --features main_features]
        [--steps 400] [--replays 4] [--precision auto|bf16-matmul|float32] [--seed 1] \
        [--intra-op-threads N] [--inter-op-threads N]

The model is the dataset's AVCA preset (precision "auto" resolved for this CPU; with
--precision and the thread pools overridden; 0 is TensorFlow's pool), set up as every
training process (`trainer.prepare_process`), trained on the stage-2 training data;
every replay restores all model and optimizer variables (dropout seed counters included)
and feeds the same batches. Run it on a busy
machine (beside other jobs): a schedule-dependent op shows up as a replay that differs
(docs/training.md, "Determinism"). Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True)
    p.add_argument("--dataset", default="UCF")
    p.add_argument("--features", default="main_features")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--replays", type=int, default=4)
    p.add_argument("--precision", default=None)
    p.add_argument("--inter-op-threads", type=int, default=None,
                   help="TensorFlow ops run at once (default: the preset's, 1; 0: TF's pool)")
    p.add_argument("--intra-op-threads", type=int, default=None,
                   help="threads per TensorFlow op (default: the preset's, 1; 0: TF's pool)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)

    import keras
    import numpy as np
    from avca_tf.data.formats.benchmark import load_benchmark
    from avca_tf.models import build_model
    from avca_tf.training.presets import RunOverrides, run_config
    from avca_tf.training.trainer import Trainer, prepare_process, resolve_precision
    cfg = run_config(args.dataset, args.features, RunOverrides(
        precision=args.precision, seed=args.seed, n_batches=args.steps,
        intra_op_threads=args.intra_op_threads, inter_op_threads=args.inter_op_threads),
        root=args.root)
    pools = prepare_process(cfg.train)
    bench = load_benchmark(args.root, args.dataset, args.features)
    keras.utils.set_random_seed(cfg.train.seed)
    model = build_model(cfg.model.name, cfg.model, cfg.loss)
    trainer = Trainer(model, cfg.train, bench.protocol(2).train, bench.label_embeddings)
    variables = list(model.variables) + list(trainer.optimizer.variables)
    start = [v.numpy() for v in variables]
    batches = list(trainer.sampler.epoch_dataset(0))
    losses, t0, load0 = [], time.time(), os.getloadavg()[0]
    for _ in range(args.replays):
        for v, value in zip(variables, start):
            v.assign(value)
        losses.append(np.array([trainer.train_step(b)["total"].numpy() for b in batches]))
    first = []
    for other in losses[1:]:
        differ = np.nonzero(other.view(np.uint32) != losses[0].view(np.uint32))[0]
        first.append(int(differ[0]) if differ.size else None)
    print(json.dumps({"dataset": args.dataset, "features": args.features,
                      "precision": resolve_precision(cfg.train.precision), "intra_op_threads": pools[0],
                      "inter_op_threads": pools[1], "steps": args.steps,
                      "replays": args.replays, "first_differing_step": first,
                      "replays_differing": sum(f is not None for f in first),
                      "wall_s": round(time.time() - t0, 1),
                      "load_start_end": [load0, os.getloadavg()[0]]}))


if __name__ == "__main__":
    main()
