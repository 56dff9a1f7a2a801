"""Synthetic flower photos, drawn procedurally, in the real record format.

Real photos cannot ship with the project, yet tests, demos and benchmarks need
shards whose classes a small CNN can learn. The five classes are drawn with
numpy and Pillow (``pipeline/data/flower_drawing.py``) so that each has its
own shape (thin white rays, a dense yellow disc or a puffball, a spiral of
round petals, big petals around a large dark centre, a cup on a stem) while
colours overlap between classes (roses and
tulips share reds, pinks and yellows; daisies, puffballs and white tulips are
white; dandelions and sunflowers are yellow), so mean colour alone does not
give the class away. Position, scale, rotation, tilt, petal count, colours,
background, extra flowers, occluding leaves, lighting and noise all vary.

Images are deterministic: image ``i`` of seed ``s`` is drawn from its own
random generator seeded by ``(s, i)``, so the same call gives the same bytes
on any machine with the same numpy, Pillow and libjpeg.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.data.flower_drawing import (
    DISTRACTOR_COLOURS,
    DRAWERS,
    EXTRA_FLOWER_CHANCE,
    LEAF_GREEN,
    Placement,
    ellipse_outline,
    flat,
    jitter,
    petal_outlines,
    pick,
    shade,
)
from schema import LABELS

JPEG_QUALITY = 90

# Background gradients (top, bottom) and the colours of blurred blobs on them.
BACKGROUNDS = {
    "grass": ((96, 150, 60), (40, 90, 30)),
    "foliage": ((30, 70, 30), (70, 110, 50)),
    "soil": ((120, 96, 70), (70, 50, 34)),
    "sky": ((120, 170, 230), (200, 220, 240)),
    "wall": ((180, 176, 168), (120, 116, 110)),
    "dusk": ((60, 50, 80), (150, 110, 90)),
}
BLOB_COLOURS = ((50, 110, 40), (90, 140, 60), (30, 60, 25), (110, 90, 60), (150, 170, 120), (200, 200, 190))


# --------------------------------------------------------------------------- scene


def _leaf(draw, rng: np.random.Generator, size: int) -> None:
    """A pointed green leaf anywhere in the picture."""
    x, y = rng.uniform(0, size, 2)
    length = size * rng.uniform(0.15, 0.4)
    angle = rng.uniform(0, 2 * np.pi)
    outline = petal_outlines([angle], 0.0, length, length * rng.uniform(0.15, 0.3), pointiness=0.9)[0]
    fill = jitter(rng, pick(rng, (LEAF_GREEN, (40, 90, 30), (90, 140, 50))), amount=12)
    draw.polygon(flat(outline + np.array([x, y])), fill=fill, outline=shade(fill, 0.7))


def draw_background(rng: np.random.Generator, size: int) -> Image.Image:
    """An out-of-focus backdrop: a gradient with soft blobs, sometimes flower-coloured spots.

    It is drawn at a quarter of the size and enlarged: the enlargement is the
    blur, and it costs far less than blurring a full-size picture.
    """
    small = max(8, size // 4)
    top, bottom = BACKGROUNDS[pick(rng, tuple(BACKGROUNDS))]
    top, bottom = np.array(jitter(rng, top, 20)), np.array(jitter(rng, bottom, 20))
    ramp = np.linspace(0.0, 1.0, small)[:, None, None]
    rows = top * (1.0 - ramp) + bottom * ramp
    picture = Image.fromarray(np.repeat(rows, small, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    blobs = int(rng.integers(3, 12))
    palette = np.asarray(BLOB_COLOURS, dtype=np.float64)[rng.integers(0, len(BLOB_COLOURS), blobs)]
    fills = np.clip(palette + rng.normal(0.0, 15.0, palette.shape), 0, 255).astype(np.int64).tolist()
    for fill in map(tuple, fills):
        x, y = rng.uniform(0, small, 2)
        rx, ry = small * rng.uniform(0.05, 0.3, 2)
        draw.polygon(flat(ellipse_outline(x, y, rx, ry, rng.uniform(0, np.pi), 14)), fill=fill)
    if rng.random() < 0.5:
        for _ in range(rng.integers(1, 5)):
            x, y = rng.uniform(0, small, 2)
            r = small * rng.uniform(0.03, 0.08)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=jitter(rng, pick(rng, DISTRACTOR_COLOURS), 20))
    picture = picture.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.5))).resize((size, size), Image.BILINEAR)
    draw = ImageDraw.Draw(picture)
    for _ in range(rng.integers(0, 4)):
        _leaf(draw, rng, size)
    return picture


def _finish(picture: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Camera effects: exposure, white balance, occasional defocus, sensor noise."""
    if rng.random() < 0.25:  # out of focus: halve and enlarge again (cheaper than a blur filter)
        size = picture.size
        picture = picture.reduce(2).resize(size, Image.BILINEAR)
    pixels = np.asarray(picture, dtype=np.float32)
    gain = rng.uniform(0.7, 1.25) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    # Uniform noise from random bytes: several times cheaper than Gaussian noise, looks alike.
    noise = np.frombuffer(rng.bytes(pixels.size), dtype=np.uint8).reshape(pixels.shape).astype(np.float32)
    pixels = pixels * gain + (noise - 127.5) * np.float32(rng.uniform(2.0, 10.0) / 73.9)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def draw_flower_picture(class_id: int, rng: np.random.Generator, size: int = 192) -> Image.Image:
    """One size x size RGB picture of flowers of class ``class_id``."""
    picture = draw_background(rng, size)
    draw = ImageDraw.Draw(picture)
    drawer = DRAWERS[class_id]
    side_view = LABELS[class_id] == "tulips"
    flowers = 1
    while flowers < 3 and rng.random() < EXTRA_FLOWER_CHANCE[class_id]:
        flowers += 1
    # Extra flowers are smaller and drawn first, so the main one is in front.
    for extra in range(flowers - 1, -1, -1):
        scale = 1.0 if extra == 0 else rng.uniform(0.4, 0.7)
        radius = size * rng.uniform(0.22, 0.42) * scale
        spread = 0.18 if extra == 0 else 0.4
        x, y = size * (0.5 + rng.uniform(-spread, spread, 2))
        # Tulips are seen from the side, upright; the others face the camera at any angle.
        tilt = 1.0 if side_view else rng.uniform(0.55, 1.0)
        angle = rng.normal(0, 0.3) if side_view else rng.uniform(0, 2 * np.pi)
        drawer(draw, Placement(x, y, radius, angle, tilt), rng)
    if rng.random() < 0.2:
        _leaf(draw, rng, size)  # a leaf in front of the flower: partial occlusion
    return _finish(picture, rng)


