"""Screening one record, one shard, and the policy for what is found.

A record is usable when it is a tf.Example with one ``image`` that TensorFlow
decodes (within the pixel budget, read from the header first), one ``class``
in 0..4, and ``label``, ``size`` and ``one_hot_class`` agreeing with it when
present. Bad records are listed by shard and index with their reasons; the
policy (``data.max_bad_fraction``) says how many a run may set aside.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import apache_beam as beam
import tensorflow as tf

from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.records.record_format import parse_record
from components.shared.common import tf_error_text
from schema import LABELS

# The screening step's side outputs: bad records, and each shard's class tally.
BAD = "bad"
TALLY = "tally"
# How many bad records an error message lists before pointing at the file.
_LISTED = 20


class BadRecordsError(RuntimeError):
    """Records that cannot be used, beyond what the policy allows."""


@dataclass
class ScreeningReport:
    """What screening found over all input shards."""

    good: int = 0
    bad: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.good + sum(1 for entry in self.bad if not entry.get("file_damaged"))

    @property
    def damaged_files(self) -> list[dict]:
        return [entry for entry in self.bad if entry.get("file_damaged")]


def screen_record(serialized: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[list[str], int | None]:
    """What makes one record unusable for training (empty when it is fine), and its class.

    The image is decoded by TensorFlow, as Transform will decode it, unless
    its header already refused it (over ``max_pixels``, or damaged).
    """
    parsed = parse_record(serialized, check_image=False, max_pixels=max_pixels)
    problems = list(parsed["problems"])
    if parsed["image"] is not None and not parsed["image_refused"]:
        try:
            tf.io.decode_image(parsed["image"], channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
            problems.append(f"image does not decode: {tf_error_text(error.message)}")
    return problems, parsed["class"]


def record_problems(serialized: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> list[str]:
    """What makes one record unusable for training; empty when it is fine."""
    return screen_record(serialized, max_pixels)[0]


class ScreenShard(beam.DoFn):
    """Reads one shard and yields its good records; bad ones go to ``bad``,
    and one tally of the good records per class to ``tally``."""

    def __init__(self, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS):
        super().__init__()
        self.max_pixels = max_pixels

    def process(self, shard: tuple[str, int]):
        path, span = shard
        classes = [0] * len(LABELS)
        index = -1
        try:
            for index, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
                problems, class_id = screen_record(record, self.max_pixels)
                if problems:
                    yield beam.pvalue.TaggedOutput(
                        BAD, {"shard": path, "index": index, "reasons": problems, "record": record}
                    )
                else:
                    classes[class_id] += 1
                    yield record
        except tf.errors.OpError as error:  # DataLossError: truncated or bad CRC
            yield beam.pvalue.TaggedOutput(
                BAD,
                {
                    "shard": path,
                    "index": index + 1,
                    "reasons": [f"file is truncated or corrupted after record {index}: {tf_error_text(error.message)}"],
                    "file_damaged": True,
                },
            )
        yield beam.pvalue.TaggedOutput(TALLY, {"shard": path, "span": span, "classes": classes})


def read_report(quarantine_dir: str) -> ScreeningReport:
    """Collects what the screening wrote into the quarantine directory."""
    report = ScreeningReport()
    for path in tf.io.gfile.glob(os.path.join(quarantine_dir, "*-good*.json")):
        for line in tf.io.gfile.GFile(path).read().splitlines():
            report.good += json.loads(line)["good"]
    for path in sorted(tf.io.gfile.glob(os.path.join(quarantine_dir, "*-reasons*.jsonl"))):
        report.bad.extend(json.loads(line) for line in tf.io.gfile.GFile(path).read().splitlines() if line)
    report.bad.sort(key=lambda entry: (entry["shard"], entry["index"]))
    return report


def describe(entries: list[dict], where: str) -> str:
    lines = [f"{e['shard']} record {e['index']}: {'; '.join(e['reasons'])}" for e in entries[:_LISTED]]
    if len(entries) > _LISTED:
        lines.append(f"... and {len(entries) - _LISTED} more, listed in {where}")
    return "\n  ".join(lines)


def enforce_policy(report: ScreeningReport, max_bad_fraction: float, where: str) -> None:
    """Raises BadRecordsError when the bad records are more than allowed."""
    if report.damaged_files:
        raise BadRecordsError("damaged shard files:\n  " + describe(report.damaged_files, where))
    if not report.bad:
        return
    fraction = len(report.bad) / max(1, report.total)
    if fraction > max_bad_fraction:
        allowed = (
            "none are allowed (data.max_bad_fraction = 0)"
            if max_bad_fraction == 0
            else f"at most {max_bad_fraction:.1%} are allowed (data.max_bad_fraction)"
        )
        raise BadRecordsError(
            f"{len(report.bad)} of {report.total} records ({fraction:.1%}) cannot be used; {allowed}:\n  "
            + describe(report.bad, where)
        )
