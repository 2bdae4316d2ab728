"""What the sampling commands write, checked before any work, and written as the
samples come, so that memory does not grow with the number of samples N.

* ``check_out_dir``: ``-o`` is made if needed and a file is written in it (and
  removed) before a model is loaded.
* ``distinct_names``: two inputs with the same name (``img.webp``, ``img.bmp``)
  write ``img_...`` and ``img_2_...``, never one over the other.
* ``check_pixels``: the pixel budget of a command (``--max-megapixels``).
* ``RowGrid``: one row of equal-size pictures (input | samples | ...) streamed to a
  PNG: each picture goes to a temporary file as it is produced, and the PNG is
  encoded scanline by scanline, so the whole grid is never in memory.
* ``RunningStats``: mean and per-pixel standard deviation of the samples, summed
  as they come.
"""
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

from cinn.apps.common.images import write_image
from cinn.apps.common.uncertainty import heat_map
from cinn.errors import CinnError

#: PNG compression (zlib level) of streamed grids: fast, about OpenCV's file sizes
PNG_LEVEL = 3


def check_out_dir(out, option="-o"):
    """``Path(out)``: the output folder, made (with its parents) when missing, in
    which a probe file was just written and removed; else a one-line ``CinnError``
    naming ``option``. Called before a model is loaded: a job never runs to its end
    only to find that it cannot write its results (a permission check alone would
    pass a folder the kernel refuses, e.g. in /proc)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CinnError(f"{option} {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CinnError(f"{option} {out}: cannot make the folder ({_why(err)})") from None
    probe = out / f".cinn-write-test-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"cinn")
        probe.unlink()
    except OSError as err:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
        raise CinnError(f"{option} {out}: cannot write in the folder ({_why(err)})") from None
    return out


def _why(err):
    """The reason of an ``OSError`` in a few words."""
    if err.strerror:
        return err.strerror
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def distinct_names(names):
    """``names`` with repeats renamed ``NAME_2``, ``NAME_3``, ... (a note on stderr
    for each), so no output overwrites another."""
    seen, out = set(), []
    for name in names:
        new, k = name, 2
        while new in seen:
            new, k = f"{name}_{k}", k + 1
        if new != name:
            print(f"cinn: note: another input is also named {name}: this one's outputs "
                  f"are named {new}", file=sys.stderr)
        seen.add(new)
        out.append(new)
    return out


def check_pixels(path, hw, limit_mp, what="image", scale=1):
    """``CinnError`` naming the limit and how to raise it when an ``hw`` image
    (times ``scale``**2 for outputs larger than the input) exceeds ``limit_mp``."""
    mp = hw[0] * hw[1] * scale * scale / 1e6
    if not limit_mp > 0:
        raise CinnError(f"--max-megapixels must be a positive number, got {limit_mp}")
    if mp > limit_mp:
        out = f" (the output is {hw[1] * scale}x{hw[0] * scale})" if scale != 1 else ""
        raise CinnError(f"{path}: {what} is {hw[1]}x{hw[0]} pixels{out} = {mp:.1f} "
                        f"megapixels, above the limit of {limit_mp:g}; pass "
                        f"--max-megapixels {int(np.ceil(mp))} to process it anyway "
                        "(needs more memory)")


def _paeth(raw, prev, bpp=3):
    """PNG filter type 4 of scanlines ``raw`` (k, L) uint8, given the scanline
    before them ``prev`` (L,)."""
    raw16 = raw.astype(np.int16)
    b = np.concatenate([prev[None].astype(np.int16), raw16[:-1]], axis=0)
    a = np.zeros_like(raw16)
    a[:, bpp:] = raw16[:, :-bpp]
    c = np.zeros_like(raw16)
    c[:, bpp:] = b[:, :-bpp]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return (raw16 - pred).astype(np.uint8)


def _chunk(f, kind, data):
    f.write(struct.pack(">I", len(data)) + kind + data)
    f.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png_rows(path, width, height, blocks, level=PNG_LEVEL):
    """Write an 8-bit RGB PNG from ``blocks``: uint8 arrays of scanlines (k, width * 3),
    ``height`` scanlines in all, one block at a time; written to a temporary name
    and renamed, so a failure leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    comp = zlib.compressobj(level)
    prev = np.zeros(width * 3, np.uint8)
    count = 0
    try:
        with open(tmp, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
            _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            for raw in blocks:
                raw = np.asarray(raw, np.uint8).reshape(-1, width * 3)
                lines = np.empty((len(raw), width * 3 + 1), np.uint8)
                lines[:, 0] = 4
                lines[:, 1:] = _paeth(raw, prev)
                data = comp.compress(lines.tobytes())
                if data:
                    _chunk(f, b"IDAT", data)
                prev, count = raw[-1].copy(), count + len(raw)
            if count != height:
                raise ValueError(f"expected {height} scanlines, got {count}")
            _chunk(f, b"IDAT", comp.flush())
            _chunk(f, b"IEND", b"")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class RowGrid:
    """``count`` pictures of one size (H, W, 3) uint8 side by side with ``gap``
    white pixels between them (the layout of ``images.make_grid([row])``), added
    one at a time with ``add`` and written as a PNG by ``close``. Each picture
    waits in a temporary file, not in memory."""

    def __init__(self, path, hw, count, gap=4, background=255):
        self.path, self.h, self.w = Path(path), int(hw[0]), int(hw[1])
        self.count, self.gap, self.background = int(count), int(gap), background
        self.added = 0
        self.file = tempfile.TemporaryFile(prefix="cinn-grid-")

    def add(self, picture):
        picture = np.asarray(picture)
        if picture.shape != (self.h, self.w, 3) or picture.dtype != np.uint8:
            raise ValueError(f"grid pictures must be uint8 ({self.h}, {self.w}, 3), "
                             f"got {picture.dtype} {picture.shape}")
        if self.added >= self.count:
            raise ValueError(f"the grid has room for {self.count} pictures")
        self.file.write(np.ascontiguousarray(picture).tobytes())
        self.added += 1

    def _blocks(self, rows=32):
        self.file.flush()
        fd, line = self.file.fileno(), self.w * 3
        width = self.count * self.w + self.gap * (self.count - 1)
        for y0 in range(0, self.h, rows):
            k = min(rows, self.h - y0)
            block = np.full((k, width, 3), self.background, np.uint8)
            for i in range(self.count):
                data = os.pread(fd, k * line, (i * self.h + y0) * line)
                x = i * (self.w + self.gap)
                block[:, x:x + self.w] = np.frombuffer(data, np.uint8).reshape(k, self.w, 3)
            yield block

    def close(self):
        """Write the PNG; returns its path."""
        try:
            if self.added != self.count:
                raise ValueError(f"the grid got {self.added} of {self.count} pictures")
            width = self.count * self.w + self.gap * (self.count - 1)
            return write_png_rows(self.path, width, self.h, self._blocks())
        finally:
            self.file.close()


class RunningStats:
    """Mean (and, with ``squares``, the per-pixel std of ``uncertainty.std_map``) of
    pictures (H, W, C) added one at a time: two float64 sums, whatever N is."""

    def __init__(self, squares=False):
        self.squares, self.n, self.sum, self.sumsq = squares, 0, None, None

    def add(self, x):
        x = np.asarray(x, np.float64)
        if self.sum is None:
            self.sum = np.zeros_like(x)
            self.sumsq = np.zeros_like(x) if self.squares else None
        self.sum += x
        if self.squares:
            self.sumsq += x * x
        self.n += 1

    def mean(self):
        return self.sum / self.n

    def std_map(self):
        """(H, W) float32: root mean square over the channels of the per-pixel std."""
        mean = self.mean()
        var = np.maximum(self.sumsq / self.n - mean * mean, 0.0)
        return np.sqrt(var.mean(axis=-1)).astype(np.float32)


def write_std_map(args, path, stats):
    """With ``--std-map``: the uncertainty map (``uncertainty.heat_map``) of the
    samples summed in ``stats`` written to ``path`` (path printed); else nothing."""
    if not getattr(args, "std_map", False):
        return None
    path = write_image(path, heat_map(stats.std_map()))
    print(path)
    return path
