"""`avca train`: the two-stage GZSL protocol on a benchmark directory."""
from __future__ import annotations

import dataclasses
import os

from avca_tf.training import presets
from avca_tf.errors import ConfigError


def add_arguments(p):
    p.add_argument("--root", help="benchmark root (holds <DATASET>/class-split, features)")
    p.add_argument("--dataset", required=True, help="UCF, ActivityNet, VGGSound (or Toy)")
    p.add_argument("--features", default="main_features", choices=sorted(presets.FEATURE_WIDTHS))
    p.add_argument("--out", required=True, help="run directory to create (or resume)")
    p.add_argument("--preset", help=f"one of {', '.join(presets.PRESETS)}; default: the authors' "
                                    f"settings for --model on the dataset and feature set "
                                    f"(UCF's for datasets without a script)")
    p.add_argument("--model", default="avca", help="registered model name (default avca)")
    p.add_argument("--epochs", type=int, help="stage-1 epochs (preset: 50)")
    p.add_argument("--n-batches", type=int, help="batches per epoch (preset: 500)")
    p.add_argument("--batch-size", type=int, help="batch size (preset: 256, VGGSound main 64)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--quick", action="store_true", help="tiny run for smoke tests: 2 epochs x 5 batches")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--jit-compile", action="store_true", help="compile the training step with XLA")
    p.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 (GPU, with loss scaling) or mixed_bfloat16 (CPU)")
    p.add_argument("--text-pairing", default="own", choices=["own", "reference"],
                   help="'reference' reproduces the authors' class/label-vector mis-pairing")
    p.add_argument("--freeze-position-embeddings", action="store_true",
                   help="never update the position embeddings (as the reference)")
    p.add_argument("--tfrecords", help="read the TFRecords of `avca ingest` from this directory "
                                       "instead of the h5 files under --root")
    p.add_argument("--temporal", action="store_true",
                   help="read the per-step pickles (features/<features>_non_averaged/) for "
                        "sequence models such as tcaf (their presets set it)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def build_config(args):
    """RunConfig from the preset and the command-line overrides."""
    if args.preset:
        cfg = presets.get_preset(args.preset)
    else:  # the authors' script for this model, dataset and feature set
        from avca_tf.models.model_presets import preset_for
        cfg = preset_for(args.model, args.dataset, args.features)
    root = os.path.abspath(args.root) if args.root else ""
    cfg = cfg.replace(
        data=dataclasses.replace(cfg.data, root=root, dataset=args.dataset,
                                 feature_set=args.features, text_pairing=args.text_pairing,
                                 temporal=cfg.data.temporal or args.temporal,
                                 tfrecords=os.path.abspath(args.tfrecords) if args.tfrecords else None),
        model=dataclasses.replace(cfg.model, name=args.model,
                                  freeze_position_embeddings=args.freeze_position_embeddings),
        train=dataclasses.replace(cfg.train, seed=args.seed, jit_compile=args.jit_compile,
                                  mixed_precision=args.mixed_precision))
    if args.quick:
        cfg = presets.quick(cfg)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("n_batches", args.n_batches),
                                   ("batch_size", args.batch_size)) if v is not None}
    for key, value in overrides.items():
        if value < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
    return cfg.replace(train=dataclasses.replace(cfg.train, **overrides))


def load_data(cfg):
    """The Benchmark of a RunConfig, from h5 files or TFRecords."""
    if cfg.data.tfrecords:
        from avca_tf.data.tfrecord_input import load_benchmark_from_tfrecords
        bench = load_benchmark_from_tfrecords(cfg.data.tfrecords, text_pairing=cfg.data.text_pairing)
        if (bench.dataset, bench.feature_set) != (cfg.data.dataset, cfg.data.feature_set):
            raise ConfigError(f"{cfg.data.tfrecords} holds {bench.dataset}/{bench.feature_set}, "
                              f"not the requested {cfg.data.dataset}/{cfg.data.feature_set}")
        return bench
    if not cfg.data.root:
        raise ConfigError("--root (or --tfrecords) is required")
    if cfg.data.temporal:
        from avca_tf.data.temporal import load_temporal_benchmark
        return load_temporal_benchmark(cfg.data.root, cfg.data.dataset, cfg.data.feature_set,
                                       text_pairing=cfg.data.text_pairing)
    from avca_tf.data.benchmark import load_benchmark
    return load_benchmark(cfg.data.root, cfg.data.dataset, cfg.data.feature_set,
                          text_pairing=cfg.data.text_pairing)


def run(args) -> int:
    from avca_tf.training.protocol import run_protocol
    cfg = build_config(args)
    bench = load_data(cfg)
    results = run_protocol(bench, cfg, args.out, resume=args.resume, verbose=0 if args.quiet else 1)
    t = results["test"]
    print(f"{cfg.data.dataset} {cfg.data.feature_set} seed {cfg.train.seed}: "
          f"test S {100 * t['S']:.2f} U {100 * t['U']:.2f} HM {100 * t['HM']:.2f} "
          f"ZSL {100 * t['ZSL']:.2f} (best epoch {results['stage1']['best_epoch']})")
    return 0
