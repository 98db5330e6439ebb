"""`avca embed-classes`: Beam job, class names -> label embeddings (avca_tf/beam/embed_classes.py).

  avca embed-classes --classes UCF/class-split/all_class.txt \
      --vectors w2v_features/word_embeddings_ucf_normed.npy --out emb [-- BEAM_OPTIONS]
"""
import argparse

from avca_tf.commands.ingest import add_beam_args, check_beam_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", required=True, help="class list, one name a line "
                        "(e.g. all_class.txt)")
    parser.add_argument("--vectors", required=True,
                        help="word2vec/GloVe text file (.txt, .vec, .gz) or the benchmark's "
                             "npy dict of class vectors")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--lookup", choices=["auto", "class", "word"], default="auto",
                        help="class: whole-name keys (default for .npy); word: average of "
                             "token vectors, L2-normalised (default for text files)")
    add_beam_args(parser)


def run(args) -> int:
    from avca_tf.beam.embed_classes import run_embed_classes
    run_embed_classes(args.classes, args.vectors, args.out, beam_args=check_beam_args(args),
                      lookup=args.lookup)
    return 0
