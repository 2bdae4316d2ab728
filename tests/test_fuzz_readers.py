"""Fuzzing the readers of user files: ``read_image`` (``cinn/apps/common/images.py``)
and the mask reader ``read_mask`` (``cinn/apps/inpainting/masks.py``).

For random bytes (bare, or behind the magic number of a format), for valid PNG,
JPEG, TIFF, WebP and BMP files truncated or mutated at random (most often in the
header), and for valid PNGs of extreme shapes:

* never a traceback: the reader returns, or raises ``CinnError`` (one line), and
  it neither warns nor logs (a command prints its one line and nothing else);
* never a hang: every case has a time budget (hypothesis' ``deadline``, generous:
  a hang, not a slow machine, is what it catches);
* never an output that silently differs from the input's known pixels: whatever
  comes back is uint8 RGB (H, W, 3) (a mask: bool (H, W)); a PNG, whose every
  chunk has a checksum, either fails or gives its exact pixels, and a valid PNG of
  any shape round-trips exactly (8 and 16 bits, grey, RGB, RGBA).

``CINN_FUZZ_EXAMPLES=2000`` runs each property with that many cases (the default
run, about 300 cases in all, takes some seconds).
"""
import contextlib
import io
import logging
import os
import tempfile
import warnings
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from cinn.apps.common.images import IMAGE_SUFFIXES, read_image
from cinn.apps.inpainting.masks import read_mask
from cinn.errors import CinnError

EXAMPLES = int(os.environ.get("CINN_FUZZ_EXAMPLES", "0"))


def fuzz(default):
    """Settings of one property: ``default`` cases (``CINN_FUZZ_EXAMPLES`` overrides),
    10 s budget per case, reproducible unless a longer run is asked for."""
    return settings(max_examples=EXAMPLES or default, deadline=timedelta(seconds=10),
                    derandomize=not EXAMPLES, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="cinn-fuzz-") as name:
        yield Path(name)


def file_with(folder, data, suffix):
    path = folder / f"case{suffix}"
    path.write_bytes(bytes(data))
    return path


class Printed(logging.Handler):
    """What the ``logging`` of a library would print (Pillow logs what it cannot
    decode): warnings, errors and worse."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


@contextlib.contextmanager
def nothing_printed():
    """Fails when the block warns or logs: a command prints its one line, nothing else."""
    handler = Printed()
    logging.getLogger().addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:   # also when the block raises
            logging.getLogger().removeHandler(handler)
            assert not caught and not handler.records, (
                [str(w.message) for w in caught], handler.records)


def check_image(path, min_size=1):
    """``read_image(path)``: ``None`` after a ``CinnError`` (one line), else the image,
    checked to be uint8 RGB; no warning or log line either way."""
    try:
        with nothing_printed():
            img = read_image(path, min_size=min_size)
    except CinnError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return None
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8
    assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= min_size
    assert img.flags.c_contiguous
    return img


def check_mask(path, shape=None):
    try:
        with nothing_printed():
            mask = read_mask(path, shape)
    except CinnError as err:
        assert "\n" not in str(err)
        return None
    assert mask.dtype == bool and mask.ndim == 2
    assert shape is None or mask.shape == tuple(shape)
    return mask


# -- files ----------------------------------------------------------------------------------
MAGIC = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb", b"II*\x00",
         b"MM\x00*", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a", b"P6\n",
         b"\x00\x00\x00\x0cjP  "]
ENCODINGS = {".png": [], ".jpg": [cv2.IMWRITE_JPEG_QUALITY, 90],
             ".tif": [], ".webp": [cv2.IMWRITE_WEBP_QUALITY, 101], ".bmp": []}


@st.composite
def pictures(draw, max_side=24):
    """A small random picture as OpenCV writes it: (pixels, suffix) with grey, BGR or
    BGRA channels, 8 or 16 bits where the format has them."""
    suffix = draw(st.sampled_from(sorted(ENCODINGS)))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    channels = draw(st.sampled_from([1, 3, 4] if suffix in (".png", ".tif", ".webp")
                                    else [1, 3]))
    deep = suffix in (".png", ".tif") and draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    top = 65535 if deep else 255
    pixels = rng.integers(0, top + 1, (h, w, channels)).astype(np.uint16 if deep else np.uint8)
    return (pixels[..., 0] if channels == 1 else pixels), suffix


def encode(pixels, suffix):
    ok, buf = cv2.imencode(suffix, pixels, ENCODINGS[suffix])
    assert ok
    return bytearray(buf.tobytes())


@st.composite
def mutations(draw, data):
    """``data`` truncated, with bytes overwritten (mostly in its first 64: the
    header), inserted or deleted."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["set", "set", "set", "insert", "delete", "truncate"]))
        if not data:
            break
        head = draw(st.booleans())
        pos = draw(st.integers(0, min(len(data), 64) - 1 if head else len(data) - 1))
        if kind == "set":
            data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, data[pos] ^ 1,
                                              draw(st.integers(0, 255))]))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return data


# -- read_image -------------------------------------------------------------------------------
@fuzz(100)
@given(magic=st.sampled_from(MAGIC), rest=st.binary(max_size=2048),
       suffix=st.sampled_from(sorted(IMAGE_SUFFIXES)))
def test_random_bytes_are_an_error_or_an_image(folder, magic, rest, suffix):
    check_image(file_with(folder, magic + rest, suffix))