# --------------------------------------------------------------------------- records and shards


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of image ``index``: independent of every other image."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1, index))))


def synthetic_class_ids(images: int, seed: int) -> np.ndarray:
    """Balanced classes (counts differ by at most one) in a seeded random order."""
    order_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
    return order_rng.permutation(np.arange(images) % len(LABELS))


def synthetic_jpeg(seed: int, index: int, class_id: int, size: int = 192) -> bytes:
    """JPEG bytes of synthetic image ``index`` of ``seed``; same arguments, same bytes."""
    picture = draw_flower_picture(class_id, image_rng(seed, index), size)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def synthetic_records(images: int, seed: int, size: int = 192):
    """Yield serialized records of ``images`` synthetic flowers, in order."""
    from pipeline.data.shards import example_bytes  # TensorFlow is only needed here

    for index, class_id in enumerate(synthetic_class_ids(images, seed).tolist()):
        yield example_bytes(synthetic_jpeg(seed, index, class_id, size), class_id, size, size)


def write_synthetic_shards(out_dir: str, images: int, shards: int, seed: int, size: int = 192) -> list[str]:
    """Write ``images`` synthetic flower records into codelab shards in ``out_dir``.

    Returns the shard paths. Same arguments give byte-identical files. It runs
    in one process: drawing in two worker processes was measured slower on a
    2-core machine (process start-up and passing JPEGs back cost more than
    the drawing they share).
    """
    from pipeline.data.shards import DataError, write_shards

    if images < 1:
        raise DataError(f"images must be at least 1, got {images}")
    if size < 16:
        raise DataError(f"size must be at least 16 pixels, got {size}")
    return write_shards(synthetic_records(images, seed, size), images, out_dir, shards)
