"""The five flowers of the synthetic data set, drawn with Pillow.

Each class has its own shape (thin white rays; a dense yellow disc or a
puffball; a spiral of round petals; big petals around a large dark centre; a
cup on a stem) while colours overlap between classes on purpose. The scene
around a flower (background, leaves, lighting, noise) and the data set are in
:mod:`pipeline.data.synth`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import ImageDraw

from schema import LABELS

# Base colours; every use is jittered. Shared entries make colour overlap on purpose.
WHITE = (246, 244, 238)
YELLOW = (246, 206, 28)
GOLD = (242, 172, 20)
ORANGE = (240, 122, 40)
RED = (200, 24, 42)
DEEP_RED = (140, 10, 30)
PINK = (236, 132, 170)
LIGHT_PINK = (246, 196, 214)
MAGENTA = (196, 40, 120)
PURPLE = (120, 60, 150)
LAVENDER = (196, 176, 232)
BROWN = (88, 52, 22)
DARK_BROWN = (52, 30, 14)
LEAF_GREEN = (56, 120, 40)
STEM_GREEN = (70, 130, 50)

# Colours of the small flowers and blobs in the background that are not the class.
DISTRACTOR_COLOURS = (WHITE, YELLOW, RED, PINK, PURPLE, ORANGE)


# --------------------------------------------------------------------------- geometry


class Placement:
    """Where a flower sits: maps the flower's own unit coordinates to pixels.

    A flower is drawn in coordinates where its radius is 1 and its centre is
    (0, 0); the placement rotates it, squashes it vertically (a flower seen at
    an angle looks like an ellipse), scales it and moves it into the picture.
    """

    def __init__(self, x: float, y: float, radius: float, angle: float, tilt: float = 1.0):
        self.x, self.y, self.radius, self.tilt = x, y, radius, tilt
        self.cos, self.sin = math.cos(angle), math.sin(angle)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map an array of local (x, y) points, shape (..., 2), to pixel positions."""
        local_x = points[..., 0]
        local_y = points[..., 1] * self.tilt
        pixel_x = self.x + self.radius * (self.cos * local_x - self.sin * local_y)
        pixel_y = self.y + self.radius * (self.sin * local_x + self.cos * local_y)
        return np.stack([pixel_x, pixel_y], axis=-1)


def petal_outlines(angles, base, tip, half_width, pointiness=0.5, points=12) -> np.ndarray:
    """Outlines of petals radiating from the origin, shape (petals, 2 * points, 2).

    Each petal runs from radius ``base`` to radius ``tip`` along its angle and
    is widest in the middle; ``pointiness`` 0 gives an ellipse, 1 a sharp tip,
    a negative value a blunt, rounded tip (rose petals).
    ``base``, ``tip`` and ``half_width`` may be arrays with one value per petal.
    """
    angles = np.asarray(angles, dtype=np.float64)[:, None]
    base = np.reshape(base, (-1, 1))
    tip = np.reshape(tip, (-1, 1))
    half_width = np.reshape(half_width, (-1, 1))
    along, width = _petal_profile(pointiness, points)
    radial = base + (tip - base) * along
    across = half_width * width
    cos, sin = np.cos(angles), np.sin(angles)
    return np.stack([cos * radial - sin * across, sin * radial + cos * across], axis=-1)


