"""`avca inspect`: validate a benchmark and print one row per stage."""
from avca_tf.data.benchmark import DATASETS, FEATURE_SETS, TEXT_PAIRINGS


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


def print_table(bench, mispaired=None) -> None:
    header = ("stage", "classes", "samples", "audio dim", "video dim", "embedding dim")
    rows = [(name, len(s.class_ids), len(s), s.audio.shape[1], s.video.shape[1],
             bench.label_embeddings.shape[1]) for name, s in bench.splits.items()]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f"{bench.dataset} / {bench.feature_set}: {len(bench.class_names)} classes in "
          f"all_class.txt, text pairing {bench.text_pairing}")
    for r in [header] + rows:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(r, widths))))
    if mispaired is not None:
        print(f"reference pairing: {len(mispaired)} of {len(bench.class_names)} classes get "
              f"another class's label vector")
    for note in bench.notes:
        print(f"note: {note}")


def _steps(lengths) -> str:
    import numpy as np
    if len(lengths) == 0:
        return "-"
    return f"{int(np.min(lengths))}/{float(np.median(lengths)):g}/{int(np.max(lengths))}"


def print_temporal_table(bench, mispaired=None) -> None:
    header = ("stage", "classes", "videos", "audio steps min/med/max", "video steps min/med/max",
              "audio dim", "video dim")
    rows = [(name, len(s.class_ids), len(s), _steps(s.audio_lengths), _steps(s.video_lengths),
             s.audio.shape[1], s.video.shape[1]) for name, s in bench.splits.items()]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(f"{bench.dataset} / {bench.feature_set} (temporal, {bench.audio_step:g} s per audio "
          f"step, {bench.video_step:g} s per video step): {len(bench.class_names)} classes in "
          f"all_class.txt, text pairing {bench.text_pairing}, embedding dim "
          f"{bench.label_embeddings.shape[1]}")
    for r in [header] + rows:
        print("  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)
                        for i, (v, w) in enumerate(zip(r, widths))))
    if mispaired is not None:
        print(f"reference pairing: {len(mispaired)} of {len(bench.class_names)} classes get "
              f"another class's label vector")
    for note in bench.notes:
        print(f"note: {note}")


def run(args) -> int:
    from pathlib import Path

    from avca_tf.data.benchmark import Layout, label_embeddings, load_benchmark, reference_mispaired

    from avca_tf.data.temporal import TemporalLayout, load_temporal_benchmark

    if args.temporal:
        bench = load_temporal_benchmark(args.root, args.dataset, args.feature_set,
                                        args.text_pairing)
        layout = TemporalLayout(Path(args.root), args.dataset, args.feature_set)
    else:
        bench = load_benchmark(args.root, args.dataset, args.feature_set, args.text_pairing)
        layout = Layout(Path(args.root), args.dataset, args.feature_set)
    mispaired = None
    if args.text_pairing == "reference":
        own, _ = label_embeddings(layout, bench.class_names, "own")
        mispaired = reference_mispaired(bench.class_names, own, bench.label_embeddings)
    (print_temporal_table if args.temporal else print_table)(bench, mispaired)
    return 0
