"""`avca pipeline run|compile|show`: the TFX pipeline locally, for Kubeflow, and its MLMD history.

  avca pipeline run                       # toy benchmark, 'toy' schedule, ./avca_work
  avca pipeline run --root R --dataset UCF --features main_features --preset UCF-main
  avca pipeline compile --kubeflow p.json --image example/avca:1
  avca pipeline show
"""
from __future__ import annotations

import argparse
import os

from avca_tf.commands.run_args import add_run_arguments, overrides
from avca_tf.config import DATASETS, FEATURE_SETS
from avca_tf.errors import ConfigError

DEFAULT_WORK = "avca_work"


def _data_args(p: argparse.ArgumentParser, root_help: str) -> None:
    p.add_argument("--root", default=None, help=root_help)
    p.add_argument("--dataset", default=None, choices=DATASETS,
                   help="default Toy without --root, UCF with it")
    p.add_argument("--features", default="main_features", choices=sorted(FEATURE_SETS),
                   help="feature set")
    p.add_argument("--vectors", default=None, metavar="PATH",
                   help="word vectors for the class-embedding job (word2vec/GloVe text or the "
                        "benchmark's npy dict; default: the toy vocabulary or the benchmark's npy)")
    p.add_argument("--media", default=None, metavar="DIR",
                   help="class folders of video files: the pipeline starts with a feature "
                        "extraction component (avca extract); --root then holds the class "
                        "lists and label embeddings (e.g. the root `avca synth --media` wrote)")
    p.add_argument("--image-encoder", default="",
                   help="with --media: keras-hub image preset or local preset directory")
    p.add_argument("--audio-encoder", default="",
                   help="with --media: keras-hub Whisper preset or local preset directory")
    p.add_argument("--skip-invalid", action="store_true",
                   help="ingestion skips invalid feature rows (listed in rejects.jsonl)")


def _trainer_args(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p, schedule_help="('toy', a minute of CPU training, is the default "
                                       "on the toy benchmark) ")
    p.add_argument("--hm-threshold", type=float, default=0.0, metavar="PERCENT",
                   help="bless (and push) only models with test HM >= this (default 0)")
    p.add_argument("--serving-name", default="",
                   help="serving model name: pushes to SERVING_DIR/<name>/<version> (default: "
                        "the model's name, plus -<features> off main_features: avca, tcaf, "
                        "avca-cls)")
    p.add_argument("--pipeline-name", default="",
                   help="MLMD pipeline (blessing history) name (default <model>-<dataset>-"
                        "<features>, e.g. avca-toy-main)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avca_tf.commands.ingest import add_beam_args
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run the pipeline locally (LocalDagRunner, sqlite MLMD)",
                         description="Runs ingestion -> class embeddings -> training -> "
                                     "evaluation -> push; unchanged steps come from the cache.")
    _data_args(run, "benchmark root holding <dataset>/ (default: the toy benchmark, "
                    "synthesized into WORK_DIR/benchmark on first use)")
    _trainer_args(run)
    run.add_argument("--work-dir", default=DEFAULT_WORK,
                     help=f"default home of every output below (default ./{DEFAULT_WORK})")
    run.add_argument("--pipeline-root", default=None,
                     help="artifacts (default WORK_DIR/pipeline_root)")
    run.add_argument("--metadata", default=None,
                     help="sqlite MLMD store (default WORK_DIR/metadata.sqlite)")
    run.add_argument("--serving-dir", default=None,
                     help="TF Serving base; pushes to <dir>/<model-name>/<version> "
                          "(default WORK_DIR/serving)")
    run.add_argument("--no-cache", action="store_true", help="re-run every component")
    add_beam_args(run)

    comp = sub.add_parser("compile",
                          help="write a Kubeflow Pipelines V2 spec (KubeflowV2DagRunner)")
    comp.add_argument("--kubeflow", required=True, metavar="OUT.json", help="spec file to write")
    comp.add_argument("--image", required=True, help="container image built from the Dockerfile")
    from pipelines.kubeflow_runner import DEFAULT_PIPELINE_ROOT, IMAGE_TOY_ROOT
    comp.add_argument("--pipeline-root", default=DEFAULT_PIPELINE_ROOT,
                      help=f"artifact store all tasks share (default {DEFAULT_PIPELINE_ROOT})")
    comp.add_argument("--serving-dir", default=None,
                      help="TF Serving base the Pusher writes to (default PIPELINE_ROOT/serving)")
    _data_args(comp, f"benchmark root as the tasks see it (default {IMAGE_TOY_ROOT}, "
                     "the toy benchmark inside the image)")
    _trainer_args(comp)
    add_beam_args(comp)

    show = sub.add_parser("show", help="list runs, artifacts and evaluation numbers from MLMD")
    show.add_argument("--metadata", default=os.path.join(DEFAULT_WORK, "metadata.sqlite"),
                      help=f"sqlite MLMD store (default ./{DEFAULT_WORK}/metadata.sqlite)")
    show.add_argument("--pipeline", default=None, help="only this pipeline (default: all)")
    show.add_argument("--last", type=int, default=0, metavar="N", help="only the last N runs")


