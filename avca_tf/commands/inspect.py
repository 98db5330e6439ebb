"""`avca inspect`: validate a benchmark and print one row per stage."""
from avca_tf.data.formats.benchmark import DATASETS, FEATURE_SETS, TEXT_PAIRINGS


def add_arguments(parser):
    parser.add_argument("root", help="benchmark root holding <dataset>/class-split and features")
    parser.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    parser.add_argument("--features", dest="feature_set", choices=sorted(FEATURE_SETS),
                        default="main_features")
    parser.add_argument("--text-pairing", choices=TEXT_PAIRINGS, default="own",
                        help="own: every class gets its own label vector (default); reference: "
                             "the authors' row-order pairing, which gives some classes another "
                             "class's vector (to compare with the published tables)")
    parser.add_argument("--temporal", action="store_true",
                        help="read the non-averaged per-step pickles (features/<features>_"
                             "non_averaged/) and print step counts per stage")


def run(args) -> int:
    from avca_tf.data.formats.benchmark import inspect_benchmark, summary
    from avca_tf.data.formats.temporal import inspect_temporal_benchmark, temporal_summary
    if args.temporal:
        print(temporal_summary(*inspect_temporal_benchmark(args.root, args.dataset,
                                                           args.feature_set, args.text_pairing)))
    else:
        print(summary(*inspect_benchmark(args.root, args.dataset, args.feature_set,
                                         args.text_pairing)))
    return 0
