#!/usr/bin/env bash
# Sets up .venv with everything the tests need (first run: a few minutes) and runs the whole suite.
# Usage: bash tests/run.sh [pytest args]        (README's test command; CI runs it through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip
# torch: the CPU build is enough for the tests; pinning 2.13.0 avoids pulling a multi-GB CUDA build on
# machines that keep that CPU wheel locally (pyproject keeps an open range for users).
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" || \
  .venv/bin/python -m pip install -q --disable-pip-version-check torch
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[cpu,mediapipe,gui,train,test,packaging]"
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
