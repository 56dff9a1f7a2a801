"""Records that cannot be used, and shards holding a few of them among good ones.

Used by the bad-input tests (tests/test_bad_input.py) and by the run in Beam
worker processes (tests/test_beam_workers.py), which also sets bad records
aside, so that one pipeline run checks both.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.shards import make_example, shard_filename, write_shard
from pipeline.data.synth import write_synthetic_shards


def encode(picture: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format)
    return buffer.getvalue()


PHOTO = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))


def record(image: bytes = None, class_id: int = 1, edit=None) -> bytes:
    """A serialized example of PHOTO (or of ``image``), changed by ``edit(features)``."""
    example = make_example(encode(PHOTO, "JPEG") if image is None else image, class_id, 50, 70)
    if edit:
        edit(example.features.feature)
    return example.SerializeToString()


def set_class(value):
    return lambda feature: feature["class"].int64_list.value.__setitem__(slice(None), value)


# The bad records of ``write_shards_with_bad_records``, in their shard's order, and why each is bad.
BAD_RECORDS = [
    (record(b"garbage"), "image does not decode"),
    (record(edit=set_class([9])), "class 9 out of range 0..4"),
    (record(edit=lambda f: f.pop("image")), "image missing"),
]
GOOD_RECORDS = 150


def write_shards_with_bad_records(folder: Path) -> Path:
    """150 good synthetic records in two shards, and the 3 BAD_RECORDS in a shard of
    their own (the third, ``bad_shard(folder)``)."""
    write_synthetic_shards(str(folder), images=GOOD_RECORDS, shards=2, seed=11, size=48)
    write_shard(str(bad_shard(folder)), [serialized for serialized, _ in BAD_RECORDS])
    return folder


def bad_shard(folder: Path) -> Path:
    return folder / shard_filename(2, len(BAD_RECORDS))
