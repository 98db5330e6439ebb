"""`avca embed-classes`: Beam job, class names -> label embeddings (avca_tf/beam/embed_classes.py).

  avca embed-classes --classes UCF/class-split/all_class.txt \
      --vectors w2v_features/word_embeddings_ucf_normed.npy --out emb [-- BEAM_OPTIONS]
"""
import argparse

from avca_tf.commands.ingest import add_beam_args, check, check_beam_args  # noqa: F401 (check)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", required=True, help="class list, one name a line "
                        "(e.g. all_class.txt)")
    parser.add_argument("--vectors",
                        help="word2vec/GloVe text file (.txt, .vec, .gz) or the benchmark's "
                             "npy dict of class vectors")
    parser.add_argument("--clip", metavar="PRESET",
                        help="with --clap: write the clip_clap text files instead: CLIP text "
                             "tower of this keras-hub preset (name or local preset directory)")
    parser.add_argument("--clap", metavar="SAVEDMODEL",
                        help="SavedModel of the CLAP text tower (string [N] -> vectors [N, 1024])")
    parser.add_argument("--dataset", default="UCF",
                        help="with --clip/--clap: dataset whose name csv and file names to use")
    parser.add_argument("--clip-prompts", help="prompt file for CLIP, one template with {} a line")
    parser.add_argument("--clap-prompts", help="prompt file for CLAP, one template with {} a line")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--lookup", choices=["auto", "class", "word"], default="auto",
                        help="class: whole-name keys (default for .npy); word: average of "
                             "token vectors, L2-normalised (default for text files)")
    add_beam_args(parser)


def run(args) -> int:
    from avca_tf.errors import ConfigError
    if args.clip or args.clap:
        if not (args.clip and args.clap) or args.vectors:
            raise ConfigError("--clip and --clap go together, without --vectors")
        from avca_tf.beam.embed_classes import run_embed_classes_encoders
        from avca_tf.data.text.encoders import read_prompts
        run_embed_classes_encoders(
            args.classes, args.out, args.dataset, args.clip, args.clap,
            beam_args=check_beam_args(args),
            clip_prompts=read_prompts(args.clip_prompts) if args.clip_prompts else None,
            clap_prompts=read_prompts(args.clap_prompts) if args.clap_prompts else None)
        return 0
    if not args.vectors:
        raise ConfigError("--vectors is required (or --clip and --clap)")
    from avca_tf.beam.embed_classes import run_embed_classes
    run_embed_classes(args.classes, args.vectors, args.out, beam_args=check_beam_args(args),
                      lookup=args.lookup)
    return 0
