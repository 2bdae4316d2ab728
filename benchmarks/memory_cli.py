"""Peak memory of the sampling commands on large photos (issue 16), measured by the OS.

Each case runs ``python -m cinn.cli ...`` (shipped weights) in a child process and
reads the child's peak resident set size from ``os.wait4`` (``ru_maxrss``: what
``/usr/bin/time -v`` reports as "Maximum resident set size"), with its wall time
and exit status. The inputs are scikit-image's astronaut resized to each size.

    python -m benchmarks.memory_cli                       # every case below
    python -m benchmarks.memory_cli --cases colorize-n1 colorize-n16
    nice -n 10 python -m benchmarks.memory_cli --out benchmarks/results

Writes ``memory_cli.jsonl`` (one line a run) and ``memory_cli.md`` (a table) to ``--out``.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: name -> (backend, command (IMG = the input), input width, input height)
CASES = {
    "inpaint-tf": ("tensorflow", ["inpaint", "IMG", "--box", "1200,800,400,300", "-n", "8"],
                   3000, 2000),
    "inpaint-jax": ("jax", ["inpaint", "IMG", "--box", "1200,800,400,300", "-n", "8"],
                    3000, 2000),
    "colorize-tf": ("tensorflow", ["colorize", "IMG", "-n", "8"], 4000, 3000),
    "superres-tf": ("tensorflow", ["superres", "IMG", "--scale", "4", "-n", "4",
                                   "--max-megapixels", "11"], 1000, 667),
    "colorize-n1": ("tensorflow", ["colorize", "IMG", "-n", "1"], 2000, 1500),
    "colorize-n16": ("tensorflow", ["colorize", "IMG", "-n", "16"], 2000, 1500),
}


def make_input(folder, width, height):
    import cv2
    import skimage.data

    path = Path(folder) / f"astronaut_{width}x{height}.png"
    if not path.exists():
        rgb = cv2.resize(skimage.data.astronaut(), (width, height),
                         interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def run_case(name, folder, out_dir):
    backend, command, width, height = CASES[name]
    img = make_input(folder, width, height)
    argv = [str(img) if a == "IMG" else a for a in command] + ["-o", str(out_dir / name)]
    env = {**os.environ, "KERAS_BACKEND": backend}
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "cinn.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    return {"case": name, "backend": backend, "command": "cinn " + " ".join(
                command).replace("IMG", f"{width}x{height}.png"),
            "input": f"{width}x{height}", "seconds": round(time.time() - start, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            "exit": os.waitstatus_to_exitcode(status), "stderr": err[-300:]}


def table(rows):
    lines = ["| case | command | backend | exit | wall (s) | peak RSS (MB) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['case']} | `{r['command']}` | {r['backend']} | {r['exit']} | "
                     f"{r['seconds']} | {r['peak_rss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            row = run_case(name, tmp, Path(tmp) / "out")
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(out / "memory_cli.jsonl", "a") as f:
                f.write(json.dumps({**row, "machine": platform.machine(),
                                    "cpus": os.cpu_count()}) + "\n")
    (out / "memory_cli.md").write_text(table(rows) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
