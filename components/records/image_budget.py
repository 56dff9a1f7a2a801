"""The pixel budget: an image's width and height, read from its header before
anything decodes it.

A few kilobytes of PNG (or JPEG) can declare 16000 x 16000 pixels; decoding it
takes 768 MB of RGB bytes and four times that once converted to float. Every
place that decodes an image (the record screening, ``data convert``, ``data
inspect``, ``predict`` and the exported model's serving signature) therefore
first reads the dimensions from the header bytes, which costs microseconds,
and refuses an image whose ``width x height`` exceeds ``max_pixels``
(``data.max_image_pixels`` in the configuration; the real photos are far below
the default).

Two versions of the same reading:

- :func:`read_dimensions` in pure Python, for the code paths that see one image
  at a time (screening, convert, inspect, predict);
- :func:`graph_dimensions` in TensorFlow ops, for the transform graph, so the
  check travels inside the exported model to TF Serving and Vertex AI.

Formats are recognised by the same leading bytes TensorFlow's
``decode_image`` uses (JPEG ``FF D8 FF``, PNG ``89 'PN'``, GIF ``'GIF'``, BMP
``'BM'``), so what one calls a PNG the other does too.
"""

from __future__ import annotations

import io
import struct
from typing import NamedTuple

import tensorflow as tf

from components.records.pixel_budget import DEFAULT_MAX_IMAGE_PIXELS, SETTING  # noqa: F401 - readers name it here too

_JPEG, _PNG, _GIF, _BMP = b"\xff\xd8\xff", b"\x89PN", b"GIF", b"BM"
# Start-of-frame markers (baseline, progressive, lossless, arithmetic...);
# C4 (DHT), C8 (JPG) and CC (DAC) share the range but carry no size.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI.
_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8), 0xD8])
# How many header bytes the graph version reads: PNG's IHDR ends at 24, BMP's
# height at 26.
_HEADER_BYTES = 26


class ImageHeaderError(ValueError):
    """A JPEG, PNG, GIF or BMP whose header does not give its size (truncated or damaged)."""


