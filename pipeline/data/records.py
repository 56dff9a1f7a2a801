"""The flower record format, in one place.

Every record is a ``tf.train.Example`` with the features of the "Keras on TPU"
codelabs, so shards made here can be read by the codelab notebooks and the
public ``gs://flowers-public`` shards can be read by this pipeline:

========================  ============  =====================================
feature                   type          meaning
========================  ============  =====================================
``image``                 bytes         the photo, JPEG encoded, RGB
``class``                 int64         index into ``schema.LABELS`` (0..4)
``label``                 bytes         the class name, ``LABELS[class]``
``size``                  int64 x 2     ``[height, width]`` of the image
``one_hot_class``         float x 5     one-hot encoding of ``class``
========================  ============  =====================================

Shards are uncompressed TFRecord files named ``flowersNN-COUNT.tfrec``: NN is
the shard index (two digits), COUNT the exact number of records inside, so a
reader can size an epoch from the file names alone.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Sequence

import tensorflow as tf
from google.protobuf.message import DecodeError
from PIL import Image, UnidentifiedImageError

from schema import LABELS

IMAGE_KEY = "image"
CLASS_KEY = "class"
LABEL_KEY = "label"
SIZE_KEY = "size"
ONE_HOT_KEY = "one_hot_class"
FEATURE_KEYS = (IMAGE_KEY, CLASS_KEY, LABEL_KEY, SIZE_KEY, ONE_HOT_KEY)

SHARD_PREFIX = "flowers"
SHARD_SUFFIX = ".tfrec"
_SHARD_NAME = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)-(?P<count>\d+)\.tfrec$")


class DataError(ValueError):
    """Input data or a data location is unusable; the message names it and says why."""


# --------------------------------------------------------------------------- shard names


def shard_filename(index: int, count: int, prefix: str = SHARD_PREFIX) -> str:
    """Return the codelab name of a shard, e.g. ``shard_filename(0, 230) == "flowers00-230.tfrec"``."""
    if index < 0 or count < 0:
        raise ValueError(f"shard index and count must be >= 0, got index={index} count={count}")
    return f"{prefix}{index:02d}-{count}{SHARD_SUFFIX}"


def parse_shard_filename(name: str) -> tuple[int, int] | None:
    """Return ``(index, count)`` from a codelab shard name (a path is fine), or None if it is not one."""
    match = _SHARD_NAME.match(os.path.basename(name))
    if match is None:
        return None
    return int(match["index"]), int(match["count"])


def shard_sizes(total: int, shards: int) -> list[int]:
    """Split ``total`` records over at most ``shards`` shards as evenly as possible.

    The first shards get one record more when the split is uneven, and no shard
    is ever empty: 5 records over 16 shards gives 5 shards of one record.
    """
    if shards < 1:
        raise ValueError(f"the number of shards must be at least 1, got {shards}")
    if total < 0:
        raise ValueError(f"the number of records must be >= 0, got {total}")
    used = min(shards, total)
    if used == 0:
        return []
    base, extra = divmod(total, used)
    return [base + 1 if i < extra else base for i in range(used)]


# --------------------------------------------------------------------------- writing


def _bytes_feature(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64_feature(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _float_feature(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def make_example(jpeg_bytes: bytes, class_id: int, height: int, width: int) -> tf.train.Example:
    """Build one record; ``label`` and ``one_hot_class`` are derived from ``class_id``."""
    if not 0 <= class_id < len(LABELS):
        raise ValueError(f"class_id must be in 0..{len(LABELS) - 1} {LABELS}, got {class_id}")
    one_hot = [1.0 if i == class_id else 0.0 for i in range(len(LABELS))]
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                IMAGE_KEY: _bytes_feature([jpeg_bytes]),
                CLASS_KEY: _int64_feature([class_id]),
                LABEL_KEY: _bytes_feature([LABELS[class_id].encode("utf-8")]),
                SIZE_KEY: _int64_feature([height, width]),
                ONE_HOT_KEY: _float_feature(one_hot),
            }
        )
    )


def example_bytes(jpeg_bytes: bytes, class_id: int, height: int, width: int) -> bytes:
    """``make_example`` serialized with a fixed feature order.

    Features are a protobuf map, whose serialized order is otherwise
    arbitrary: without ``deterministic=True`` the same record can come out as
    different bytes from one run to the next.
    """
    return make_example(jpeg_bytes, class_id, height, width).SerializeToString(deterministic=True)


def write_shard(path: str, records: Iterable[bytes]) -> int:
    """Write serialized records to one uncompressed TFRecord file (local or gs://).

    Returns the number written. A partly written file is deleted when writing
    fails, so a shard name never promises records that are not there.
    """
    written = 0
    try:
        with tf.io.TFRecordWriter(path) as writer:
            for record in records:
                writer.write(record)
                written += 1
    except BaseException:
        if tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
        raise
    return written


def write_shards(
    records: Iterable[bytes],
    total: int,
    out_dir: str,
    shards: int,
    prefix: str = SHARD_PREFIX,
) -> list[str]:
    """Write ``total`` serialized records into at most ``shards`` codelab-named shards.

    Records are consumed in order, one shard at a time, so ``records`` can be a
    generator and only one shard is held in memory; ``total`` must be known up
    front because every file name holds its exact count. Raises DataError (and
    removes the shards it wrote) if ``records`` yields more or fewer than
    ``total``. Returns the shard paths in index order.
    """
    sizes = shard_sizes(total, shards)
    tf.io.gfile.makedirs(out_dir)
    iterator = iter(records)
    paths: list[str] = []
    try:
        for index, size in enumerate(sizes):
            chunk = [record for _, record in zip(range(size), iterator)]
            if len(chunk) != size:
                got = sum(sizes[:index]) + len(chunk)
                raise DataError(f"expected {total} records but only got {got}")
            path = os.path.join(out_dir, shard_filename(index, size, prefix))
            write_shard(path, chunk)
            paths.append(path)
        if next(iterator, None) is not None:
            raise DataError(f"got more than the {total} records announced")
    except BaseException:
        for path in paths:
            tf.io.gfile.remove(path)
        raise
    return paths


# --------------------------------------------------------------------------- reading


def _values(example: tf.train.Example, key: str, kind: str, problems: list[str]) -> list | None:
    """The values of feature ``key`` (None when absent); a wrong list type is a problem."""
    features = example.features.feature
    if key not in features:
        return None
    found = features[key].WhichOneof("kind")
    if found != kind:
        problems.append(f"{key} has type {found or 'none (empty feature)'}, expected {kind}")
        return None
    return list(getattr(features[key], kind).value)


def _check_image(image: bytes, size: list[int] | None, problems: list[str]) -> tuple[int, int] | None:
    """Decode the image fully; append what is wrong to ``problems``; return (height, width)."""
    try:
        with Image.open(io.BytesIO(image)) as picture:
            picture.load()
            image_format, mode = picture.format, picture.mode
            width, height = picture.size
    except UnidentifiedImageError:
        problems.append("image does not decode: not an image format Pillow can read")
        return None
    except Exception as error:  # Pillow raises OSError, SyntaxError, ValueError... for damaged data
        problems.append(f"image does not decode: {error}")
        return None
    if image_format != "JPEG":
        problems.append(f"image is {image_format}, expected JPEG")
    if mode != "RGB":
        problems.append(f"image mode is {mode}, expected RGB")
    if size is not None and len(size) == 2 and list(size) != [height, width]:
        problems.append(f"size {list(size)} does not match the image's [height, width] [{height}, {width}]")
    return height, width


def parse_record(serialized: bytes, check_image: bool = True) -> dict:
    """Read one serialized record and say everything that is wrong with it.

    ``image`` and ``class`` are required; ``label``, ``size`` and
    ``one_hot_class`` may be absent (as in ``schema/schema.pbtxt``: the
    pipeline only needs the first two) but must agree with the rest when
    present.
    Returns a dict with the feature values (None when a feature is missing or
    has the wrong type): ``image`` (bytes), ``class`` (int), ``label`` (str),
    ``size`` (list of int), ``one_hot_class`` (list of float); plus
    ``image_size`` ((height, width) from decoding the JPEG, None if not
    decoded) and ``problems``, a list of readable sentences, empty for a good
    record. With ``check_image=False`` the JPEG is not decoded (faster).
    """
    parsed = {key: None for key in FEATURE_KEYS}
    parsed["image_size"] = None
    problems: list[str] = []
    parsed["problems"] = problems
    try:
        example = tf.train.Example.FromString(serialized)
    except DecodeError as error:
        problems.append(f"not a tf.train.Example: {error}")
        return parsed

    for required in (IMAGE_KEY, CLASS_KEY):
        if required not in example.features.feature:
            problems.append(f"{required} missing")
    images = _values(example, IMAGE_KEY, "bytes_list", problems)
    classes = _values(example, CLASS_KEY, "int64_list", problems)
    labels = _values(example, LABEL_KEY, "bytes_list", problems)
    size = _values(example, SIZE_KEY, "int64_list", problems)
    one_hot = _values(example, ONE_HOT_KEY, "float_list", problems)

    if images is not None and (len(images) != 1 or not images[0]):
        problems.append(f"image has {len(images)} values, expected one non-empty JPEG")
    elif images is not None:
        parsed[IMAGE_KEY] = images[0]

    class_id = None
    if classes is not None and len(classes) != 1:
        problems.append(f"class has {len(classes)} values, expected 1")
    elif classes is None:
        pass
    elif not 0 <= classes[0] < len(LABELS):
        problems.append(f"class {classes[0]} out of range 0..{len(LABELS) - 1}")
        parsed[CLASS_KEY] = classes[0]
    else:
        class_id = parsed[CLASS_KEY] = classes[0]

    if labels is not None and len(labels) != 1:
        problems.append(f"label has {len(labels)} values, expected 1")
    elif labels is not None:
        label = parsed[LABEL_KEY] = labels[0].decode("utf-8", errors="replace")
        if class_id is not None and label != LABELS[class_id]:
            problems.append(f"label {label!r} does not match class {class_id} ({LABELS[class_id]!r})")

    if size is not None:
        parsed[SIZE_KEY] = size
        if len(size) != 2:
            problems.append(f"size has {len(size)} values, expected 2 ([height, width])")

    if one_hot is not None:
        parsed[ONE_HOT_KEY] = one_hot
        expected = [1.0 if i == class_id else 0.0 for i in range(len(LABELS))]
        if len(one_hot) != len(LABELS):
            problems.append(f"one_hot_class has {len(one_hot)} values, expected {len(LABELS)}")
        elif class_id is not None and one_hot != expected:
            problems.append(f"one_hot_class {one_hot} does not match class {class_id}")

    if check_image and parsed[IMAGE_KEY] is not None:
        parsed["image_size"] = _check_image(parsed[IMAGE_KEY], size, problems)
    return parsed
