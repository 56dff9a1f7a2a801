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

import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from components.records import features
from pipeline.errors import FlowersError
from schema import LABELS

if TYPE_CHECKING:
    import tensorflow as tf  # imported where records are written: names and DataError need none

SHARD_PREFIX = "flowers"
SHARD_SUFFIX = ".tfrec"
_SHARD_NAME = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)-(?P<count>\d+)\.tfrec$")


class DataError(FlowersError, ValueError):
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
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64_feature(values: Sequence[int]) -> tf.train.Feature:
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _float_feature(values: Sequence[float]) -> tf.train.Feature:
    import tensorflow as tf

    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def make_example(jpeg_bytes: bytes, class_id: int, height: int, width: int) -> tf.train.Example:
    """Build one record; ``label`` and ``one_hot_class`` are derived from ``class_id``."""
    import tensorflow as tf

    if not 0 <= class_id < len(LABELS):
        raise ValueError(f"class_id must be in 0..{len(LABELS) - 1} {LABELS}, got {class_id}")
    one_hot = [1.0 if i == class_id else 0.0 for i in range(len(LABELS))]
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                features.IMAGE: _bytes_feature([jpeg_bytes]),
                features.LABEL: _int64_feature([class_id]),
                features.CLASS_NAME: _bytes_feature([LABELS[class_id].encode("utf-8")]),
                features.SIZE: _int64_feature([height, width]),
                features.ONE_HOT: _float_feature(one_hot),
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
    import tensorflow as tf

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
    import tensorflow as tf

    sizes = shard_sizes(total, shards)
    tf.io.gfile.makedirs(out_dir)
    iterator = iter(records)
    paths: list[str] = []
    try:
        for index, size in enumerate(sizes):
            chunk = [record for _, record in zip(range(size), iterator, strict=False)]
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
