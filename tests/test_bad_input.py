"""Bad input: every case ends in a clear message naming the file (or key) and
the problem, or in a run that completes and reports what it set aside."""

import pytest
from bad_records import BAD_RECORDS, PHOTO, bad_shard, encode, record, set_class, write_shards_with_bad_records
from PIL import Image

from components.example_gen import screening
from pipeline.data.shards import write_shard


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
    return write_shards_with_bad_records(tmp_path_factory.mktemp("bad-data"))


# A run that sets the bad records aside (within data.max_bad_fraction) and
# pushes is checked in tests/test_beam_workers.py, whose run in Beam worker
# processes reads shards written the same way: one pipeline run for both.


@pytest.mark.e2e
def test_bad_records_stop_the_run_with_a_list_by_default(small_run, shards_with_bad_records, tmp_path):
    result, out = small_run.run(f"{shards_with_bad_records}/*.tfrec", tmp_path)
    assert not result.succeeded
    assert "ImportExampleGen failed: 3 of 153 records (2.0%) cannot be used; none are allowed" in out
    shard = bad_shard(shards_with_bad_records)
    for index, (_, reason) in enumerate(BAD_RECORDS):
        assert f"{shard} record {index}: {reason}" in out
    assert "Traceback" not in out
    assert not (tmp_path / "serving").exists()


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
