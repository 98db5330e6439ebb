"""`avca tsne RUN_DIR --seen A,B,C --unseen D,E --out fig.png`: the seed's t-SNE figure."""
from __future__ import annotations


def add_arguments(p):
    p.add_argument("run_dir", help="a finished run (avca train --out)")
    p.add_argument("--seen", required=True, help="comma-separated seen test classes")
    p.add_argument("--unseen", required=True, help="comma-separated unseen test classes")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--root", help="benchmark root, if it moved since training")
    p.add_argument("--max-per-class", type=int, default=200,
                   help="at most this many test samples per class (default 200)")
    p.add_argument("--seed", type=int, default=0, help="sample subset and t-SNE seed")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def run(args) -> int:
    import dataclasses
    import os

    import numpy as np

    from avca_tf.training.protocol import load_data
    from avca_tf.errors import ConfigError
    from avca_tf.evaluation.plots import resolve_classes, tsne_figure
    from avca_tf.training.protocol import load_run

    if args.max_per_class < 1:
        raise ConfigError(f"--max-per-class must be >= 1, got {args.max_per_class}")
    run = load_run(args.run_dir)
    cfg = run.run_config
    if args.root:
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, root=os.path.abspath(args.root),
                                                   tfrecords=None))
    seen = resolve_classes(_names(args.seen), run.class_names, run.seen_ids, "seen")
    unseen = resolve_classes(_names(args.unseen), run.class_names, run.unseen_ids, "unseen")
    if not seen or not unseen:
        raise ConfigError("--seen and --unseen each need at least one class")
    bench = load_data(cfg)
    if tuple(bench.class_names) != tuple(run.class_names):
        raise ConfigError(f"the benchmark at {cfg.data.root} has other classes than the run "
                          f"{args.run_dir}; pass the --root it was trained on")
    test = bench.protocol(2)
    rng = np.random.default_rng(args.seed)
    picks = []
    for cls in seen + unseen:
        split = test.eval_seen if cls in seen else test.eval_unseen
        idx = np.flatnonzero(split.labels == cls)
        if len(idx) == 0:
            raise ConfigError(f"class '{run.class_names[cls]}' has no test samples in {split.name}")
        if len(idx) > args.max_per_class:
            idx = np.sort(rng.choice(idx, args.max_per_class, replace=False))
        picks.append((split, idx))
    audio = np.concatenate([s.audio[i] for s, i in picks]).astype(np.float32)
    video = np.concatenate([s.video[i] for s, i in picks]).astype(np.float32)
    labels = np.concatenate([s.labels[i] for s, i in picks])
    ids = np.asarray(seen + unseen)
    tsne_figure(run.model, audio, video, labels, run.label_embeddings[ids], ids, run.class_names,
                run.seen_ids, args.out, seed=args.seed,
                title=f"{cfg.data.dataset} {cfg.data.feature_set}, model {cfg.model.name}")
    print(f"wrote {args.out} ({len(labels)} test samples of {len(ids)} classes)")
    return 0
