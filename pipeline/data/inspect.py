"""Check TFRecord shards against the flower record format and summarise them.

Use it before training on shards from elsewhere, or after writing new ones:
it counts records per shard and per class, tallies image sizes (from the
decoded JPEG and from the ``size`` feature), checks that the COUNT in each
``flowersNN-COUNT.tfrec`` name is the real count, and lists every record that
breaks the format (see ``components.records.record_format.parse_record``) and every file that cannot be
read to the end (truncated or corrupted), instead of stopping at the first.
An image whose header declares more pixels than the budget
(``data.max_image_pixels``) is such a problem, and is not decoded.

(This module shares its name with Python's ``inspect``; import it as
``pipeline.data.inspect``, and run the CLI with ``python -m``, not as a script.)
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass, field

from components.records.pixel_budget import DEFAULT_MAX_IMAGE_PIXELS
from pipeline.data.shards import DataError, parse_shard_filename
from schema import LABELS

NO_VALID_CLASS = "(no valid class)"


@dataclass
class ShardSummary:
    """One file: how many records it holds and whether it could be read to the end."""

    path: str
    records: int
    count_in_name: int | None  # None when the name is not flowersNN-COUNT.tfrec
    error: str | None = None  # why reading stopped early, None when the whole file was read

    @property
    def count_matches(self) -> bool | None:
        """Whether the COUNT in the file name is the number of records (None: no count in the name)."""
        return None if self.count_in_name is None else self.count_in_name == self.records


@dataclass
class RecordProblem:
    """A record that breaks the format: which file, which record (0-based), what is wrong."""

    path: str
    index: int
    problem: str


@dataclass
class InspectionReport:
    """Everything ``inspect_shards`` found; ``ok`` is True when nothing is wrong."""

    pattern: str
    shards: list[ShardSummary] = field(default_factory=list)
    per_class: Counter = field(default_factory=Counter)
    image_sizes: Counter = field(default_factory=Counter)  # "HxW" of the decoded JPEGs
    size_feature: Counter = field(default_factory=Counter)  # "HxW" from the size feature
    problems: list[RecordProblem] = field(default_factory=list)

    @property
    def total_records(self) -> int:
        return sum(shard.records for shard in self.shards)

    @property
    def unreadable_shards(self) -> list[ShardSummary]:
        return [shard for shard in self.shards if shard.error is not None]

    @property
    def miscounted_shards(self) -> list[ShardSummary]:
        return [shard for shard in self.shards if shard.count_matches is False]

    @property
    def ok(self) -> bool:
        return not (self.problems or self.unreadable_shards or self.miscounted_shards)

    def to_dict(self) -> dict:
        """A JSON-ready view of the report."""
        return {
            "pattern": self.pattern,
            "ok": self.ok,
            "total_records": self.total_records,
            "shards": [
                {
                    "path": shard.path,
                    "records": shard.records,
                    "count_in_name": shard.count_in_name,
                    "count_matches": shard.count_matches,
                    "error": shard.error,
                }
                for shard in self.shards
            ],
            "per_class": dict(self.per_class),
            "image_sizes": dict(self.image_sizes),
            "size_feature": dict(self.size_feature),
            "problems": [{"path": p.path, "index": p.index, "problem": p.problem} for p in self.problems],
        }


def _size_text(size) -> str:
    return f"{size[0]}x{size[1]}" if size is not None and len(size) == 2 else str(list(size or []))


def _read_shard(path: str, report: InspectionReport, max_pixels: int) -> ShardSummary:
    """Read one file record by record, adding what it finds to ``report``."""
    import tensorflow as tf

    from components.records.record_format import parse_record  # TensorFlow too

    parsed_name = parse_shard_filename(path)
    summary = ShardSummary(path, 0, parsed_name[1] if parsed_name else None)
    compression = "GZIP" if path.endswith(".gz") else ""
    try:
        for serialized in tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator():
            record = parse_record(serialized, max_pixels=max_pixels)
            for problem in record["problems"]:
                report.problems.append(RecordProblem(path, summary.records, problem))
            class_id = record["class"]
            valid_class = class_id is not None and 0 <= class_id < len(LABELS)
            report.per_class[LABELS[class_id] if valid_class else NO_VALID_CLASS] += 1
            if record["image_size"] is not None:
                report.image_sizes[_size_text(record["image_size"])] += 1
            if record["size"] is not None:
                report.size_feature[_size_text(record["size"])] += 1
            summary.records += 1
    except tf.errors.OpError as error:
        summary.error = f"{type(error).__name__}: {error.message} (after {summary.records} records)"
    return summary


def _local_files(pattern: str) -> list[str]:
    """Python's glob, so that a wrong local path is named before TensorFlow loads."""
    if os.path.isdir(pattern):
        pattern = os.path.join(pattern, "*.tfrec")
    paths = sorted(path for path in glob.glob(pattern) if not os.path.isdir(path))
    if not paths:
        raise DataError(f"no files match {pattern}")
    return paths


