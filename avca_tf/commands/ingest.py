"""`avca ingest`: Beam job, h5 features -> TFRecords (avca_tf/beam/ingest.py).

Beam pipeline options follow a `--`:
  avca ingest --root R --dataset UCF --features main_features --out T \
      -- --runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=2
"""
import argparse

BEAM_ARGS_HELP = ("Apache Beam pipeline options after `--` (e.g. -- --runner=DataflowRunner "
                  "--project=P --region=R --temp_location=gs://B/tmp); DirectRunner by default")


def add_beam_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("beam_args", nargs="*", metavar="-- BEAM_OPTION", help=BEAM_ARGS_HELP)


def check_beam_args(args) -> list:
    """Options before `--` would be swallowed silently by argparse: refuse them."""
    from avca_tf.errors import ConfigError
    stray = [a for a in args.beam_args if not a.startswith("--")]
    if stray:
        raise ConfigError(f"unexpected arguments {stray}: Beam options look like --name=value "
                          "and go after `--`")
    check_beam_options(args.beam_args)
    return list(args.beam_args)


def check_beam_options(beam_args) -> None:
    """The runner exists and the DirectRunner's worker count is >= 0, before any work."""
    from avca_tf.errors import ConfigError
    if not beam_args:
        return
    from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions,
                                                      StandardOptions)
    options = PipelineOptions(list(beam_args))
    runner = options.view_as(StandardOptions).runner
    if runner:
        from apache_beam.runners.runner import create_runner
        try:
            create_runner(runner)
        except (ValueError, ImportError) as e:
            raise ConfigError(f"--runner={runner}: {str(e).splitlines()[0]}") from None
    workers = options.view_as(DirectOptions).direct_num_workers
    if workers is not None and workers < 0:
        raise ConfigError(f"--direct_num_workers={workers}: expected 0 (one worker per core) "
                          "or a positive number")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="benchmark root (holds <dataset>/)")
    parser.add_argument("--dataset", required=True, help="UCF, ActivityNet, VGGSound or Toy")
    from avca_tf.data.formats.benchmark import FEATURE_SETS
    parser.add_argument("--features", required=True, choices=sorted(FEATURE_SETS),
                        help="feature set")
    parser.add_argument("--out", required=True, help="output directory (local, gs://, ...)")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="write invalid rows to OUT/rejects.jsonl instead of failing")
    parser.add_argument("--temporal", action="store_true",
                        help="ingest the non-averaged per-step features (features/<fs>_non_averaged/"
                             "*.pkl) of sequence models such as TCaF: one Example per video")
    add_beam_args(parser)


def check(args) -> None:
    """Beam options checked before TensorFlow is imported."""
    check_beam_args(args)


def run(args) -> int:
    from avca_tf.beam.ingest import run_ingest
    run_ingest(args.root, args.dataset, args.features, args.out,
               beam_args=check_beam_args(args), skip_invalid=args.skip_invalid,
               temporal=args.temporal)
    return 0
