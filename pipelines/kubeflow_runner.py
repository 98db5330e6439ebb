"""Compiles the pipeline into a Kubeflow Pipelines V2 spec (KubeflowV2DagRunner).

Every task runs in the image built from the repository's Dockerfile, which
has this package installed and the toy benchmark at IMAGE_TOY_ROOT, so the
spec compiled without --root runs as it is.
"""
from __future__ import annotations

import json
import os

from avca_tf.errors import AvcaError
from avca_tf.io_utils import atomic_path
from pipelines.pipeline_config import PipelineConfig

IMAGE_TOY_ROOT = "/opt/avca/toy_benchmark"   # written by the Dockerfile (`avca synth`)
DEFAULT_PIPELINE_ROOT = "gs://avca-tf-example/pipeline_root"


class CompileError(AvcaError):
    """The pipeline cannot be compiled as asked."""


def compile_kubeflow(cfg: PipelineConfig, classes_file: str, vectors_path: str, image: str,
                     out_path: str) -> dict:
    """Writes the PipelineJob JSON to `out_path` (atomically); returns it as a dict."""
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import (
        KubeflowV2DagRunner, KubeflowV2DagRunnerConfig)

    from pipelines.tfx_pipeline import create_pipeline
    if not image or any(c.isspace() for c in image):
        raise CompileError(f"--image {image!r}: expected a container image reference "
                           "like example/avca:1 or gcr.io/PROJECT/avca:TAG")
    if cfg.metadata_path:
        raise CompileError("Kubeflow runs use the cluster's MLMD; drop the sqlite metadata path")
    runner = KubeflowV2DagRunner(
        config=KubeflowV2DagRunnerConfig(display_name=cfg.name, default_image=image),
        output_dir=os.path.dirname(os.path.abspath(out_path)),
        output_filename=os.path.basename(out_path))
    spec = runner.run(create_pipeline(cfg, classes_file, vectors_path), write_out=False)
    if isinstance(spec, str):
        spec = json.loads(spec)
    with atomic_path(out_path) as tmp:
        with open(tmp, "w") as f:
            json.dump(spec, f, indent=2, sort_keys=True)
            f.write("\n")
    return spec
