"""Turn a folder of flower photos into TFRecord shards, as an Apache Beam job.

This is the conversion step of the "Keras on TPU" codelabs. The input is a
folder with one subfolder per class, named as in ``schema.LABELS``::

    flower_photos/daisy/123.jpg
    flower_photos/roses/456.png
    ...

Every photo is decoded, turned upright (EXIF orientation), converted to RGB,
made square (centre crop, or letterbox padding), resized and re-encoded as
JPEG (``square_photos.py``), then written into ``flowersNN-COUNT.tfrec``
shards (see ``shards.py``).

Nothing is dropped silently: a file that is not a photo or does not decode is
listed, with the reason, in ``ConversionResult.skipped`` and in a
``skipped.txt`` written next to the shards (empty when all went well).
A photo whose header declares more pixels than the budget
(``data.max_image_pixels``, ``--max-image-pixels``) is skipped that way too,
without being decoded.

The job runs on Beam's DirectRunner by default; pass ``beam_args`` such as
``["--runner=DataflowRunner", "--project=...", "--region=...",
"--temp_location=gs://...", "--setup_file=./setup.py"]`` to run it elsewhere
(the workers must be able to import this package). Paths may be local or
``gs://``: the photo folder is listed by ``photo_folders.py`` (before Beam and
TensorFlow load), everything else goes through ``tf.io.gfile`` and Beam's file IO.

The output is deterministic: each photo's shard and position come from a hash
of its ``class/file name``, so the same folder gives the same shards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import apache_beam as beam
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions

from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from pipeline.data.photo_folders import PlannedImage, list_source_images, plan_shards
from pipeline.data.shards import (
    SHARD_PREFIX,
    DataError,
    example_bytes,
    parse_shard_filename,
    shard_filename,
    write_shard,
)
from pipeline.data.square_photos import MODES, ImageDecodeError, square_jpeg
from schema import LABELS

SKIPPED_REPORT = "skipped.txt"


@dataclass
class ConversionResult:
    """What a conversion wrote, and what it could not convert (path, reason)."""

    out_dir: str
    written: int
    per_class: dict[str, int]
    shard_paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def skipped_report(self) -> str:
        """Path of the ``skipped.txt`` written next to the shards."""
        return os.path.join(self.out_dir, SKIPPED_REPORT)


# --------------------------------------------------------------------------- the Beam job


class ConvertPhotoFn(beam.DoFn):
    """Read and convert one photo; failures go to the ``skipped`` output with the reason."""

    RECORDS = "records"
    SKIPPED = "skipped"

    def __init__(self, size: int, mode: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
        self.size, self.mode, self.max_pixels = size, mode, max_pixels

    def process(self, planned: PlannedImage):
        try:
            with tf.io.gfile.GFile(planned.path, "rb") as source:
                data = source.read()
        except (OSError, tf.errors.OpError) as error:
            yield beam.pvalue.TaggedOutput(self.SKIPPED, (planned.path, f"cannot read file: {error}"))
            return
        try:
            jpeg = square_jpeg(data, self.size, self.mode, max_pixels=self.max_pixels)
        except ImageDecodeError as error:
            yield beam.pvalue.TaggedOutput(self.SKIPPED, (planned.path, str(error)))
            return
        yield planned.shard, (planned.order_key, planned.class_id, jpeg)


class WriteShardFn(beam.DoFn):
    """Write all records of one shard into a file named with their exact count."""

    def __init__(self, out_dir: str, size: int):
        self.out_dir, self.size = out_dir, size

    def process(self, shard_and_records):
        shard, records = shard_and_records
        records = sorted(records)  # by order key: the same order on every run
        path = os.path.join(self.out_dir, shard_filename(shard, len(records)))
        serialized = (example_bytes(jpeg, class_id, self.size, self.size) for _, class_id, jpeg in records)
        write_shard(path, serialized)
        yield path


def _skipped_lines(skipped: list[tuple[str, str]]) -> list[str]:
    """``path<TAB>reason`` lines, sorted; reasons are kept on one line."""
    return [f"{path}\t{' '.join(reason.split())}" for path, reason in sorted(skipped)]


def _read_skipped_report(path: str) -> list[tuple[str, str]]:
    with tf.io.gfile.GFile(path, "r") as report:
        lines = [line for line in report.read().splitlines() if line]
    return [tuple(line.rsplit("\t", 1)) for line in lines]


def _existing_shards(out_dir: str) -> list[str]:
    """Codelab-named shards in ``out_dir``, in shard index order."""
    pattern = os.path.join(out_dir, f"{SHARD_PREFIX}*.tfrec")
    shards = [path for path in tf.io.gfile.glob(pattern) if parse_shard_filename(path)]
    return sorted(shards, key=lambda path: parse_shard_filename(path)[0])


def convert_folder(
    source_dir: str,
    out_dir: str,
    size: int = 192,
    shards: int = 16,
    mode: str = "crop",
    beam_args: list[str] | None = None,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> ConversionResult:
    """Convert ``source_dir/CLASS/*.jpg|jpeg|png`` into codelab shards in ``out_dir``.

    ``out_dir`` must not already hold shards (an old ``flowers03-230.tfrec``
    would otherwise mix with the new ones). Photos that cannot be converted
    are reported in the result's ``skipped`` list and in ``skipped.txt``, as
    are photos over ``max_pixels`` pixels (``data.max_image_pixels``).
    Raises DataError when the folders are unusable or hold no photos.

    The job: list the photos here (to validate the folders and plan the
    shards), then in Beam convert each photo, group the records by shard
    and write each shard once its exact count is known; skipped files are
    collected into ``skipped.txt``. With no ``beam_args`` the DirectRunner
    runs in this process: its multi-process mode
    (``--direct_num_workers=2 --direct_running_mode=multi_processing``) was
    measured 10-30x slower on 100-600 photos, because every worker process
    first imports Beam and TensorFlow.
    """
    if mode not in MODES:
        raise DataError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if size < 1 or shards < 1:
        raise DataError(f"size and shards must be at least 1, got size={size} shards={shards}")
    if max_pixels < 1:
        raise DataError(f"the pixel budget must be at least 1, got {max_pixels}")
    photos, rejected = list_source_images(source_dir)
    if not photos:
        raise DataError(
            f"no .jpg, .jpeg or .png files in the class folders of {source_dir}"
            + (f" ({len(rejected)} other files)" if rejected else "")
        )
    tf.io.gfile.makedirs(out_dir)
    existing = _existing_shards(out_dir)
    if existing:
        raise DataError(
            f"{out_dir} already holds {len(existing)} shard(s) such as {os.path.basename(existing[0])}; "
            "choose an empty folder or delete them first"
        )
    plan = plan_shards(photos, shards)
    report_path = os.path.join(out_dir, SKIPPED_REPORT)

    with beam.Pipeline(options=PipelineOptions(beam_args or [])) as pipeline:
        converted = (
            pipeline
            | "ListPhotos" >> beam.Create(plan)
            | "SpreadOverWorkers" >> beam.Reshuffle()
            | "ConvertPhotos"
            >> beam.ParDo(ConvertPhotoFn(size, mode, max_pixels)).with_outputs(
                ConvertPhotoFn.SKIPPED, main=ConvertPhotoFn.RECORDS
            )
        )
        (
            converted[ConvertPhotoFn.RECORDS]
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(WriteShardFn(out_dir, size))
        )
        (
            (pipeline | "NotPhotos" >> beam.Create(rejected), converted[ConvertPhotoFn.SKIPPED])
            | "AllSkipped" >> beam.Flatten()
            | "CollectSkipped" >> beam.combiners.ToList()
            | "SortSkipped" >> beam.FlatMap(_skipped_lines)
            | "WriteSkippedReport" >> beam.io.WriteToText(report_path, shard_name_template="", num_shards=1)
        )

    skipped = _read_skipped_report(report_path)
    shard_paths = _existing_shards(out_dir)
    skipped_paths = {path for path, _ in skipped}
    per_class = {label: 0 for label in LABELS}
    for planned in plan:
        if planned.path not in skipped_paths:
            per_class[LABELS[planned.class_id]] += 1
    written = sum(parse_shard_filename(path)[1] for path in shard_paths)
    if written != sum(per_class.values()):
        raise DataError(
            f"{out_dir}: the shards hold {written} records but {sum(per_class.values())} photos converted; "
            "was the folder written to during the conversion?"
        )
    return ConversionResult(out_dir, written, per_class, shard_paths, skipped)