def _remote_files(pattern: str) -> list[str]:
    """TensorFlow's filesystem, for ``gs://`` and other object stores."""
    import tensorflow as tf

    try:
        if tf.io.gfile.isdir(pattern):
            pattern = os.path.join(pattern, "*.tfrec")
        paths = sorted(path for path in tf.io.gfile.glob(pattern) if not tf.io.gfile.isdir(path))
    except tf.errors.OpError as error:
        raise DataError(f"cannot list {pattern}: {error.message}") from None
    if not paths:
        raise DataError(f"no files match {pattern}")
    return paths


def inspect_shards(pattern: str, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> InspectionReport:
    """Inspect every TFRecord file matching ``pattern`` (a glob, local or gs://).

    A folder stands for ``folder/*.tfrec``. Files ending in ``.gz`` are read as
    GZIP (as TFX's ExampleGen writes them). Images over ``max_pixels``
    pixels are reported, not decoded. Raises DataError when nothing
    matches; problems inside the files are reported, never raised.
    """
    if max_pixels < 1:
        raise DataError(f"the pixel budget must be at least 1, got {max_pixels}")
    paths = _remote_files(pattern) if "://" in pattern else _local_files(pattern)
    report = InspectionReport(pattern)
    for path in paths:
        report.shards.append(_read_shard(path, report, max_pixels))
    return report


# --------------------------------------------------------------------------- text report


def _table(headers: tuple[str, ...], rows: list[tuple], text_columns: tuple[int, ...] = (0,)) -> list[str]:
    """A plain text table: text columns left-aligned, numbers right-aligned."""
    cells = [tuple(str(cell) for cell in row) for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [
            cell.ljust(width) if i in text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join(padded).rstrip())
    return lines


def format_report(report: InspectionReport, max_problems: int = 50) -> str:
    """A readable text report: shards, classes, image sizes, then what is wrong."""
    names = [os.path.basename(shard.path) for shard in report.shards]
    if len(set(names)) != len(names):
        names = [shard.path for shard in report.shards]
    lines = [f"{len(report.shards)} file(s) matching {report.pattern}, {report.total_records} records", ""]

    shard_rows = []
    for name, shard in zip(names, report.shards, strict=True):
        if shard.error:
            status = f"UNREADABLE: {shard.error}"
        elif shard.count_matches is False:
            status = f"NAME SAYS {shard.count_in_name}"
        else:
            status = "ok"
        in_name = "-" if shard.count_in_name is None else shard.count_in_name
        shard_rows.append((name, shard.records, in_name, status))
    lines += _table(("shard", "records", "name count", "status"), shard_rows, text_columns=(0, 3)) + [""]

    class_rows = [(label, report.per_class.get(label, 0)) for label in LABELS]
    if report.per_class.get(NO_VALID_CLASS):
        class_rows.append((NO_VALID_CLASS, report.per_class[NO_VALID_CLASS]))
    lines += _table(("class", "records"), [*class_rows, ("total", report.total_records)]) + [""]

    lines += _table(("image size (decoded JPEG)", "records"), report.image_sizes.most_common()) + [""]
    lines += _table(("image size (size feature)", "records"), report.size_feature.most_common()) + [""]

    if report.problems:
        lines.append(f"{len(report.problems)} problem(s) in records:")
        for problem in report.problems[:max_problems]:
            lines.append(f"  {os.path.basename(problem.path)} record {problem.index}: {problem.problem}")
        if len(report.problems) > max_problems:
            lines.append(f"  ... and {len(report.problems) - max_problems} more (--json lists them all)")
        lines.append("")
    if report.ok:
        lines.append("OK: every record matches the format and every count is right.")
    else:
        lines.append(
            f"NOT OK: {len(report.problems)} record problem(s), {len(report.unreadable_shards)} unreadable file(s), "
            f"{len(report.miscounted_shards)} file(s) whose name count is wrong."
        )
    return "\n".join(lines)
