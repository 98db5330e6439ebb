# Image for the Kubeflow Pipelines tasks of `avca pipeline compile --kubeflow`.
#   docker build -t REGISTRY/avca:TAG .
# TensorFlow base image + the project's own install path (scripts/setup_env.sh:
# TFX with --no-deps and the ml-metadata wheel that fits the image's glibc,
# no tensorflow-data-validation), + the toy benchmark at /opt/avca/toy_benchmark
# so a spec compiled without --root runs as it is.
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0
FROM ${BASE_IMAGE}

ARG PYTHON=python3.11
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    AVCA_VENV=/opt/avca/venv \
    PATH=/opt/avca/venv/bin:${PATH}

WORKDIR /opt/avca/src
# Dependencies first (cached layer): the setup script only needs these files.
COPY setup.py ./
COPY requirements/ requirements/
COPY scripts/ scripts/
COPY avca_tf/__init__.py avca_tf/__init__.py
# The venv sees the base image's TensorFlow (no second copy when the versions match).
# TF images ship Python 3.11 (deadsnakes); add its venv module where it is missing.
RUN (${PYTHON} -c "import ensurepip" 2>/dev/null || (apt-get update \
        && apt-get install -y --no-install-recommends ${PYTHON}-venv \
        && rm -rf /var/lib/apt/lists/*)) \
    && ${PYTHON} -m venv --system-site-packages ${AVCA_VENV} \
    && PYTHON=${PYTHON} bash scripts/setup_env.sh
# The package itself (editable install done by the script points here).
COPY avca_tf/ avca_tf/
COPY components/ components/
COPY pipelines/ pipelines/
RUN ${AVCA_VENV}/bin/python -c "import components.trainer, components.evaluator, pipelines.tfx_pipeline" \
    && avca synth --out /opt/avca/toy_benchmark --seed 0 > /dev/null

# KubeflowV2DagRunner tasks run `python -m tfx.orchestration.kubeflow.v2.container...`;
# `python` is the venv's through PATH.
WORKDIR /opt/avca
