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
    from avca_tf.evaluation.plots import run_tsne
    n, k = run_tsne(args.run_dir, _names(args.seen), _names(args.unseen), args.out,
                    root=args.root, max_per_class=args.max_per_class, seed=args.seed)
    print(f"wrote {args.out} ({n} test samples of {k} classes)")
    return 0