@fuzz(100)
@given(picture=pictures(), data=st.data())
def test_truncated_and_mutated_files(folder, picture, data):
    pixels, suffix = picture
    original = encode(pixels, suffix)
    intact = read_image(file_with(folder, original, suffix), min_size=1)
    mutated = data.draw(mutations(original))
    img = check_image(file_with(folder, mutated, suffix))
    if img is not None and suffix == ".png":   # checksums: the exact pixels or an error
        assert img.shape == intact.shape and np.array_equal(img, intact)


def expected_rgb(pixels):
    """What ``read_image`` must give for OpenCV-order ``pixels`` (grey, BGR or BGRA
    with alpha 0 or full): 16 bits rounded to 8, transparent pixels white."""
    p = pixels.astype(np.int64)
    if pixels.dtype == np.uint16:
        p = (2 * p + 257) // 514          # round(v * 255 / 65535), exactly
    if p.ndim == 2:
        return np.repeat(p[..., None], 3, axis=2).astype(np.uint8)
    rgb = p[..., 2::-1]
    if pixels.shape[2] == 4:
        rgb = np.where(pixels[..., 3:] > 0, rgb, 255)
    return rgb.astype(np.uint8)


SIDES = [1, 2, 3, 7, 64, 255, 256, 1031, 4099]
#: the most pixels of a round-trip case (shapes as extreme as 1 x 4099, not as large)
MAX_PIXELS = 2 ** 18


@fuzz(40)
@given(h=st.sampled_from(SIDES), w=st.sampled_from(SIDES), channels=st.sampled_from([1, 3, 4]),
       deep=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_valid_png_of_any_shape_round_trips_exactly(folder, h, w, channels, deep, seed):
    assume(h * w <= MAX_PIXELS)
    rng = np.random.default_rng(seed)
    top = 65535 if deep else 255
    shape = (h, w) if channels == 1 else (h, w, channels)
    pixels = rng.integers(0, top + 1, shape).astype(np.uint16 if deep else np.uint8)
    if channels == 4:   # opaque or fully transparent: the composite is exact
        pixels[..., 3] = np.where(rng.random((h, w)) < 0.2, 0, top)
    img = check_image(file_with(folder, encode(pixels, ".png"), ".png"))
    assert img is not None
    np.testing.assert_array_equal(img, expected_rgb(pixels))


def test_header_beyond_the_decoders_limits_is_an_error(folder):
    """A BMP whose header claims 8 million columns: OpenCV raises rather than
    returning nothing (found by a 2000-case run of the property above)."""
    data = encode(np.full((1, 1), 217, np.uint8), ".bmp")
    data[18:22] = (0x7F0001).to_bytes(4, "little")               # biWidth
    assert check_image(file_with(folder, data, ".bmp")) is None


def test_corrupt_metadata_warns_nothing(folder):
    """TIFFs whose pixels OpenCV still decodes but whose tags Pillow, reading the EXIF
    orientation, finds cut short: the image comes back and nothing is printed beside
    it (Pillow's "Truncated File Read" warning and "More samples per pixel than can
    be decoded" log line, found by a 2000-case run)."""
    from PIL import Image

    data = encode(np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8), ".tif")
    warned = 0
    for pos in range(len(data)):
        mutated = bytearray(data)
        mutated[pos] = 0x7F
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with Image.open(io.BytesIO(bytes(mutated))) as im:
                    im.getexif()
            except Exception:  # noqa: BLE001 - only the warnings matter here
                pass
        path = file_with(folder, mutated, ".tif")
        if caught and check_image(path) is not None:
            warned += 1
    assert warned                      # such files exist, and read without a warning


def test_too_small_is_an_error_naming_the_size(folder):
    path = file_with(folder, encode(np.zeros((1, 9), np.uint8), ".png"), ".png")
    with pytest.raises(CinnError, match="9x1 pixels"):
        read_image(path, min_size=2)


# -- the mask reader ----------------------------------------------------------------------------
@fuzz(60)
@given(magic=st.sampled_from(MAGIC), rest=st.binary(max_size=1024), data=st.data())
def test_mask_reader_random_and_mutated_bytes(folder, magic, rest, data):
    check_mask(file_with(folder, magic + rest, ".png"))
    h, w = data.draw(st.integers(1, 16)), data.draw(st.integers(1, 16))
    mask = (np.random.default_rng(h * 31 + w).random((h, w)) < 0.5).astype(np.uint8) * 255
    original = encode(mask, ".png")
    got = check_mask(file_with(folder, data.draw(mutations(original)), ".png"), (h, w))
    if got is not None:                   # a PNG: the exact mask or an error
        np.testing.assert_array_equal(got, mask > 127)


@fuzz(40)
@given(h=st.sampled_from(SIDES[:6]), w=st.sampled_from(SIDES[:6]),
       channels=st.sampled_from([1, 3, 4]), seed=st.integers(0, 2 ** 32 - 1),
       other=st.booleans())
def test_mask_of_any_shape_round_trips_and_checks_its_size(folder, h, w, channels, seed,
                                                           other):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    pixels = rng.integers(0, 256, shape).astype(np.uint8)
    if channels == 4:
        pixels[..., 3] = np.where(rng.random((h, w)) < 0.3, 0, 255)   # transparent: known
    path = file_with(folder, encode(pixels, ".png"), ".png")
    want = (h + 1, w) if other else (h, w)
    mask = check_mask(path, want)
    if other:
        assert mask is None               # another size: an error, never a resize
        return
    rgb = pixels if channels == 1 else pixels[..., :3]
    expected = (rgb if channels == 1 else rgb.max(axis=2)) > 127
    if channels == 4:
        expected &= pixels[..., 3] > 0
    np.testing.assert_array_equal(mask, expected)