@functools.lru_cache(maxsize=64)
def _petal_profile(pointiness: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The unit petal outline: position along the petal (0 base, 1 tip) and signed width."""
    t = np.linspace(0.0, np.pi, points)
    along = (1.0 - np.cos(t)) / 2.0
    width = np.sin(t) * (1.0 - pointiness * along**2)
    return np.concatenate([along, along[::-1]]), np.concatenate([width, -width[::-1]])


@functools.lru_cache(maxsize=16)
def _unit_circle(points: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    return np.cos(t), np.sin(t)


def ellipse_outline(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, points: int = 20) -> np.ndarray:
    """Outline of an ellipse as a (points, 2) array."""
    cos_t, sin_t = _unit_circle(points)
    x, y = rx * cos_t, ry * sin_t
    cos, sin = math.cos(angle), math.sin(angle)
    return np.stack([cx + cos * x - sin * y, cy + sin * x + cos * y], axis=-1)


def flat(points: np.ndarray) -> list[float]:
    """Pillow takes polygons as a flat [x0, y0, x1, y1, ...] list."""
    return points.reshape(-1).tolist()


# --------------------------------------------------------------------------- colour


def jitter(rng: np.random.Generator, colour, amount: float = 18.0, brightness: float = 0.12) -> tuple[int, int, int]:
    """A colour near ``colour``: per-channel noise plus an overall brightness change."""
    scale = 1.0 + rng.uniform(-brightness, brightness)
    value = np.asarray(colour, dtype=np.float64) * scale + rng.normal(0.0, amount, 3)
    return tuple(int(c) for c in np.clip(value, 0, 255))


def jitter_many(rng: np.random.Generator, colour, count: int, amount: float = 8.0, brightness: float = 0.06) -> list:
    """``count`` colours near ``colour`` in one vectorised draw (one per petal)."""
    scale = 1.0 + rng.uniform(-brightness, brightness, (count, 1))
    values = np.asarray(colour, dtype=np.float64) * scale + rng.normal(0.0, amount, (count, 3))
    return [tuple(row) for row in np.clip(values, 0, 255).astype(np.int64).tolist()]


def shade(colour, factor: float) -> tuple[int, int, int]:
    """Darken (factor < 1) or lighten (factor > 1) a colour."""
    return tuple(int(min(255, max(0, c * factor))) for c in colour)


def pick(rng: np.random.Generator, options, weights=None):
    """One of ``options``, optionally weighted."""
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    return options[rng.choice(len(options), p=weights)]


# --------------------------------------------------------------------------- the five classes


def draw_daisy(draw: ImageDraw.ImageDraw, where: Placement, rng: np.random.Generator) -> None:
    """Many thin white (sometimes pink or lilac) rays around a small yellow centre."""
    petal_colour = pick(rng, (WHITE, LIGHT_PINK, LAVENDER), (0.75, 0.15, 0.10))
    centre_radius = rng.uniform(0.15, 0.27)
    for layer in range(rng.integers(1, 3)):
        count = int(rng.integers(16, 34))
        angles = np.linspace(0, 2 * np.pi, count, endpoint=False) + rng.uniform(0, np.pi) + rng.normal(0, 0.04, count)
        tips = rng.uniform(0.85, 1.0, count) * (1.0 - 0.12 * layer)
        widths = rng.uniform(0.06, 0.10, count)
        fills = jitter_many(rng, shade(petal_colour, 0.9 if layer == 0 else 1.0), count, amount=6, brightness=0.05)
        outlines = where.apply(petal_outlines(angles, centre_radius * 0.8, tips, widths, pointiness=0.2))
        for outline, fill in zip(outlines, fills, strict=False):
            draw.polygon(flat(outline), fill=fill, outline=shade(fill, 0.8))
    centre = jitter(rng, pick(rng, (YELLOW, GOLD)), amount=12)
    draw.polygon(flat(where.apply(ellipse_outline(0, 0, centre_radius, centre_radius))), fill=centre)
    _speckle(draw, where, rng, centre_radius * 0.9, shade(centre, 0.75), 40)


def draw_dandelion(draw: ImageDraw.ImageDraw, where: Placement, rng: np.random.Generator) -> None:
    """Either a dense disc of many short yellow rays or a white seed puffball."""
    if rng.random() < 0.3:
        _draw_puffball(draw, where, rng)
        return
    colour = pick(rng, (YELLOW, GOLD, (250, 226, 60)))
    for layer, reach in enumerate((1.0, 0.78, 0.55, 0.33)):
        count = int(rng.integers(34, 60) * (1.0 - 0.18 * layer))
        angles = rng.uniform(0, 2 * np.pi, count)
        tips = reach * rng.uniform(0.85, 1.05, count)
        widths = rng.uniform(0.035, 0.06, count)
        outlines = where.apply(petal_outlines(angles, 0.05, tips, widths, pointiness=0.0, points=6))
        fills = jitter_many(rng, shade(colour, 0.85 + 0.08 * layer), count, amount=10)
        for outline, fill in zip(outlines, fills, strict=False):
            draw.polygon(flat(outline), fill=fill)
    _speckle(draw, where, rng, 0.3, shade(colour, 0.7), 30)


def _draw_puffball(draw: ImageDraw.ImageDraw, where: Placement, rng: np.random.Generator) -> None:
    """A dandelion gone to seed: fine white threads ending in small tufts."""
    count = int(rng.integers(70, 130))
    angles = rng.uniform(0, 2 * np.pi, count)
    reach = rng.uniform(0.75, 1.0, count)
    starts = where.apply(np.stack([0.12 * np.cos(angles), 0.12 * np.sin(angles)], axis=-1))
    ends = where.apply(np.stack([reach * np.cos(angles), reach * np.sin(angles)], axis=-1))
    thread = jitter(rng, (225, 225, 220), amount=10)
    tuft = jitter(rng, WHITE, amount=6)
    tuft_size = max(1.0, where.radius * 0.035)
    for (x0, y0), (x1, y1) in zip(starts.tolist(), ends.tolist(), strict=False):
        draw.line((x0, y0, x1, y1), fill=thread, width=1)
        draw.ellipse((x1 - tuft_size, y1 - tuft_size, x1 + tuft_size, y1 + tuft_size), fill=tuft)
    draw.polygon(flat(where.apply(ellipse_outline(0, 0, 0.13, 0.13))), fill=jitter(rng, (150, 130, 80)))


def draw_rose(draw: ImageDraw.ImageDraw, where: Placement, rng: np.random.Generator) -> None:
    """Rings of round, overlapping petals getting darker towards a spiral centre."""
    colour = pick(rng, (RED, DEEP_RED, PINK, LIGHT_PINK, YELLOW, WHITE, ORANGE), (0.3, 0.12, 0.2, 0.1, 0.1, 0.08, 0.1))
    rings = int(rng.integers(3, 5))
    for ring in range(rings):
        reach = 1.0 - ring * (0.75 / rings)
        count = int(rng.integers(5, 8))
        angles = np.linspace(0, 2 * np.pi, count, endpoint=False) + rng.uniform(0, 2 * np.pi)
        fills = jitter_many(rng, shade(colour, 1.0 - 0.13 * ring), count)
        outlines = petal_outlines(angles, reach * 0.15, reach, reach * rng.uniform(0.42, 0.55), pointiness=-0.3)
        for outline, fill in zip(where.apply(outlines), fills, strict=False):
            draw.polygon(flat(outline), fill=fill, outline=shade(fill, 0.7))
    turns = rng.uniform(2.0, 3.2)
    t = np.linspace(0, turns * 2 * np.pi, 60)
    radius = 0.25 * t / t[-1]
    spiral = where.apply(np.stack([radius * np.cos(t), radius * np.sin(t)], axis=-1))
    draw.line(flat(spiral), fill=shade(colour, 0.45), width=max(1, int(where.radius * 0.05)))


def draw_sunflower(draw: ImageDraw.ImageDraw, where: Placement, rng: np.random.Generator) -> None:
    """Broad yellow petals around a large dark seed disc."""
    petal_colour = pick(rng, (YELLOW, GOLD, ORANGE), (0.5, 0.4, 0.1))
    centre_radius = rng.uniform(0.36, 0.52)
    for layer in range(2):
        count = int(rng.integers(16, 30))
        angles = np.linspace(0, 2 * np.pi, count, endpoint=False) + rng.uniform(0, np.pi) + rng.normal(0, 0.05, count)
        tips = rng.uniform(0.88, 1.0, count) * (1.0 - 0.1 * layer)
        widths = rng.uniform(0.10, 0.16, count)
        fills = jitter_many(rng, shade(petal_colour, 0.85 + 0.15 * layer), count, amount=10)
        outlines = where.apply(petal_outlines(angles, centre_radius * 0.85, tips, widths, pointiness=0.7))
        for outline, fill in zip(outlines, fills, strict=False):
            draw.polygon(flat(outline), fill=fill, outline=shade(fill, 0.75))
    disc = jitter(rng, pick(rng, (BROWN, DARK_BROWN, (70, 60, 20))), amount=8)
    draw.polygon(flat(where.apply(ellipse_outline(0, 0, centre_radius, centre_radius, points=28))), fill=disc)
    _speckle(draw, where, rng, centre_radius * 0.95, shade(disc, 1.6), 120)
    _speckle(draw, where, rng, centre_radius * 0.5, shade(disc, 0.6), 50)


def draw_tulip(draw: ImageDraw.ImageDraw, where: Placement, rng: np.random.Generator) -> None:
    """Usually a cup of a few tall petals on a stem; sometimes the open cup seen from above."""
    colour = pick(rng, (RED, PINK, YELLOW, ORANGE, PURPLE, WHITE, MAGENTA), (0.25, 0.18, 0.17, 0.12, 0.1, 0.08, 0.1))
    if rng.random() < 0.2:
        _draw_open_tulip(draw, where, rng, colour)
        return
    stem = where.apply(np.array([[0.0, 0.3], [rng.uniform(-0.2, 0.2), 3.5]]))
    draw.line(flat(stem), fill=jitter(rng, STEM_GREEN), width=max(2, int(where.radius * 0.1)))
    if rng.random() < 0.7:
        side = rng.choice((-1.0, 1.0))
        blade = ellipse_outline(side * 0.45, 1.6, 0.22, 1.1, angle=side * rng.uniform(0.1, 0.35), points=16)
        draw.polygon(flat(where.apply(blade)), fill=jitter(rng, LEAF_GREEN))
    petals = int(rng.integers(3, 6))
    offsets = np.linspace(-0.42, 0.42, petals) * rng.uniform(0.8, 1.1)
    order = np.argsort(np.abs(offsets))[::-1]  # outer petals behind, middle one in front
    for i in order:
        lean = offsets[i] * rng.uniform(0.3, 0.7)
        fill = jitter(rng, shade(colour, 0.8 + 0.2 * (1 - abs(offsets[i]))), amount=10, brightness=0.06)
        outline = petal_outlines([-np.pi / 2 + lean], -0.35, 0.75, rng.uniform(0.26, 0.34), pointiness=0.8)[0]
        outline = outline + np.array([offsets[i], 0.1])
        draw.polygon(flat(where.apply(outline)), fill=fill, outline=shade(fill, 0.7))


def _draw_open_tulip(draw: ImageDraw.ImageDraw, where: Placement, rng: np.random.Generator, colour) -> None:
    """An open tulip from above: six broad pointed petals around a dark star."""
    angles = np.linspace(0, 2 * np.pi, 6, endpoint=False) + rng.uniform(0, np.pi)
    outlines = where.apply(petal_outlines(angles, 0.0, rng.uniform(0.85, 1.0, 6), 0.34, pointiness=0.6))
    for outline, fill in zip(outlines, jitter_many(rng, colour, 6, amount=10), strict=False):
        draw.polygon(flat(outline), fill=fill, outline=shade(fill, 0.7))
    star = petal_outlines(angles, 0.0, 0.3, 0.06, pointiness=1.0, points=6)
    for outline in where.apply(star):
        draw.polygon(flat(outline), fill=(30, 25, 30))


def _speckle(draw, where: Placement, rng: np.random.Generator, radius: float, colour, count: int) -> None:
    """Dots scattered over a disc: seeds, pollen, texture."""
    r = radius * np.sqrt(rng.uniform(0, 1, count))
    a = rng.uniform(0, 2 * np.pi, count)
    dots = where.apply(np.stack([r * np.cos(a), r * np.sin(a)], axis=-1))
    draw.point(flat(dots), fill=colour)


# One drawing function per class, in the order of schema.LABELS.
DRAWERS = (draw_daisy, draw_dandelion, draw_rose, draw_sunflower, draw_tulip)
if len(DRAWERS) != len(LABELS):
    raise RuntimeError(f"synth draws {len(DRAWERS)} classes but schema.LABELS has {len(LABELS)}: {LABELS}")
# Share of pictures with more than one flower, per class (tulips and dandelions grow in crowds).
EXTRA_FLOWER_CHANCE = (0.3, 0.4, 0.15, 0.2, 0.45)
