#!/usr/bin/env bash
# The package as users get it: build the wheel and the sdist, install the wheel with
# the JAX backend alone (no TensorFlow) into a fresh venv, and run one command of each
# app from a folder outside the checkout (default weights and configs are package data).
# Usage: .ci/wheel_check.sh WORKDIR  (WORKDIR: an empty scratch folder)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$1"
python -m pip install -q build
python -m build -q --outdir "$WORK/dist" . >/dev/null
WHEEL=$(ls "$WORK"/dist/cinn-*.whl)
SIZE=$(stat -c %s "$WHEEL")
echo "wheel: $(basename "$WHEEL"), $((SIZE / 1000000)) MB; sdist: $(ls "$WORK"/dist/*.tar.gz | xargs -n1 basename)"
[ "$SIZE" -lt 100000000 ] || { echo "the wheel is over PyPI's 100 MB limit"; exit 1; }
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --upgrade pip
"$WORK/venv/bin/python" -m pip install -q "$WHEEL[jax]"
if "$WORK/venv/bin/python" -c "import tensorflow" 2>/dev/null; then
    echo "cinn[jax] installed TensorFlow"; exit 1
fi
mkdir -p "$WORK/elsewhere" && cd "$WORK/elsewhere"
CINN="$WORK/venv/bin/cinn"
export JAX_PLATFORMS=cpu
"$CINN" --version
"$CINN" colorize skimage:astronaut -n 2 --seed 0 -o out/
"$CINN" superres skimage:coffee --scale 4 -n 2 --seed 0 -o out/
"$CINN" inpaint skimage:astronaut --box 180,60,140,120 -n 2 --seed 0 -o out/
ls out/
if "$CINN" colorize missing.png -o out/ 2>err.txt; then echo "a missing file passed"; exit 1; fi
grep -q '^cinn: error:' err.txt
echo "wheel check: ok"
