"""`avca reproduce`: regenerate Table 1, 3 or 4 of the seed, or the ClipClap-GZSL table
(`--table clipclap`, clip_clap features), on your features.

The trainings are one Beam job (one element per run); Beam pipeline options
follow a `--` (default: DirectRunner, multi_processing, one worker per core):
  avca reproduce --root R --table 3 --out OUT -- --direct_num_workers=2
  avca reproduce --root R --table 1 --out gs://B/rep -- --runner=DataflowRunner ...
"""
from __future__ import annotations

from avca_tf.commands.ingest import add_beam_args, check_beam_args


def add_arguments(p):
    p.add_argument("--root", required=True,
                   help="benchmark root holding one or more of VGGSound, UCF, ActivityNet")
    from avca_tf.evaluation.published import TABLE_CHOICES
    p.add_argument("--table", required=True, choices=TABLE_CHOICES,
                   help="1: all models on cls features; 3: ablation towards AVGZSLNet; "
                        "4: training with one modality (3 and 4 on main features); "
                        "clipclap: ClipClap-GZSL and the models its paper compares on "
                        "clip_clap (CLIP/CLAP) features")
    p.add_argument("--seeds", type=int, default=1, help="runs per cell (seeds 42, 43, ...)")
    p.add_argument("--quick", action="store_true",
                   help="tiny runs (2 epochs x 5 batches) to check the pipeline, not the numbers")
    p.add_argument("--out", default="reproduce",
                   help="output folder (runs/ and table files): local, gs://, ...")
    p.add_argument("--models", help="comma-separated rows of the table to run (default: all)")
    p.add_argument("--assemble-only", action="store_true",
                   help="train nothing: write the table from the runs finished under --out")
    p.add_argument("--text-pairing", default="own", choices=["own", "reference"],
                   help="'reference' reproduces the authors' class/label-vector mis-pairing "
                        "(the published numbers were obtained that way)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress")
    add_beam_args(p)


def check(args) -> None:
    """Before TensorFlow is imported: Beam options and a --out that can be a directory."""
    from avca_tf.locking import check_dir_target
    check_dir_target(args.out, "--out")
    check_beam_args(args)


def run(args) -> int:
    import os

    from avca_tf.evaluation.published import table_key
    from avca_tf.evaluation.reproduce import ReproduceConfig, reproduce

    import tensorflow as tf

    def local(path):
        return path if "://" in path else os.path.abspath(path)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else ()
    cfg = ReproduceConfig(root=local(args.root), table=table_key(args.table), out=local(args.out),
                          seeds=args.seeds, quick=args.quick, text_pairing=args.text_pairing,
                          models=models)
    md, csv_path = reproduce(cfg, verbose=0 if args.quiet else 1,
                             beam_args=check_beam_args(args), assemble_only=args.assemble_only)
    with tf.io.gfile.GFile(md) as f:
        print(f.read())
    print(f"wrote {md} and {csv_path}")
    return 0
