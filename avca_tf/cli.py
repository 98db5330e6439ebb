"""The `avca` console script: one subcommand per module in avca_tf.commands."""
import argparse
import importlib
import os
import sys

from avca_tf.errors import AvcaError

# name -> module under avca_tf.commands; imported lazily so `avca synth` does
# not pay for TFX imports.
SUBCOMMANDS = {
    "synth": "synth",
    "inspect": "inspect",
    "train": "train",
    "evaluate": "evaluate",
    "stats": "stats",
    "ingest": "ingest",
    "extract": "extract",
    "embed-classes": "embed_classes",
    "export": "export",
    "reproduce": "reproduce",
    "tsne": "tsne",
    "pipeline": "pipeline",
}

HELP = {
    "synth": "write a benchmark (real splits or toy) in the published on-disk layout",
    "inspect": "validate a benchmark and print a per-stage table",
    "train": "train a model with the two-stage GZSL protocol",
    "evaluate": "recompute test metrics of a finished run",
    "stats": "parameters and FLOPs per model and feature set",
    "ingest": "Beam job: h5 features to TFRecords",
    "extract": "Beam job: video files to audio/video features (published layouts)",
    "embed-classes": "Beam job: class names to label embeddings",
    "export": "export a run as a TF Serving SavedModel",
    "reproduce": "regenerate a table of the paper on your features",
    "tsne": "t-SNE figure of input and learnt embeddings",
    "pipeline": "TFX pipeline: run, compile for Kubeflow, show MLMD",
}


def _load(name):
    return importlib.import_module(f"avca_tf.commands.{SUBCOMMANDS[name]}")


def build_parser(argv):
    parser = argparse.ArgumentParser(prog="avca", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name in SUBCOMMANDS:
        p = sub.add_parser(name, help=HELP[name], description=HELP[name])
        if name == wanted:  # only the chosen command's module is imported
            _load(name).add_arguments(p)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(_load(args.command).run(args) or 0)
    except AvcaError as e:
        if os.environ.get("AVCA_DEBUG") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
