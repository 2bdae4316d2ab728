#!/usr/bin/env bash
# The whole test suite on both Keras backends (the README's test command).
# The TensorFlow and the JAX runs go side by side: most of a run is single-threaded
# op-by-op dispatch of tiny models, so two runs use both cores of a 2-core machine.
# Each run has its own pytest temporary folder (--basetemp); tests take free ports.
# Each run's output is printed in full once it ends; the script fails if either fails.
# CINN_TESTS_SERIAL=1: one run after the other, output as it comes.
# Arguments go to both pytest runs (e.g. a test file, -x, -k EXPR).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3
BACKENDS=(tensorflow jax)

if [ -n "${CINN_TESTS_SERIAL:-}" ]; then
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
