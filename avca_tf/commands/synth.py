"""`avca synth`: write a synthetic benchmark in the published layout."""
import sys

from avca_tf.data.formats.benchmark import DATASETS, FEATURE_SETS
from avca_tf.data.synthesis.synth import FeatureModel

USES_TENSORFLOW = False  # numpy and h5py only: no TensorFlow start-up


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="benchmark root to write <out>/<dataset> into")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default=None,
                        help="default: Toy without --splits, UCF with --splits; UCF, "
                             "ActivityNet and VGGSound use the packaged real splits unless "
                             "--splits is given")
    parser.add_argument("--features", dest="feature_set", choices=sorted(FEATURE_SETS),
                        default="main_features")
    parser.add_argument("--splits", default=None,
                        help="folder laid out like avgzsl_benchmark: use its real class splits, "
                             "per-class counts, video ids and label embeddings instead of "
                             "the packaged copy")
    parser.add_argument("--temporal", action="store_true",
                        help="write per-step sequences in the non-averaged pickle layout "
                             "(features/<features>_non_averaged/, as TCaF reads) instead of h5")
    parser.add_argument("--media", action="store_true",
                        help="write the media toy instead: small video files (moving shapes and "
                             "tones driven by each class's word vector) in class folders "
                             "<out>/Toy/videos/<Class>/, with the toy's class lists and label "
                             "embeddings; extract features with `avca extract` (docs/media.md)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplies every per-class sample count (rounded, at least 1)")
    defaults = FeatureModel()
    parser.add_argument("--noise", type=float, default=defaults.noise,
                        help="median per-sample noise std (relative to the text-driven signal)")
    parser.add_argument("--nuisance", type=float, default=defaults.nuisance,
                        help="std of the per-class offset the label embedding cannot predict")


def run(args) -> int:
    from avca_tf.data.formats.benchmark import load_benchmark, summary
    from avca_tf.data.synthesis.synth import synthesize

    if args.media:
        from avca_tf.media.toy import synthesize_media
        dest = synthesize_media(args.out, seed=args.seed, scale=args.scale)
        n = sum(1 for _ in (dest / "videos").rglob("*.mp4"))
        print(f"wrote {dest}: {n} clips in {dest / 'videos'}")
        return 0
    dest = synthesize(args.out, dataset=args.dataset, feature_set=args.feature_set,
                      splits=args.splits, seed=args.seed, scale=args.scale,
                      progress=sys.stderr.isatty(),  # no bar in a log file
                      model=FeatureModel(noise=args.noise, nuisance=args.nuisance),
                      temporal=args.temporal)
    print(f"wrote {dest}")
    if args.temporal:
        from avca_tf.data.formats.temporal import load_temporal_benchmark, temporal_summary
        print(temporal_summary(load_temporal_benchmark(args.out, dest.name, args.feature_set)))
    else:
        print(summary(load_benchmark(args.out, dest.name, args.feature_set)))
    return 0
