#!/usr/bin/env bash
# The whole test suite on both Keras backends (the README's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
echo "== KERAS_BACKEND=tensorflow"
KERAS_BACKEND=tensorflow python -m pytest "$@"
echo "== KERAS_BACKEND=jax"
KERAS_BACKEND=jax python -m pytest "$@"
