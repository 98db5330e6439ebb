"""The AVCA TFX pipeline: [extraction ->] ingestion -> class embeddings -> training ->
evaluation -> push (extraction with media input: video files -> features).

One function wires the components; the local and Kubeflow runners build it
from the same PipelineConfig.
"""
import hashlib
import json
import os
from pathlib import Path

from tfx.components import Pusher
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy)
from tfx.orchestration import metadata, pipeline
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

import avca_tf
import components
from components.class_embeddings import ClassEmbeddingGen
from components.evaluator import GZSLEvaluator
from components.extraction import FeatureExtraction
from components.ingestion import FeatureIngestion
from components.trainer import AvcaTrainer
from pipelines.pipeline_config import PipelineConfig


def code_version(packages=(avca_tf, components)) -> str:
    """Hash of the content of every .py file of `packages`: the trainer's and evaluator's
    cache key, so a run after a code change trains again instead of serving a model the
    older code made."""
    h = hashlib.sha256()
    for pkg in packages:
        base = Path(pkg.__file__).parent
        for p in sorted(base.rglob("*.py")):
            h.update(f"{pkg.__name__}/{p.relative_to(base).as_posix()}\0".encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def media_extraction(cfg: PipelineConfig, version: str, fingerprint: str) -> FeatureExtraction:
    """The FeatureExtraction component of a media pipeline; its cache key holds the code
    version and the encoders' identity (presets and the digests of local preset files)."""
    from avca_tf.media.encoders import DEFAULT_AUDIO_PRESET, DEFAULT_IMAGE_PRESET, preset_digest
    data = cfg.data
    encoders = {"image_preset": data.image_encoder or DEFAULT_IMAGE_PRESET,
                "audio_preset": data.audio_encoder or DEFAULT_AUDIO_PRESET}
    identity = {k: {"preset": v, "digest": preset_digest(v)} for k, v in encoders.items()}
    return FeatureExtraction(videos=data.media, splits=data.root, dataset=data.dataset,
                             feature_set=data.feature_set, encoders=encoders,
                             encoder_identity=identity, code_version=version,
                             skip_invalid=data.skip_invalid, input_fingerprint=fingerprint)


def create_pipeline(cfg: PipelineConfig, classes_file: str, vectors_path: str,
                    fingerprints: tuple[str, str] = ("", "")) -> pipeline.Pipeline:
    """`fingerprints`: of the benchmark files and of the class list + vectors (cache keys)."""
    data = cfg.data
    version = code_version()
    serving_model_dir = os.path.join(cfg.serving_dir, cfg.serving_name)
    extraction = media_extraction(cfg, version, fingerprints[0]) if data.media else None
    ingestion = FeatureIngestion(root=data.root, dataset=data.dataset, feature_set=data.feature_set,
                                 skip_invalid=data.skip_invalid, input_fingerprint=fingerprints[0],
                                 temporal=cfg.temporal,
                                 features=extraction.outputs["features"] if extraction else None)
    embeddings = ClassEmbeddingGen(classes_file=classes_file, vectors_path=vectors_path,
                                   input_fingerprint=fingerprints[1])
    trainer = AvcaTrainer(
        examples=ingestion.outputs["examples"],
        class_embeddings=embeddings.outputs["class_embeddings"],
        run_config=json.dumps(cfg.run_config.to_dict(), sort_keys=True),
        word_vectors="" if vectors_path.endswith(".npy") else vectors_path,
        code_version=version)
    # The last blessed model of this pipeline, looked up in MLMD.
    baseline = Resolver(strategy_class=LatestBlessedModelStrategy,
                        model=Channel(type=standard_artifacts.Model),
                        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
                        ).with_id("latest_blessed_model_resolver")
    evaluator = GZSLEvaluator(
        examples=ingestion.outputs["examples"],
        class_embeddings=embeddings.outputs["class_embeddings"],
        model=trainer.outputs["model"], model_run=trainer.outputs["model_run"],
        baseline_blessing=baseline.outputs["model_blessing"], hm_threshold=cfg.hm_threshold,
        code_version=version, serving_model_dir=serving_model_dir)
    pusher = Pusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=serving_model_dir)))
    return pipeline.Pipeline(
        pipeline_name=cfg.name, pipeline_root=cfg.pipeline_root,
        components=([extraction] if extraction else [])
        + [ingestion, embeddings, trainer, baseline, evaluator, pusher],
        enable_cache=cfg.enable_cache, beam_pipeline_args=list(cfg.beam_pipeline_args),
        metadata_connection_config=(metadata.sqlite_metadata_connection_config(cfg.metadata_path)
                                    if cfg.metadata_path else None))
