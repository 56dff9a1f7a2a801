"""What ``batch-predict`` and the BatchInference step read: image files, or TFRecord shards of the codelab format.

A glob names one kind or the other: names ending in a TFRecord suffix
(``.tfrec``, ``.tfrecord``...) are shards whose records hold the image bytes
under ``image`` (each record is keyed ``SHARD#INDEX``); anything else is an
image file, keyed by its path. Paths may be local or on an object store
(``gs://``): all reads go through ``tf.io.gfile``.

Every image's header is screened as ``predict`` screens it (empty, damaged,
over the pixel budget) before the model sees it; one that does not decode
is found when the model rejects its batch (model_handler.py). Either way it
becomes a refusal with its reason, never an exception that stops the job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import apache_beam as beam
import tensorflow as tf

from components.records import features
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.shared.classifier import screen_image

RECORD_SUFFIXES = (".tfrec", ".tfrecord", ".tfrecords", ".tfrec.gz", ".tfrecord.gz")


class InputError(ValueError):
    """A glob that names nothing readable, or an output folder already used.

    ``batch-predict`` reports it as a bad path (exit status 2); in the
    pipeline it fails the BatchInference step with this message."""


@dataclass(frozen=True)
class Inputs:
    """The files a glob matched, and whether they are TFRecord shards."""

    glob: str
    paths: list[str]
    records: bool

    @property
    def description(self) -> str:
        return f"{len(self.paths)} {'TFRecord shard' if self.records else 'image file'}(s)"


def list_inputs(glob: str) -> Inputs:
    """The files ``glob`` matches (sorted); InputError naming it when there are none,
    or when it mixes shards and image files."""
    try:
        paths = sorted(tf.io.gfile.glob(glob))
    except tf.errors.OpError as error:
        raise InputError(f"{glob}: cannot list the input ({error.message})") from None
    if "://" not in glob:  # a local folder matched by the glob is not an input (an object store has none)
        paths = [path for path in paths if not os.path.isdir(path)]
    if not paths:
        raise InputError(f"{glob}: no file matches the input")
    shards = [path for path in paths if path.endswith(RECORD_SUFFIXES)]
    if shards and len(shards) != len(paths):
        raise InputError(
            f"{glob}: matches both TFRecord shards ({os.path.basename(shards[0])}) and other files; give one kind"
        )
    return Inputs(glob, paths, records=bool(shards))


class ReadImages(beam.DoFn):
    """A path -> ``(key, screened bytes)``, or ``(key, reason)`` on the REFUSED output.

    An image file gives one image; a shard gives one per record.
    """

    REFUSED = "refused"

    def __init__(self, records: bool, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
        self.records, self.max_pixels = records, max_pixels

    def process(self, path: str):
        read = 0
        try:  # a shard damaged half-way keeps the records read before the damage
            for key, data in _records(path) if self.records else [(path, _read_file(path))]:
                read += 1
                yield self._screened(key, data)
        except (OSError, tf.errors.OpError) as error:
            message = getattr(error, "message", None) or str(error)
            after = f" after {read} record(s)" if self.records else ""
            yield beam.pvalue.TaggedOutput(self.REFUSED, (path, f"cannot read it{after} ({message})"))

    def _screened(self, key: str, data: bytes | str):
        """``(key, bytes)`` when the header passes, else the refusal with its reason."""
        if isinstance(data, str):  # a record without an image: the reason
            return beam.pvalue.TaggedOutput(self.REFUSED, (key, data))
        try:
            return key, screen_image(data, self.max_pixels, decode=False)
        except ValueError as error:
            return beam.pvalue.TaggedOutput(self.REFUSED, (key, str(error)))


def _read_file(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as file:
        return file.read()


def _records(shard: str):
    """``(SHARD#INDEX, image bytes)`` for each record; the reason instead of
    the bytes for a record that holds no image."""
    compression = "GZIP" if shard.endswith(".gz") else ""
    for index, record in enumerate(tf.data.TFRecordDataset(shard, compression_type=compression)):
        key = f"{shard}#{index}"
        try:
            example = tf.train.Example.FromString(record.numpy())
        except Exception:  # noqa: BLE001 - protobuf's DecodeError, whatever its module
            yield key, "not a tf.Example record"
            continue
        images = example.features.feature[features.IMAGE].bytes_list.value
        yield key, (images[0] if images else f"the record has no {features.IMAGE!r} feature")