def _run_config(args, dataset: str):
    """The trainer's RunConfig: the model's preset for the data (the 'toy' schedule by
    default on the toy benchmark) with the command-line settings."""
    from avca_tf.training.presets import run_config
    schedule = "toy" if dataset == "Toy" and args.preset is None else None
    cfg = run_config(dataset, args.features, overrides(args, schedule=schedule)).validate()
    # the trainer component reads the ingested TFRecords: checked as it will run
    cfg.replace(data__tfrecords="<ingested examples>").validate()
    return cfg


def _config(args, root: str, dataset: str, run_config, **paths):
    from pipelines.pipeline_config import DataSource, PipelineConfig, absolute
    from avca_tf.beam.embed_classes import benchmark_inputs
    from avca_tf.commands.ingest import check_beam_args
    from avca_tf.inputs import kind_of
    temporal = kind_of(run_config.model.name).temporal  # e.g. TCaF reads per-step features
    classes_file, vectors = benchmark_inputs(root, dataset, args.features, args.vectors,
                                             temporal=temporal)
    cfg = PipelineConfig(
        data=DataSource(root=absolute(root), dataset=dataset, feature_set=args.features,
                        vectors_path=absolute(vectors), skip_invalid=args.skip_invalid,
                        media=absolute(args.media) if args.media else "",
                        image_encoder=_local(args.image_encoder),
                        audio_encoder=_local(args.audio_encoder)),
        run_config=run_config, hm_threshold=args.hm_threshold, serving_name=args.serving_name,
        pipeline_name=args.pipeline_name, beam_pipeline_args=tuple(check_beam_args(args)),
        **{k: absolute(v) if v else v for k, v in paths.items()})
    return cfg, absolute(classes_file), absolute(vectors)


def _local(preset: str) -> str:
    """A local preset directory as an absolute path (components run elsewhere); names as given."""
    return os.path.abspath(preset) if preset and os.path.isdir(preset) else preset


def _check_names(args) -> None:
    """The names given on the command line, before any work (PipelineConfig checks the
    resolved ones again)."""
    from avca_tf.config import check_serving_name
    from pipelines.pipeline_config import check_pipeline_name
    if args.serving_name:
        check_serving_name(args.serving_name)
    if args.pipeline_name:
        check_pipeline_name(args.pipeline_name)


def _run(args) -> int:
    from pipelines.local_runner import claim_outputs, run_local
    _check_names(args)
    work = args.work_dir
    if args.media and args.root is None:
        raise ConfigError("--media needs --root: the benchmark root holding <dataset>/class-split "
                          "and the label embeddings (for the media toy: the root `avca synth "
                          "--media` wrote)")
    if args.media and not os.path.isdir(args.media):
        raise ConfigError(f"--media {args.media}: not a folder (class folders of video files)")
    if args.root is None:
        if args.dataset not in (None, "Toy") or args.features != "main_features":
            raise ConfigError("without --root the pipeline runs on the toy benchmark "
                              "(dataset Toy, main_features); pass --root for other data")
        dataset = "Toy"
        run_config = _run_config(args, dataset)
        # a sequence model reads per-step toy features
        from avca_tf.inputs import kind_of
        root = os.path.join(work, "benchmark-temporal" if kind_of(run_config.model.name).temporal
                            else "benchmark")
    else:
        root, dataset = args.root, args.dataset or "UCF"
        if "://" not in root and not os.path.isdir(os.path.join(root, dataset)):
            raise ConfigError(f"missing folder {os.path.join(root, dataset)} (dataset "
                              f"{dataset!r} under --root {root})")
        run_config = _run_config(args, dataset)
    from avca_tf.training.trainer import prepare_process
    prepare_process(run_config.train)  # the Trainer runs in this process
    cfg, classes_file, vectors = _config(
        args, root, dataset, run_config,
        pipeline_root=args.pipeline_root or os.path.join(work, "pipeline_root"),
        metadata_path=args.metadata or os.path.join(work, "metadata.sqlite"),
        serving_dir=args.serving_dir or os.path.join(work, "serving"))
    cfg = cfg.replace(enable_cache=not args.no_cache)
    with claim_outputs(cfg.pipeline_root, cfg.metadata_path, cfg.serving_dir, cfg.serving_name):
        if args.root is None:
            from avca_tf.data.synthesis.synth import toy_benchmark
            toy_benchmark(root, log=lambda m: print(f"[pipeline] {m}", flush=True),
                          temporal=cfg.temporal)
        print(f"[pipeline] {cfg.name}: {dataset}/{cfg.data.feature_set} from {cfg.data.root}; "
              f"{_describe(cfg.run_config)}", flush=True)
        summary = run_local(cfg, classes_file, vectors)
    _print_summary(cfg, summary)
    return 0


