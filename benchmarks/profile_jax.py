"""Where a JAX training step of a bare flow spends its time, per kind of XLA operation.

    KERAS_BACKEND=jax python -m benchmarks.profile_jax superres --steps 5

Builds the app's bare flow as ``benchmarks.bench`` does (batch 8, the conditioning
features fed as inputs), compiles and warms up Keras' ``fit`` step, traces ``--steps``
steps with ``jax.profiler`` and prints, per kind of operation (the XLA instruction name
without its number; YNNPACK fusions that contain a convolution apart from the others),
the wall time per step during which at least one such operation ran on any thread
(intervals merged, so two threads at once count once), and how often it ran. XLA's own
(Eigen) convolutions run untraced inside the thread pool: their time is what the span
leaves uncovered. Read it on a quiet machine; a profile, not a benchmark.
"""
import argparse
import collections
import glob
import os
import re
import tempfile


def kind_of(name, conv_fusions=()):
    """``"transpose_copy_fusion.117"`` -> ``"transpose_copy_fusion"``; a YNNPACK fusion is
    ``"ynn_conv"`` when its name is in ``conv_fusions``, else ``"ynn_eltwise"``."""
    kind = re.sub(r"[.\d]+$", "", name)
    if kind == "ynn_fusion":
        return "ynn_conv" if name in conv_fusions else "ynn_eltwise"
    return kind


def merged_length(intervals):
    """Total length covered by ``(start, end)`` intervals, overlaps counted once."""
    total, start, end = 0, None, None
    for s, e in sorted(intervals):
        if start is None or s > end:
            total += 0 if start is None else end - start
            start, end = s, e
        else:
            end = max(end, e)
    return total + (0 if start is None else end - start)


def conv_fusions(hlo_text):
    """Names of the fusions in optimised HLO text whose computation has a convolution."""
    has_conv = {}
    for block in re.split(r"\n(?=%|ENTRY)", hlo_text):
        has_conv[block.split(" ", 1)[0].lstrip("%")] = "convolution(" in block
    return {m.group(1) for m in re.finditer(r"^\s+%(ynn_fusion\.\d+) = .*?calls=%([\w.]+)",
                                             hlo_text, re.M) if has_conv.get(m.group(2))}


SKIP = ("end:", "ThunkExecutor", "Threadpool", "Slinky")


def summarize(events, steps, convs=()):
    """``events``: ``(name, start, end)`` of the XLA threads -> ``(span, covered, rows)``,
    times per step; ``rows``: ``(kind, time per step, calls per step)``, longest first."""
    events = [e for e in events if not e[0].startswith(SKIP)]
    if not events:
        return 0.0, 0.0, []
    by_kind = collections.defaultdict(list)
    for name, s, e in events:
        by_kind[kind_of(name, convs)].append((s, e))
    span = max(e for _, _, e in events) - min(s for _, s, _ in events)
    rows = sorted(((k, merged_length(v) / steps, len(v) / steps) for k, v in by_kind.items()),
                  key=lambda r: -r[1])
    return span / steps, merged_length([(s, e) for _, s, e in events]) / steps, rows


def read_trace(folder):
    """``(name, start_s, end_s)`` of every event on the XLA threads of the trace in ``folder``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    out = []
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if "python" in line.name:
                continue
            for ev in line.events:
                start = line.timestamp_ns * 1e-9 + ev.offset_ps * 1e-12
                out.append((names.get(ev.metadata_id, "?"), start, start + ev.duration_ps * 1e-12))
    return out


def profile(arch, steps, folder):
    import jax

    from benchmarks import bench

    spec = bench.arch_spec(arch)
    x, feats = bench._cinn_inputs(spec, 8)
    model = bench.compiled_flow(spec, x, feats)
    data = bench.repeated(bench.fit_batch(x, feats))
    model.fit(data, epochs=1, steps_per_epoch=bench.WARMUP_STEPS, verbose=0)  # compiles
    with jax.profiler.trace(folder):
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return read_trace(folder)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("arch", choices=["colorization", "superres"])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=20)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        # the optimised HLO tells which fusions hold convolutions; XLA reads its flags
        # once, so they go in before cinn (which adds its own) imports Keras and JAX
        dump = os.path.join(tmp, "hlo")
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_dump_to={dump} --xla_dump_hlo_pass_re=^$").strip()
        import cinn  # noqa: F401

        events = profile(args.arch, args.steps, os.path.join(tmp, "trace"))
        texts = sorted(glob.glob(os.path.join(dump, "*train_step.cpu_after_optimizations.txt")),
                       key=os.path.getsize)
        convs = conv_fusions(open(texts[-1]).read()) if texts else set()
    span, covered, rows = summarize(events, args.steps, convs)
    print(f"{args.arch}: {span * 1e3:.1f} ms a step (traced span), traced operations "
          f"{covered * 1e3:.1f} ms, untraced (XLA's Eigen convolutions, waits) "
          f"{(span - covered) * 1e3:.1f} ms")
    for kind, t, n in rows[:args.top]:
        print(f"{t * 1e3:9.2f} ms/step {n:7.1f} calls/step  {kind}")


if __name__ == "__main__":
    main()
