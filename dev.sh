#!/usr/bin/env bash
# The two commands of the README. Both do all set-up first (idempotent, a
# quick no-op when done):
#   bash dev.sh main   # the main job: the TFX pipeline on the built-in toy benchmark
#   bash dev.sh test   # the test suite
# Any further arguments are passed on (to `avca pipeline run` or to pytest).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
cmd=${1:-}; shift || true
case "$cmd" in
  main) exec .venv/bin/avca pipeline run "$@" ;;
  test) exec .venv/bin/python -m pytest tests "$@" ;;
  *) echo "usage: bash dev.sh main|test [args]" >&2; exit 2 ;;
esac