def _describe(rc) -> str:
    t = rc.train
    return (f"model {rc.model.name}, preset {rc.preset} ({t.epochs} epochs x {t.n_batches} "
            f"batches of {t.batch_size})")


def _print_summary(cfg, s) -> None:
    print(f"\npipeline {cfg.name}, run {s.run.run_id} ({s.seconds:.0f}s)")
    for n in s.run.nodes:
        what = {"CACHED": "from cache", "COMPLETE": "ran"}.get(n.state, n.state.lower())
        print(f"  {n.node_id:32s} {what:10s} execution {n.execution_id}")
    if s.metrics:
        print("\n" + format_metrics(s.metrics))
        b = s.metrics["blessing"]
        print(f"\nblessing: {'BLESSED' if b['blessed'] else 'not blessed'} ({b['reason']})")
    if s.pushed_to:
        print(f"pushed model:     {s.pushed_to}")
    else:
        model_dir = os.path.join(cfg.serving_dir, cfg.serving_name)
        versions = sorted((v for v in os.listdir(model_dir) if v.isdigit()), key=int) \
            if os.path.isdir(model_dir) else []
        print("pushed model:     nothing pushed in this run" +
              (f" (serving {os.path.join(model_dir, versions[-1])})" if versions else ""))
    run = s.run.output("AvcaTrainer", "model_run")
    if run:
        print(f"run results:      {os.path.join(run.uri, 'results.json')}")
        print(f"TensorBoard logs: tensorboard --logdir {run.uri}")
    print(f"MLMD store:       {cfg.metadata_path}  (avca pipeline show --metadata "
          f"{cfg.metadata_path})")
    print(f"pipeline root:    {cfg.pipeline_root}")


def format_metrics(m: dict) -> str:
    lines = [f"{'split':6s} {'S':>7s} {'U':>7s} {'HM':>7s} {'ZSL':>7s}   (percent, beta "
             f"{m['beta']:.2f})"]
    for split in ("val", "test"):
        r = m[split]
        lines.append(f"{split:6s} " + " ".join(f"{r[k]:7.2f}" for k in ("S", "U", "HM", "ZSL")))
    return "\n".join(lines)


def _compile(args) -> int:
    from pipelines.kubeflow_runner import IMAGE_TOY_ROOT, compile_kubeflow
    _check_names(args)
    root = args.root or IMAGE_TOY_ROOT
    dataset = args.dataset or ("Toy" if args.root is None else "UCF")
    serving = args.serving_dir or args.pipeline_root.rstrip("/") + "/serving"
    cfg, classes_file, vectors = _config(args, root, dataset, _run_config(args, dataset),
                                         pipeline_root=args.pipeline_root,
                                         serving_dir=serving, metadata_path="")
    spec = compile_kubeflow(cfg, classes_file, vectors, args.image, args.kubeflow)
    tasks = sorted(spec["pipelineSpec"]["root"]["dag"]["tasks"])
    print(f"wrote {args.kubeflow}: pipeline {cfg.name}, image {args.image}, "
          f"{_describe(cfg.run_config)}")
    print(f"  tasks: {', '.join(tasks)}")
    print(f"  pipeline root: {cfg.pipeline_root}; pushes to {serving}/{cfg.serving_name}/<version>")
    return 0


def _show(args) -> int:
    from pipelines import mlmd_report as mr
    store = mr.open_store(args.metadata)
    names = [args.pipeline] if args.pipeline else mr.pipeline_names(store)
    if not names:
        print(f"{args.metadata}: no pipeline runs recorded")
    for name in names:
        runs = mr.pipeline_runs(store, name)
        if args.last > 0:
            runs = runs[-args.last:]
        print(f"pipeline {name}: {len(runs)} run(s) shown")
        for run in runs:
            print(f"\nrun {run.run_id}")
            for n in run.nodes:
                print(f"  {n.node_id:32s} {n.state:9s} execution {n.execution_id}")
                for a in n.outputs:
                    print(f"      {a.key:18s} {a.type:20s} #{a.id:<4d} {a.uri}")
                    shown = {k: v for k, v in a.properties.items()
                             if k not in ("tfx_version", "is_external", "split_names",
                                          "current_model")}
                    if shown:
                        print("          " + ", ".join(
                            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in sorted(shown.items())))
            ev = run.output("GZSLEvaluator", "evaluation")
            if ev:
                print("\n" + "\n".join("  " + line
                                       for line in format_metrics(mr.evaluation_metrics(ev))
                                       .splitlines()))
    return 0


def run(args) -> int:
    return {"run": _run, "compile": _compile, "show": _show}[args.action](args)
