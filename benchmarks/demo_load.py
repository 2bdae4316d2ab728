"""Load test of ``cinn demo``: many clients at once for minutes, mixed valid and
invalid requests on the three tabs, and what the server makes of them.

    python -m benchmarks.demo_load --minutes 5 --clients 16 --max-queue 8 \\
        --out runs/demo_load.json

Starts ``cinn demo --port FREE --max-queue M`` (the shipped weights) and drives it
with ``--clients`` gradio_client clients, each in its own thread, each sending one
request after the other until the time is up: a tab drawn at random (colorization,
super-resolution 4x, inpainting), small pictures (scikit-image photos, 48x48; 24x24
for 4x super-resolution), N = 2; one request in five invalid (a corrupt file, an
empty mask, N out of range), which must be refused with its own message. A request
refused because the queue is full (the busy message) is sent again after the wait
that message names. Counted per tab:

* served: valid requests answered with their pictures; failed: valid requests
  answered with an error; lost: valid requests with no answer within
  ``--timeout`` s (the client gives up) -- the demo must have 0 failed and 0 lost;
* refused: invalid requests answered with the error meant for them; wrong: invalid
  requests answered otherwise (served, or another error);
* busy: refusals past the queue limit (each followed by a retry);
* latency of the served requests (from the accepted attempt's submission to its
  answer: queue wait plus work), p50 and p95, seconds;

and the server's peak RSS (``VmHWM`` of its process). Prints a Markdown table and
writes everything to ``--out`` (JSON). Not part of the test suite: it takes the
machine's CPU for the whole run.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TABS = ("colorization", "superres", "inpainting")
#: the messages that invalid requests must get (N out of range: the page's slider
#: refuses it, or the demo's own check)
EXPECTED = {"corrupt": re.compile("is not a readable image"),
            "empty mask": re.compile("The mask is empty"),
            "N out of range": re.compile("N must be between|less than minimum value 1|"
                                         "greater than maximum value 8")}
BUSY = re.compile(r"The server is busy: .*try again in about (\d+) (s|minutes)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid):
    """The peak resident memory of process ``pid`` so far (``VmHWM``), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def write_inputs(folder):
    """Small pictures for each tab and a corrupt file."""
    import cv2
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    files = {tab: [] for tab in TABS}
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = np.asarray(getattr(skimage.data, name)())[..., :3]
        for tab, side in (("colorization", 48), ("superres", 24), ("inpainting", 48)):
            small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
            path = folder / f"{tab}_{name}.png"
            cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
            files[tab].append(str(path))
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3)
    files["corrupt"] = str(corrupt)
    return files


def make_request(rng, files):
    """``(tab, invalid kind or None, api_name, args)``: one request, invalid one time
    in five."""
    from gradio_client import handle_file

    tab = rng.choice(TABS)
    invalid = None
    if rng.random() < 0.2:
        invalid = rng.choice(["corrupt", "N out of range"] if tab != "inpainting" else
                             ["empty mask", "N out of range"])
    n = rng.choice([0, 9]) if invalid == "N out of range" else 2
    seed = rng.randrange(1000)
    picture = rng.choice(files[tab])
    if tab == "colorization":
        path = files["corrupt"] if invalid == "corrupt" else picture
        return tab, invalid, "/colorize", (handle_file(path), n, 0.3, seed, True)
    if tab == "superres":
        path = files["corrupt"] if invalid == "corrupt" else picture
        return tab, invalid, "/superres", (handle_file(path), "4x", n, 0.5, seed)
    editor = {"background": handle_file(picture), "layers": [], "composite": None}
    box = "" if invalid == "empty mask" else f"{rng.randrange(4, 16)},{rng.randrange(4, 16)},20,16"
    return tab, invalid, "/inpaint", (editor, box, n, 0.2, seed)


def error_text(err):
    """The message of a refused request: the page's error, or the ``detail`` of an
    HTTP error (the queue limit's busy message)."""
    response = getattr(err, "response", None)
    if response is not None:
        try:
            return str(response.json().get("detail"))
        except Exception:  # noqa: BLE001 - not JSON: the exception's own text
            pass
    return str(err)


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []

    def add(self, **row):
        with self.lock:
            self.rows.append(row)


