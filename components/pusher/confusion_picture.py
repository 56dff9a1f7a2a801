"""The confusion matrix as a PNG, drawn with Pillow.

A picture beside the model card shows at a glance which classes the model
mixes up. Pillow is already in the image (the data tools use it); matplotlib
would be a large dependency for one grid of numbers.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

CELL = 64
MARGIN = 110  # room for the class names left of and above the grid


def _shade(count: int, row_total: int) -> tuple[int, int, int]:
    """White for none of the row's examples, dark blue for all of them."""
    share = count / row_total if row_total else 0.0
    return (int(255 - 215 * share), int(255 - 175 * share), int(255 - 55 * share))


def draw(confusion: list[list[int]], labels: list[str], title: str = "") -> bytes:
    """PNG bytes: rows are the actual classes, columns the predicted ones."""
    size = len(labels)
    width = height = MARGIN + CELL * size + 10
    picture = Image.new("RGB", (width, height + 20), "white")
    pen = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    pen.text((10, 4), title or "confusion matrix (rows: actual, columns: predicted)", fill="black", font=font)
    top = MARGIN + 20
    for index, name in enumerate(labels):
        pen.text((8, top + index * CELL + CELL // 2 - 6), name[:14], fill="black", font=font)
        # Column names, staggered so that long names do not overlap.
        pen.text((MARGIN + index * CELL + 4, top - 18 - 14 * (index % 2)), name[:10], fill="black", font=font)
    for actual, row in enumerate(confusion):
        row_total = sum(row)
        for predicted, count in enumerate(row):
            x, y = MARGIN + predicted * CELL, top + actual * CELL
            fill = _shade(count, row_total)
            pen.rectangle([x, y, x + CELL - 1, y + CELL - 1], fill=fill, outline="grey")
            ink = "white" if sum(fill) < 400 else "black"
            pen.text((x + CELL // 2 - 3 * len(str(count)), y + CELL // 2 - 6), str(count), fill=ink, font=font)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
