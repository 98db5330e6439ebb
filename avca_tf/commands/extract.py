"""`avca extract`: Beam job, video files -> features in the published layouts
(avca_tf/beam/extract.py, docs/media.md).

Beam pipeline options follow a `--`, as for `avca ingest`:
  avca extract --dataset Toy --videos toy/Toy/videos --splits toy --out feats \\
      --image-encoder toy/Toy/encoders/clip --audio-encoder toy/Toy/encoders/whisper \\
      -- --runner=DirectRunner --direct_running_mode=multi_processing --direct_num_workers=2
"""
import argparse

from avca_tf.commands.ingest import add_beam_args, check_beam_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avca_tf.data.formats.benchmark import DATASETS, FEATURE_SETS
    from avca_tf.media.encoders import DEFAULT_AUDIO_PRESET, DEFAULT_IMAGE_PRESET
    from avca_tf.media.preprocess import MediaSpec
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS),
                        help="whose class lists and label embeddings the videos belong to")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--videos", help="folder of class folders <Class>/<video id>.<mp4|webm|"
                                      "avi|mkv|mov>; stages from the dataset's stage csvs")
    src.add_argument("--csv", help="CSV with columns path,class,stage (paths relative to it)")
    parser.add_argument("--splits", default=None,
                        help="benchmark root holding <dataset>/class-split and the label "
                             "embeddings (default: the packaged splits; Toy: the root "
                             "`avca synth --media` wrote)")
    parser.add_argument("--features", dest="feature_set", default="main_features",
                        choices=[n for n, f in sorted(FEATURE_SETS.items())
                                 if f.file_format == "h5"],
                        help="feature set written; its widths must be the encoders' widths")
    parser.add_argument("--out", required=True,
                        help="benchmark root to write (<out>/<dataset>/..., report.json)")
    parser.add_argument("--image-encoder", default=DEFAULT_IMAGE_PRESET,
                        help="keras-hub image preset or local preset directory (CLIP: its "
                             "projected image embedding; other backbones: mean feature map)")
    audio = parser.add_mutually_exclusive_group()
    audio.add_argument("--audio-encoder", default=DEFAULT_AUDIO_PRESET,
                       help="keras-hub Whisper preset or local preset directory")
    audio.add_argument("--audio-savedmodel", default=None,
                       help="SavedModel whose signature maps float32 waveforms [N, T] to "
                            "[N, D] (CLAP, VGGish, YAMNet exported from their frameworks)")
    parser.add_argument("--audio-rate", type=int, default=16000,
                        help="sample rate the --audio-savedmodel takes")
    d = MediaSpec()
    parser.add_argument("--window-seconds", type=float, default=d.window_seconds)
    parser.add_argument("--frames-per-window", type=int, default=d.frames_per_window)
    parser.add_argument("--max-windows", type=int, default=d.max_windows)
    parser.add_argument("--max-pixels", type=int, default=d.max_pixels,
                        help="larger video frames are rejected")
    parser.add_argument("--skip-invalid", action="store_true",
                        help="skip files that cannot be used (listed in report.json) instead "
                             "of failing")
    add_beam_args(parser)


def run(args) -> int:
    from avca_tf.beam.extract import run_extract
    from avca_tf.media.preprocess import MediaSpec
    spec = MediaSpec(window_seconds=args.window_seconds, frames_per_window=args.frames_per_window,
                     max_windows=args.max_windows, max_pixels=args.max_pixels)
    encoder_args = {"image_preset": args.image_encoder, "audio_preset": args.audio_encoder,
                    "audio_savedmodel": args.audio_savedmodel, "audio_rate": args.audio_rate}
    run_extract(args.dataset, args.out, videos=args.videos, csv_path=args.csv,
                splits=args.splits, feature_set=args.feature_set, encoder_args=encoder_args,
                beam_args=check_beam_args(args), skip_invalid=args.skip_invalid, spec=spec)
    return 0
