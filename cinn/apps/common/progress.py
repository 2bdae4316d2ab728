"""Progress of long command-line work, on stderr: ``[cinn] 12/68 images, 40 s``.

On a terminal the line is rewritten in place after every item; in a file or pipe (a
``nohup`` log, CI) a plain line is written every ``interval`` seconds and after the
last item, so that a log shows progress without control characters.
"""
import sys
import time


def progress(items, what, stream=None, interval=30.0):
    """Yield the items of the sequence ``items``, reporting after each one as above."""
    stream = sys.stderr if stream is None else stream
    live = stream.isatty()
    total, start = len(items), time.monotonic()
    last = start
    for i, item in enumerate(items):
        yield item
        now = time.monotonic()
        line = f"[cinn] {i + 1}/{total} {what}, {now - start:.0f} s"
        if live:
            print("\r" + line, end="\n" if i + 1 == total else "", file=stream, flush=True)
        elif i + 1 == total or now - last >= interval:
            print(line, file=stream, flush=True)
            last = now