def client_loop(index, url, files, stop_at, timeout, results, workdir):
    from gradio_client import Client

    rng = random.Random(1000 + index)
    client = Client(url, verbose=False, analytics_enabled=False,
                    download_files=str(workdir / f"downloads{index}"))
    while time.time() < stop_at:
        tab, invalid, api, args = make_request(rng, files)
        first = time.time()
        busy, busy_message = 0, None
        while True:
            start = time.time()
            job = client.submit(*args, api_name=api)
            try:
                out = job.result(timeout=timeout)
                outcome, message = "answered", str(out[0])[:200]
            except TimeoutError:
                job.cancel()
                outcome, message = "lost", f"no answer in {timeout} s"
            except Exception as err:  # noqa: BLE001 - every answer is classified below
                outcome, message = "error", error_text(err)[:300]
            match = BUSY.search(message) if outcome == "error" else None
            if match and time.time() < stop_at + timeout:
                busy, busy_message = busy + 1, message
                wait = int(match.group(1)) * (60 if match.group(2) == "minutes" else 1)
                time.sleep(wait * rng.uniform(0.8, 1.2))
                continue
            break
        end = time.time()
        if invalid is None:
            kind = {"answered": "served", "error": "failed", "lost": "lost"}[outcome]
        else:
            kind = ("refused" if outcome == "error" and EXPECTED[invalid].search(message)
                    else "lost" if outcome == "lost" else "wrong")
        results.add(tab=tab, invalid=invalid, kind=kind, message=message, busy=busy,
                    busy_message=busy_message, latency=end - start, total=end - first,
                    finished=end)


def summarise(rows, minutes, clients, max_queue, peak_mb):
    table = {}
    for tab in TABS:
        mine = [r for r in rows if r["tab"] == tab]
        served = [r["latency"] for r in mine if r["kind"] == "served"]
        table[tab] = {
            "served": len(served),
            "failed": sum(r["kind"] == "failed" for r in mine),
            "lost": sum(r["kind"] == "lost" for r in mine if r["invalid"] is None),
            "refused": sum(r["kind"] == "refused" for r in mine),
            "wrong": sum(r["kind"] == "wrong" for r in mine),
            "busy": sum(r["busy"] for r in mine),
            "p50_s": round(float(np.percentile(served, 50)), 2) if served else None,
            "p95_s": round(float(np.percentile(served, 95)), 2) if served else None,
        }
    busy = [r["busy_message"] for r in rows if r["busy"]]
    return {"minutes": minutes, "clients": clients, "max_queue": max_queue,
            "requests": len(rows), "server_peak_rss_mb": peak_mb, "tabs": table,
            "failed_messages": sorted({r["message"] for r in rows if r["kind"] in
                                       ("failed", "wrong")})[:10],
            "busy_example": busy[0] if busy else None}


def markdown(summary):
    lines = ["| tab | served | failed | lost | invalid refused | invalid wrong | busy "
             "(retried) | p50 (s) | p95 (s) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"colorization": "colorization", "superres": "super-resolution 4x",
             "inpainting": "inpainting"}
    for tab, t in summary["tabs"].items():
        lines.append(f"| {names[tab]} | {t['served']} | {t['failed']} | {t['lost']} | "
                     f"{t['refused']} | {t['wrong']} | {t['busy']} | {t['p50_s']} | "
                     f"{t['p95_s']} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--max-queue", type=int, default=8,
                   help="cinn demo --max-queue (below --clients: the busy message shows)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds a client waits for one answer before counting it lost")
    p.add_argument("--out", default="runs/demo_load.json")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="cinn-demo-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = Path(args.out).with_suffix(".server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    cinn = Path(sys.executable).with_name("cinn")
    cmd = ([str(cinn)] if cinn.exists() else [sys.executable, "-m", "cinn.cli"]) + [
        "demo", "--port", str(port), "--max-queue", str(args.max_queue)]
    env = {**os.environ, "TMPDIR": str(work)}
    with open(log, "w") as f:
        server = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        start = time.time()
        while True:
            if server.poll() is not None:
                sys.exit(f"cinn demo exited ({server.returncode}); see {log}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
            if time.time() - start > 600:
                sys.exit(f"{url} not served after 600 s; see {log}")
        print(f"[load] {' '.join(cmd)}: served after {time.time() - start:.0f} s; "
              f"{args.clients} clients for {args.minutes:g} min", flush=True)
        files = write_inputs(work / "inputs")
        tempfile.tempdir = str(work / "client_tmp")   # gradio_client's downloads
        Path(tempfile.tempdir).mkdir()
        results = Results()
        stop_at = time.time() + 60 * args.minutes
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(k, url, files, stop_at, args.timeout, results, work))
                   for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * args.minutes + 2 * args.timeout + 60)
        unfinished = sum(t.is_alive() for t in threads)
        peak = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)
    summary = summarise(results.rows, args.minutes, args.clients, args.max_queue,
                        round(peak) if peak else None)
    summary["clients_unfinished"] = unfinished
    summary["command"] = "cinn " + " ".join(cmd[-5:])
    Path(args.out).write_text(json.dumps({**summary, "requests_log": results.rows}, indent=1))
    print(markdown(summary))
    print(f"requests: {summary['requests']}; server peak RSS {summary['server_peak_rss_mb']} MB; "
          f"busy message: {summary['busy_example']}")
    if summary["failed_messages"]:
        print("failed or wrong:", *summary["failed_messages"], sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
