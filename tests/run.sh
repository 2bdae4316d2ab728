#!/usr/bin/env bash
# The whole test suite on both Keras backends (the README's test command).
# By default the TensorFlow run and the JAX run side by side: each is mostly
# single-threaded op-by-op dispatch of tiny models (about one core), so on an idle
# 2-core machine both take about the longer run's time instead of the sum (measured:
# tests/test_colorization.py + tests/test_density.py, 416 s one after the other, 231 s
# side by side; the whole suite side by side 20.3 min). Each run has its own pytest
# temporary folder (--basetemp; tests take free ports), each run's output is printed in
# full once it ends, and the script fails if either fails.
# CINN_TESTS_SERIAL=1 (or a 1-core machine): the TensorFlow run, then the JAX run,
# output as it comes (better on a machine already busy with other work).
# Arguments go to both pytest runs (e.g. a test file, -x, -k EXPR).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
BACKENDS=(tensorflow jax)

if [ -n "${CINN_TESTS_SERIAL:-}" ] || [ "$(nproc 2>/dev/null || echo 1)" -lt 2 ]; then
    status=0
    for backend in "${BACKENDS[@]}"; do
        echo "== KERAS_BACKEND=$backend"
        KERAS_BACKEND=$backend python -m pytest "$@" || status=1
    done
    exit $status
fi

WORK="$(mktemp -d)"
declare -A PID
cleanup() {
    for backend in "${BACKENDS[@]}"; do  # only on an interrupted run: stop our pytests
        if [ -n "${PID[$backend]:-}" ]; then
            pkill -P "${PID[$backend]}" 2>/dev/null || true  # the pytest of that run
            kill "${PID[$backend]}" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
for backend in "${BACKENDS[@]}"; do
    (
        SECONDS=0 rc=0
        KERAS_BACKEND=$backend python -m pytest --basetemp "$WORK/tmp_$backend" "$@" \
            >"$WORK/$backend.log" 2>&1 || rc=$?
        echo "$SECONDS" >"$WORK/$backend.seconds"
        exit $rc
    ) &
    PID[$backend]=$!
done
echo "== KERAS_BACKEND=${BACKENDS[*]}: running side by side"
status=0
for backend in "${BACKENDS[@]}"; do
    rc=0
    wait "${PID[$backend]}" || rc=$?
    PID[$backend]=
    echo "== KERAS_BACKEND=$backend (exit $rc, $(cat "$WORK/$backend.seconds") s)"
    cat "$WORK/$backend.log"
    [ "$rc" = 0 ] || status=1
done
exit $status
