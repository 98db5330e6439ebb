"""`avca train`: the two-stage GZSL protocol on a benchmark directory."""
from __future__ import annotations

import argparse
import os

from avca_tf.commands.run_args import add_run_arguments, bounded_int, overrides
from avca_tf.config import DATASETS, FEATURE_SETS, PRECISIONS, STAGE2_LENGTHS, STAGE2_LRS
from avca_tf.errors import ConfigError


def add_arguments(p):
    p.add_argument("--root", help="benchmark root (holds <DATASET>/class-split, features)")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--features", default="main_features", choices=sorted(FEATURE_SETS))
    p.add_argument("--out", required=True, help="run directory to create (or resume)")
    add_run_arguments(p)
    p.add_argument("--quick", action="store_true",
                   help="tiny run for smoke tests: 2 epochs x 5 batches (as --preset quick)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--jit-compile", action="store_true", help="compile the training step with XLA")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="training-step arithmetic: float32, bf16-matmul (dense matmuls in "
                        "bfloat16, the rest float32), mixed (Keras mixed_bfloat16, "
                        "mixed_float16 with loss scaling on a GPU) or auto (bf16-matmul on a "
                        "CPU with AMX/AVX512-BF16, else float32; config.json records which); "
                        "default: the preset's")
    p.add_argument("--intra-op-threads", type=bounded_int(0), default=None,
                   help="threads per TensorFlow op (default 1, faster on CPU; 0: TF's, one per core)")
    p.add_argument("--inter-op-threads", type=bounded_int(0), default=None,
                   help="TensorFlow ops run at once (default 1: a seed repeats to the bit also "
                        "on a busy machine; 0: TF's, one per core, not bit-repeatable under load)")
    p.add_argument("--pad-multiple", type=bounded_int(), default=None, metavar="M",
                   help="sequence models: pad training batches to a multiple of M steps (few "
                        "shapes for --jit-compile; padded steps enter BN statistics, so results "
                        "depend on M; default 1, the batch maximum)")
    p.add_argument("--freeze-position-embeddings", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="never update the position embeddings (as the reference; default: "
                        "the preset's, on for VGGSound cls)")
    p.add_argument("--separate-negative-pass", action="store_true", default=None,
                   help="AVCA: positive and negative tokens in separate transformer calls "
                        "(as the reference; default: one call)")
    p.add_argument("--bn-double-update", action=argparse.BooleanOptionalAction, default=None,
                   help="an extra train-mode forward of the positive batch after each step, "
                        "moving batch-norm statistics (as the reference's get_embeddings; "
                        "default: the preset's, on for ActivityNet main)")
    p.add_argument("--stage2-lr", choices=STAGE2_LRS, default=None,
                   help="stage-2 learning rates: replay stage 1's, constant, or validation "
                        "(plateau on stage-1 validation HM, as the reference); default: "
                        "the preset's (validation for AVCA, replay elsewhere)")
    p.add_argument("--stage2-length", choices=STAGE2_LENGTHS, default=None,
                   help="best: train the best stage-1 epoch count and test the last checkpoint "
                        "(default); all: train all epochs, test the best epoch's checkpoint "
                        "(as the reference)")
    p.add_argument("--tfrecords", help="read the TFRecords of `avca ingest` from this directory "
                                       "instead of the h5 files under --root")
    p.add_argument("--temporal", action="store_true",
                   help="read the per-step pickles (features/<features>_non_averaged/) for "
                        "sequence models such as tcaf (their presets set it)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress output (without -q: a progress bar on a terminal, one "
                        "line per epoch otherwise)")


def check(args) -> None:
    """The checks that need no TensorFlow (the CLI runs them before importing it)."""
    check_paths(args.root, args.dataset, args.tfrecords, args.out)


def check_paths(root, dataset, tfrecords, out) -> None:
    """--root/--tfrecords given and present, --out not a file."""
    if not root and not tfrecords:
        raise ConfigError("--root (or --tfrecords) is required")
    if tfrecords and "://" not in tfrecords and not os.path.isdir(tfrecords):
        raise ConfigError(f"--tfrecords {tfrecords}: no such directory")
    if root and not tfrecords and "://" not in root:
        folder = os.path.join(root, dataset)
        if not os.path.isdir(folder):
            fix = (f"; write the toy benchmark with `avca synth --out {root}`"
                   if dataset == "Toy" else "")
            raise ConfigError(f"missing folder {folder} (dataset {dataset!r} under --root "
                              f"{root}){fix}")
    if out and os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out}: exists and is not a directory")




def build_config(args):
    """RunConfig of the model's preset and the command-line overrides."""
    from avca_tf.training.presets import run_config
    o = overrides(args, schedule="quick" if args.quick else None,
                  tfrecords=os.path.abspath(args.tfrecords) if args.tfrecords else None,
                  freeze_position_embeddings=args.freeze_position_embeddings,
                  jit_compile=args.jit_compile, precision=args.precision,
                  intra_op_threads=args.intra_op_threads,
                  inter_op_threads=args.inter_op_threads,
                  pad_multiple=args.pad_multiple,
                  temporal=args.temporal or None,
                  separate_negative_pass=args.separate_negative_pass,
                  bn_double_update=args.bn_double_update, stage2_lr=args.stage2_lr,
                  stage2_length=args.stage2_length)
    return run_config(args.dataset, args.features, o,
                      root=os.path.abspath(args.root) if args.root else "")


def run(args) -> int:
    from avca_tf.training.protocol import train
    cfg = build_config(args)
    results = train(cfg, args.out, resume=args.resume, verbose=0 if args.quiet else 1)
    t = results["test"]
    print(f"{cfg.data.dataset} {cfg.data.feature_set} seed {cfg.train.seed}: "
          f"test S {100 * t['S']:.2f} U {100 * t['U']:.2f} HM {100 * t['HM']:.2f} "
          f"ZSL {100 * t['ZSL']:.2f} (best epoch {results['stage1']['best_epoch']})")
    return 0