class Dimensions(NamedTuple):
    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from the first start-of-frame segment, walking the
    marker segments from the start as libjpeg does (no entropy-coded data
    comes before the frame header)."""
    index, end = 2, len(data)
    while index < end:
        if data[index] != 0xFF:
            # libjpeg skips stray bytes between segments (with a warning).
            index += 1
            continue
        while index < end and data[index] == 0xFF:  # fill bytes
            index += 1
        if index >= end:
            break
        marker = data[index]
        index += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            break
        if index + 2 > end:
            break
        (length,) = struct.unpack_from(">H", data, index)
        if marker in _SOF_MARKERS:
            if index + 7 > end:
                break
            height, width = struct.unpack_from(">HH", data, index + 3)
            return width, height
        if length < 2:
            break
        index += length
    raise ImageHeaderError("JPEG header is damaged: no frame header (SOF) gives the image's size")


def read_dimensions(data: bytes) -> Dimensions | None:
    """The format and (width, height) declared by the header of ``data``,
    without decoding it; None for a format other than JPEG, PNG, GIF or BMP.

    Raises ImageHeaderError when the bytes start like one of those formats
    but the header is too short or damaged to give a size: such a file does
    not decode either, and it is not decoded on the chance that it might.
    """
    if data.startswith(_JPEG):
        return Dimensions("JPEG", *_jpeg_dimensions(data))
    if data.startswith(_PNG):
        # The 8-byte signature, then the IHDR chunk: length, type, width, height.
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageHeaderError("PNG header is damaged: the file does not start with an IHDR chunk")
        width, height = struct.unpack_from(">II", data, 16)
        return Dimensions("PNG", width, height)
    if data.startswith(_GIF):
        # 'GIF87a' or 'GIF89a', then the logical screen: width and height,
        # little-endian; every frame is drawn on (and clipped to) that screen.
        if len(data) < 10:
            raise ImageHeaderError("GIF header is damaged: shorter than its logical screen descriptor")
        width, height = struct.unpack_from("<HH", data, 6)
        return Dimensions("GIF", width, height)
    if data.startswith(_BMP):
        if len(data) < 18:
            raise ImageHeaderError("BMP header is damaged: shorter than its file and DIB headers")
        (dib_size,) = struct.unpack_from("<I", data, 14)
        if dib_size == 12 and len(data) >= 22:  # the old OS/2 BITMAPCOREHEADER: 16-bit sizes
            width, height = struct.unpack_from("<HH", data, 18)
        elif len(data) >= 26:
            # BITMAPINFOHEADER and later: signed 32-bit; a negative height
            # means rows are stored top-down.
            width, height = struct.unpack_from("<ii", data, 18)
        else:
            raise ImageHeaderError("BMP header is damaged: shorter than its DIB header")
        return Dimensions("BMP", abs(width), abs(height))
    return None


def budget_message(width: int, height: int, max_pixels: int) -> str:
    """The one sentence every path uses for an image over the budget."""
    return (
        f"image is {width}x{height} pixels ({width * height:,}), over the budget of "
        f"{max_pixels:,} pixels ({SETTING}); it is not decoded"
    )


def check_budget(width: int, height: int, max_pixels: int) -> str | None:
    """``budget_message`` when ``width x height`` exceeds ``max_pixels``, else None."""
    return budget_message(width, height, max_pixels) if width * height > max_pixels else None


def header_problem(data: bytes, max_pixels: int) -> str | None:
    """Why ``data`` must not be decoded, read from its header alone: over the
    pixel budget, or a damaged header; None when it may go on to a decoder
    (within the budget, or a format the decoder will judge itself)."""
    try:
        dimensions = read_dimensions(data)
    except ImageHeaderError as error:
        return f"image does not decode: {error}"
    if dimensions is None:
        return None
    return check_budget(dimensions.width, dimensions.height, max_pixels)


# --------------------------------------------------------------------------- the TensorFlow graph version


def _raw_pair(padded: tf.Tensor, start: int, dtype: tf.DType, little_endian: bool) -> tf.Tensor:
    """The two integers of type ``dtype`` at byte ``start`` of every padded
    header ([batch] strings) -> [batch, 2] int64: one substr, one decode_raw."""
    width = dtype.size * 2
    return tf.cast(
        tf.io.decode_raw(
            tf.strings.substr(padded, start, width), dtype, little_endian=little_endian, fixed_length=width
        ),
        tf.int64,
    )


def fixed_header_dimensions(encoded: tf.Tensor) -> tf.Tensor:
    """[batch] encoded images -> [batch, 2] int64 (height, width) of the PNGs,
    GIFs and BMPs, read from fixed header bytes for the whole batch at once;
    0 x 0 for JPEGs (see :func:`jpeg_dimensions`) and for formats
    ``decode_image`` does not know (the decoder refuses those itself).

    PNG: big-endian unsigned 32-bit width and height at byte 16 (the IHDR
    chunk). GIF: little-endian 16-bit width and height at byte 6 (the logical
    screen). BMP: little-endian signed 32-bit width and height at byte 18, as
    TensorFlow's decoder reads them; a negative height (rows top-down) counts
    as its absolute value.

    Each pair of fields is one substr and one decode_raw for the whole batch,
    not a chain of byte-by-byte arithmetic: the Trainer's tf.data pipeline
    runs this graph for every batch.
    """
    # The first _HEADER_BYTES bytes of every image, zero-padded when shorter,
    # so that every field can be read from every image.
    head = tf.strings.substr(encoded, 0, _HEADER_BYTES)
    padded = tf.strings.substr(tf.strings.join([head, tf.constant(b"\0" * _HEADER_BYTES)]), 0, _HEADER_BYTES)
    # decode_raw has no uint32: a PNG size of 2**31 or more reads negative.
    png = _raw_pair(padded, 16, tf.int32, little_endian=False)
    png = tf.where(png < 0, png + 2**32, png)
    gif = _raw_pair(padded, 6, tf.uint16, little_endian=True)
    bmp = tf.abs(_raw_pair(padded, 18, tf.int32, little_endian=True))
    prefix = tf.strings.substr(encoded, 0, 3)
    zeros = tf.zeros_like(png)
    width_height = tf.where(
        tf.equal(prefix, _PNG)[:, None],
        png,
        tf.where(
            tf.equal(prefix, _GIF)[:, None],
            gif,
            tf.where(tf.equal(tf.strings.substr(encoded, 0, 2), _BMP)[:, None], bmp, zeros),
        ),
    )
    return tf.reverse(width_height, axis=[1])  # (height, width)


def is_jpeg(one: tf.Tensor) -> tf.Tensor:
    """Whether one encoded image starts as a JPEG does (a scalar bool)."""
    return tf.strings.substr(one, 0, 3) == _JPEG


def jpeg_dimensions(one: tf.Tensor, otherwise: tf.Tensor) -> tf.Tensor:
    """One encoded image -> [2] int64 (height, width): a JPEG's from
    ``tf.io.extract_jpeg_shape`` (libjpeg reads the header and stops), any
    other image's ``otherwise``. Per image, for use inside ``tf.map_fn``; no
    op here is stateful, so map_fn still runs its iterations in parallel."""
    return tf.cond(
        is_jpeg(one),
        # Only JPEGs reach extract_jpeg_shape, which fails on anything else.
        lambda: tf.io.extract_jpeg_shape(one, output_type=tf.int64)[:2],
        lambda: otherwise,
    )


def graph_dimensions(encoded: tf.Tensor) -> tf.Tensor:
    """A batch of encoded images ([batch] strings) -> [batch, 2] int64 (height, width),
    0 x 0 for a format ``decode_image`` does not know.

    ``preprocessing.decode_images`` does the same inside its own map_fn, so
    that a batch is walked once; this is the stand-alone version.
    """
    encoded = tf.reshape(encoded, [-1])
    return tf.map_fn(
        lambda args: jpeg_dimensions(*args),
        (encoded, fixed_header_dimensions(encoded)),
        fn_output_signature=tf.TensorSpec([2], tf.int64),
        parallel_iterations=8,
    )


def assert_within_budget(dimensions: tf.Tensor, max_pixels: int) -> tf.Operation:
    """One check for a whole batch ([batch, 2] (height, width)): fails with
    InvalidArgumentError naming the largest image's size and the budget.

    One Assert op on the batch, outside any ``map_fn``: a stateful op inside
    the per-image function would make map_fn run its iterations one by one.
    """
    # A row of zeros at the end keeps argmax and the indexing valid for an empty batch.
    dimensions = tf.concat([dimensions, tf.zeros([1, 2], tf.int64)], axis=0)
    pixels = dimensions[:, 0] * dimensions[:, 1]
    largest = tf.argmax(pixels)
    message = tf.strings.format(
        "image {} of the batch is {}x{} pixels ({}), over the budget of {} pixels (" + SETTING + "); it is not decoded",
        (largest, dimensions[largest, 1], dimensions[largest, 0], pixels[largest], max_pixels),
    )
    return tf.debugging.Assert(tf.reduce_all(pixels <= max_pixels), [message], summarize=1)


# --------------------------------------------------------------------------- Pillow


class ImageBudgetError(ValueError):
    """An image refused from its header alone; the message is the reason shown to the user."""


def open_image(data: bytes, max_pixels: int):
    """``PIL.Image.open`` of ``data`` (which reads the header only) once its
    size is known to be within ``max_pixels``; the caller loads and closes it.

    JPEG, PNG, GIF and BMP are measured by :func:`read_dimensions` first, so
    Pillow's message never differs from TensorFlow's paths; other formats
    Pillow reads (TIFF, WebP...) are measured from the opened header.
    Pillow's own decompression-bomb limit is set to the same budget, so it
    neither refuses an image the budget allows nor allows one above it.
    Raises ImageBudgetError; Pillow's own errors (an unknown or damaged
    file) pass through.
    """
    import warnings

    from PIL import Image

    problem = header_problem(data, max_pixels)
    if problem:
        raise ImageBudgetError(problem)
    # Pillow checks its limit while opening: set it for this call only, so the
    # process's other users of Pillow (a chart, a thumbnail) keep their own.
    pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
    with warnings.catch_warnings():
        # Pillow warns between one and two budgets; the check below refuses those.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            picture = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            raise ImageBudgetError(f"image is over the budget of {max_pixels:,} pixels ({SETTING}): {error}") from None
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
    problem = check_budget(picture.width, picture.height, max_pixels)
    if problem:
        picture.close()
        raise ImageBudgetError(problem)
    return picture
