"""`avca export RUN_DIR --out SERVING_BASE`: a TF Serving SavedModel of a finished run."""
from avca_tf.commands.run_args import bounded_int
from avca_tf.config import MAX_VERSION


def add_arguments(parser):
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished `avca train` run")
    parser.add_argument("--out", required=True, metavar="SERVING_BASE",
                        help="serving base directory; writes SERVING_BASE/<name>/<version>/ "
                             "and SERVING_BASE/models.config")
    parser.add_argument("--serving-name", "--model-name", dest="serving_name", default="avca",
                        help="TF Serving model name (default avca; --model-name is its old spelling)")
    parser.add_argument("--version", type=bounded_int(1, below=MAX_VERSION + 1), default=None,
                        help="version number (default: next free one); never overwritten")
    parser.add_argument("--word-vectors", default=None, metavar="PATH",
                        help="word2vec/GloVe text file for the classify_open signature "
                             "(default: the file the run's label embeddings came from, if known)")
    parser.add_argument("--max-words", type=int, default=None, metavar="N",
                        help="keep only the first N words of the word-vector file "
                             "(word2vec/GloVe files are sorted by frequency)")
    parser.add_argument("--top-k", type=int, default=5, metavar="K",
                        help="classes returned by serving_default (default 5)")
    parser.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                        help="how long to wait for another export into the same model "
                             "directory to finish (default 600)")
    parser.add_argument("--keras", action="store_true",
                        help="also write the trained Keras model as <version>/model.keras "
                             "(keras.saving.load_model after `import avca_tf.models`)")
    parser.add_argument("--media", action="store_true",
                        help="runs on `avca extract` features: add the media signatures "
                             "serving_media / serving_media_wav (JPEG/PNG frames and audio in; "
                             "the extraction's encoders in the graph; docs/media.md)")
    parser.add_argument("--clip", metavar="PRESET", default=None,
                        help="ClipClap runs: with --clap, classify_open embeds names with this "
                             "keras-hub CLIP preset (name or local preset directory)")
    parser.add_argument("--clap", metavar="SAVEDMODEL", default=None,
                        help="SavedModel of the CLAP text tower (string [N] -> [N, 1024])")
    parser.add_argument("--clip-prompts", help="CLIP prompt file, one template with {} a line")
    parser.add_argument("--clap-prompts", help="CLAP prompt file, one template with {} a line")


def run(args) -> int:
    from avca_tf.data.text.encoders import read_prompts
    from avca_tf.serving.export import export_run, load_export_info
    path = export_run(args.run_dir, args.out, model_name=args.serving_name, version=args.version,
                      word_vectors=args.word_vectors, max_words=args.max_words,
                      top_k=args.top_k, wait_s=args.wait, clip_preset=args.clip,
                      clap_savedmodel=args.clap,
                      clip_prompts=read_prompts(args.clip_prompts) if args.clip_prompts else None,
                      clap_prompts=read_prompts(args.clap_prompts) if args.clap_prompts else None,
                      keras_file=args.keras, media=args.media)
    info = load_export_info(path)
    print(f"exported {path}")
    print(f"  signatures: {', '.join(info['signatures'])}")
    from avca_tf.inputs.signature import SERVING_INPUTS
    inputs = SERVING_INPUTS[info.get("inputs", "averaged")].describe(info)
    if inputs:
        print(f"  inputs: {inputs}")
    print(f"  classes: {len(info['class_names'])} ({sum(info['seen'])} seen, "
          f"beta {info['beta']:.4g}), top-k {info['top_k']}")
    if info.get("text_encoder"):
        print(f"  classify_open: names embedded by the text encoder(s) "
              f"({info['text_encoder']['dim']}-d)")
    elif info["word_vectors"]:
        print(f"  word vectors: {info['word_vectors']['words']} words from "
              f"{info['word_vectors']['source']}")
    elif info.get("feature_set") == "clip_clap":
        print("  classify_open: not exported (the run's class embeddings come from CLIP and "
              "CLAP; pass --clip PRESET --clap SAVEDMODEL, docs/clipclap.md)")
    else:
        print("  classify_open: not exported (no word-vector file; pass --word-vectors PATH)")
    if info.get("media"):
        print(f"  media: frames through {info['media']['image']['class']} "
              f"({info['media']['image']['dim']}-d), audio through "
              f"{info['media']['audio'].get('class', 'SavedModel')} "
              f"({info['media']['audio']['dim']}-d)")
    if info.get("keras_file"):
        print(f"  keras model: {path}/{info['keras_file']}")
    print(f"  models.config: {args.out}/models.config")
    return 0
