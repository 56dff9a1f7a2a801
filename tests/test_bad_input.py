"""Bad input: every case ends in a clear message naming the file (or key) and
the problem, or in a run that completes and reports what it set aside."""

import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.example_gen import screening
from components.example_gen.component import QUARANTINE_DIR
from pipeline.data.shards import make_example, shard_filename, write_shard
from pipeline.data.synth import write_synthetic_shards


def encode(picture: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format)
    return buffer.getvalue()


PHOTO = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8))


def record(image: bytes = None, class_id: int = 1, edit=None) -> bytes:
    example = make_example(encode(PHOTO, "JPEG") if image is None else image, class_id, 50, 70)
    if edit:
        edit(example.features.feature)
    return example.SerializeToString()


@pytest.mark.parametrize(
    "image",
    [
        encode(PHOTO, "PNG"),
        encode(PHOTO.convert("L"), "JPEG"),
        encode(PHOTO.convert("CMYK"), "JPEG"),
        encode(Image.new("RGB", (6000, 4000), (10, 200, 30)), "JPEG"),
    ],
    ids=["png", "grayscale-jpeg", "cmyk-jpeg", "very-large-jpeg"],
)
def test_images_that_decode_to_three_channels_are_fine(image):
    assert screening.record_problems(record(image)) == []


def set_class(value):
    return lambda feature: feature["class"].int64_list.value.__setitem__(slice(None), value)


@pytest.mark.parametrize(
    "serialized, reason",
    [
        (record(b"this is not an image"), "image does not decode: Unknown image file format"),
        (record(edit=lambda f: f.pop("image")), "image missing"),
        (record(edit=set_class([-1])), "class -1 out of range 0..4"),
        (record(edit=set_class([5])), "class 5 out of range 0..4"),
        (record(edit=lambda f: f.pop("class")), "class missing"),
        (record(edit=lambda f: f["size"].int64_list.value.append(3)), "size has 3 values, expected 2"),
        (b"\x0a\xff truncated", "not a tf.train.Example"),
    ],
    ids=["not-an-image", "no-image", "negative-class", "class-above-4", "no-class", "size-length", "not-an-example"],
)
def test_unusable_records_are_named_with_their_reason(serialized, reason):
    problems = screening.record_problems(serialized)
    assert any(reason in problem for problem in problems), problems


def test_a_damaged_shard_is_reported_with_its_path(tmp_path):
    good = [record() for _ in range(5)]
    truncated = tmp_path / "flowers00-5.tfrec"
    write_shard(str(truncated), good)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    flipped = tmp_path / "flowers01-5.tfrec"
    write_shard(str(flipped), good)
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF  # breaks a CRC
    flipped.write_bytes(bytes(data))

    for path in (truncated, flipped):
        outputs = list(screening.ScreenShard().process((str(path), 0)))
        damaged = [
            o.value for o in outputs if isinstance(o, __import__("apache_beam").pvalue.TaggedOutput) and o.tag == "bad"
        ]
        assert damaged and damaged[-1]["file_damaged"] and damaged[-1]["shard"] == str(path)
        assert "file is truncated or corrupted after record" in damaged[-1]["reasons"][0]


def test_policy_stops_or_allows_by_fraction():
    report = screening.ScreeningReport(
        good=95, bad=[{"shard": "s0.tfrec", "index": i, "reasons": ["class 7 out of range 0..4"]} for i in range(5)]
    )
    with pytest.raises(screening.BadRecordsError, match=r"5 of 100 records \(5.0%\) cannot be used; none are allowed"):
        screening.enforce_policy(report, 0.0, "q")
    with pytest.raises(screening.BadRecordsError, match=r"s0.tfrec record 3: class 7 out of range"):
        screening.enforce_policy(report, 0.04, "q")
    screening.enforce_policy(report, 0.05, "q")  # within the allowed fraction: no error


@pytest.fixture(scope="module")
def shards_with_bad_records(tmp_path_factory):
    """150 good synthetic records and 3 bad ones in a shard of their own."""
    data = tmp_path_factory.mktemp("bad-data")
    write_synthetic_shards(str(data), images=150, shards=2, seed=11, size=48)
    bad = [record(b"garbage"), record(edit=set_class([9])), record(edit=lambda f: f.pop("image"))]
    write_shard(str(data / shard_filename(2, len(bad))), bad)
    return data


def run(small_run, data, work_dir, **settings):
    """A small run (tests/conftest.py) of its own: these tests need their own data."""
    return small_run.run(f"{data}/*.tfrec", work_dir, **settings)


@pytest.mark.e2e
def test_bad_records_stop_the_run_with_a_list_by_default(small_run, shards_with_bad_records, tmp_path):
    result, out = run(small_run, shards_with_bad_records, tmp_path)
    assert not result.succeeded
    assert "ImportExampleGen failed: 3 of 153 records (2.0%) cannot be used; none are allowed" in out
    shard = shards_with_bad_records / shard_filename(2, 3)
    assert f"{shard} record 0: image does not decode" in out
    assert f"{shard} record 1: class 9 out of range 0..4" in out
    assert f"{shard} record 2: image missing" in out
    assert "Traceback" not in out
    assert not (tmp_path / "serving").exists()


@pytest.mark.e2e
def test_bad_records_within_the_allowed_fraction_are_quarantined(small_run, shards_with_bad_records, tmp_path):
    result, out = run(small_run, shards_with_bad_records, tmp_path, **{"data.max_bad_fraction": 0.05})
    assert result.succeeded, out
    assert result.summary.screened == 153 and result.summary.quarantined == 3
    assert "Records screened: 153, 3 set aside in" in out
    quarantine = os.path.join(result.summary.examples_uri, QUARANTINE_DIR)
    reasons = [json.loads(line) for path in tf.io.gfile.glob(f"{quarantine}/*-reasons*.jsonl") for line in open(path)]
    assert sorted(r["index"] for r in reasons) == [0, 1, 2]
    kept = sum(1 for p in tf.io.gfile.glob(f"{quarantine}/*-records*.tfrecord") for _ in tf.data.TFRecordDataset(p))
    assert kept == 3
    assert sum(counts["total"] for counts in result.summary.split_counts.values()) == 150


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", "data directory does not exist"),
        (lambda d: d, "no files match this pattern"),
        (lambda d: (d / "flowers00-0.tfrec").write_bytes(b"") or d, "shard file is empty"),
    ],
    ids=["missing-directory", "glob-matches-nothing", "empty-shard"],
)
def test_data_paths_that_cannot_work_are_named(tmp_path, make, message, capsys):
    from pipeline.cli.main import main

    source = make(tmp_path)
    assert main(["run", "--data", f"{source}/*.tfrec", "--work-dir", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and str(source) in err
