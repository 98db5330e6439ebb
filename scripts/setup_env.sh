#!/usr/bin/env bash
# Creates .venv with the pinned avca-tf stack. Idempotent: a stamp file keyed on
# this script and the pins makes a repeated call a quick no-op.
#
# TFX 1.21's ml-metadata 1.21 wheel needs glibc >= 2.38. On an older glibc
# (Debian 12 ships 2.36) we install tfx / ml-pipelines-sdk with --no-deps and
# ml-metadata 1.17.1, whose wheel runs there; tensorflow-data-validation is
# never installed (our trainer/evaluator are custom components).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${AVCA_VENV:-.venv}
PY=${PYTHON:-python3.11}

glibc_version() { "$PY" -c 'import platform; print(platform.libc_ver()[1] or "0")'; }
glibc_at_least() {  # $1 = required version, e.g. 2.38
  "$PY" - "$1" <<'PY'
import platform, sys
have = tuple(int(x) for x in (platform.libc_ver()[1] or "0").split("."))
need = tuple(int(x) for x in sys.argv[1].split("."))
sys.exit(0 if have >= need else 1)
PY
}
if glibc_at_least 2.38; then MLMD=ml-metadata==1.21.0; else MLMD=ml-metadata==1.17.1; fi

STAMP_KEY=$(cat scripts/setup_env.sh requirements/*.txt setup.py pyproject.toml | sha256sum | cut -c1-16)-$MLMD
STAMP="$VENV/.avca-setup-$STAMP_KEY"
if [[ -f "$STAMP" ]]; then exit 0; fi

echo "[setup] glibc $(glibc_version): using $MLMD" >&2
[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q -c requirements/constraints.txt)
export PIP_DISABLE_PIP_VERSION_CHECK=1
# 1. TensorFlow, Beam and the TFX libraries that have glibc-neutral wheels.
"${PIP[@]}" tensorflow==2.21.0 tensorflow-text==2.21.1 tfx-bsl==1.21.0 tensorflow-transform==1.21.0 \
  'apache-beam[gcp]' h5py
# 2. TFX itself without its resolver-enforced pins (see header).
"${PIP[@]}" --no-deps tfx==1.21.0 ml-pipelines-sdk==1.21.0 "$MLMD"
# 3. The rest of TFX's runtime needs, then ours.
"${PIP[@]}" docker portpicker 'kubernetes<27' keras-tuner 'tensorflow-hub<0.16'
"${PIP[@]}" tensorflow-model-analysis==0.52.0
"${PIP[@]}" 'kfp>=2,<3' jinja2 tensorflow-serving-api
"${PIP[@]}" -r requirements/extra.txt
"${PIP[@]}" --no-deps --no-build-isolation -e .
rm -f "$VENV"/.avca-setup-*
touch "$STAMP"
echo "[setup] done: $VENV" >&2
