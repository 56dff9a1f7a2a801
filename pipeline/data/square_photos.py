"""One photo made into the codelabs' record image: upright, RGB, square, JPEG.

Used by ``data convert`` (``convert.py``) for every photo of a folder. A photo
that cannot be converted raises :class:`ImageDecodeError`, whose message is
the reason shown to the user (and written into ``skipped.txt``).
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS, ImageBudgetError, open_image

JPEG_QUALITY = 95
MODES = ("crop", "pad")
PAD_COLOUR = (0, 0, 0)


class ImageDecodeError(ValueError):
    """A photo that cannot be converted; the message is the reason shown to the user."""


def _to_rgb(picture: Image.Image) -> Image.Image:
    """An upright RGB copy: applies EXIF orientation, flattens transparency onto black."""
    try:
        picture = ImageOps.exif_transpose(picture)
    except Exception:  # a damaged EXIF block only loses the orientation, not the photo
        pass
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        flat = Image.new("RGB", rgba.size, PAD_COLOUR)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return picture if picture.mode == "RGB" else picture.convert("RGB")


def square_jpeg(
    data: bytes,
    size: int = 192,
    mode: str = "crop",
    quality: int = JPEG_QUALITY,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> bytes:
    """Decode a photo (JPEG, PNG, any mode) and return a size x size RGB JPEG of it.

    ``mode="crop"`` keeps the largest centred square and resizes it (the
    codelab's choice: no borders, the edges of wide photos are lost);
    ``mode="pad"`` keeps the whole photo and fills the rest with black.
    Raises ImageDecodeError with a readable reason when the data is not a
    photo Pillow can decode completely, or when its header declares more
    than ``max_pixels`` pixels (then it is not decoded at all).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    try:
        with open_image(data, max_pixels) as picture:
            # JPEGs much larger than the target can be decoded at 1/2, 1/4 or 1/8
            # scale directly (never below `size`): several times faster, same result.
            picture.draft(None, (size, size))
            picture.load()
            picture = _to_rgb(picture)
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can read (unknown or damaged format)") from None
    except ImageBudgetError as error:
        raise ImageDecodeError(str(error)) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"damaged image: {error}") from None
    if mode == "crop":
        square = ImageOps.fit(picture, (size, size), Image.LANCZOS)
    else:
        square = ImageOps.pad(picture, (size, size), Image.LANCZOS, color=PAD_COLOUR)
    buffer = io.BytesIO()
    square.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
