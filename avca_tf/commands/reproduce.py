"""`avca reproduce`: regenerate Table 1, 3 or 4 of the seed on your features."""
from __future__ import annotations


def add_arguments(p):
    p.add_argument("--root", required=True,
                   help="benchmark root holding one or more of VGGSound, UCF, ActivityNet")
    p.add_argument("--table", type=int, required=True, choices=[1, 3, 4],
                   help="1: all models on cls features; 3: ablation towards AVGZSLNet; "
                        "4: training with one modality (3 and 4 on main features)")
    p.add_argument("--seeds", type=int, default=1, help="runs per cell (seeds 42, 43, ...)")
    p.add_argument("--quick", action="store_true",
                   help="tiny runs (2 epochs x 5 batches) to check the pipeline, not the numbers")
    p.add_argument("--out", default="reproduce", help="output folder (runs/ and table files)")
    p.add_argument("--text-pairing", default="own", choices=["own", "reference"],
                   help="'reference' reproduces the authors' class/label-vector mis-pairing "
                        "(the published numbers were obtained that way)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress")


def run(args) -> int:
    import os

    from avca_tf.evaluation.reproduce import ReproduceConfig, reproduce

    cfg = ReproduceConfig(root=os.path.abspath(args.root), table=args.table,
                          out=os.path.abspath(args.out), seeds=args.seeds, quick=args.quick,
                          text_pairing=args.text_pairing)
    md, csv_path = reproduce(cfg, verbose=0 if args.quiet else 1)
    with open(md) as f:
        print(f.read())
    print(f"wrote {md} and {csv_path}")
    return 0
