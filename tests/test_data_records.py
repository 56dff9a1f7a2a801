"""The record format: names, building, parsing and validating records, writing shards."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.records.record_format import parse_record
from pipeline.data import shards as records
from pipeline.data.shards import DataError, make_example, shard_filename, shard_sizes
from schema import LABELS


def jpeg_bytes(height=24, width=32, mode="RGB", image_format="JPEG") -> bytes:
    pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=image_format)
    return buffer.getvalue()


def example_with(**features) -> bytes:
    """A good record with some features replaced (value None removes the feature)."""
    example = make_example(jpeg_bytes(), 2, 24, 32)
    for key, value in features.items():
        del example.features.feature[key]
        if value is not None:
            example.features.feature[key].CopyFrom(value)
    return example.SerializeToString()


def int64s(*values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def floats(*values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def bytes_values(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def test_labels_are_the_codelab_classes_in_order():
    assert LABELS == ("daisy", "dandelion", "roses", "sunflowers", "tulips")


def test_shard_filename_follows_the_codelab_naming_and_parses_back():
    assert shard_filename(0, 230) == "flowers00-230.tfrec"
    assert shard_filename(15, 7) == "flowers15-7.tfrec"
    assert records.parse_shard_filename("/some/dir/flowers03-230.tfrec") == (3, 230)
    assert records.parse_shard_filename("gs://flowers-public/tfrecords-jpeg-192x192-2/flowers12-230.tfrec") == (12, 230)
    assert records.parse_shard_filename("data_tfrecord-00000-of-00001.gz") is None
    assert records.parse_shard_filename("flowers03.tfrec") is None


@pytest.mark.parametrize(
    ("total", "shards", "sizes"),
    [(10, 3, [4, 3, 3]), (2760, 12, [230] * 12), (5, 16, [1] * 5), (0, 4, []), (7, 1, [7])],
)
def test_shard_sizes_split_as_evenly_as_possible_without_empty_shards(total, shards, sizes):
    assert shard_sizes(total, shards) == sizes


def test_shard_sizes_rejects_zero_shards():
    with pytest.raises(ValueError, match="at least 1"):
        shard_sizes(10, 0)


def test_make_example_round_trips_through_parse_record():
    jpeg = jpeg_bytes(24, 32)
    serialized = make_example(jpeg, 3, 24, 32).SerializeToString()
    parsed = parse_record(serialized)
    assert parsed["problems"] == []
    assert parsed["image"] == jpeg
    assert parsed["class"] == 3
    assert parsed["label"] == "sunflowers"
    assert parsed["size"] == [24, 32]
    assert parsed["one_hot_class"] == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert parsed["image_size"] == (24, 32)


def test_make_example_rejects_a_class_outside_the_labels():
    with pytest.raises(ValueError, match="0..4"):
        make_example(jpeg_bytes(), 5, 24, 32)


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        ({"image": None}, "image missing"),
        ({"image": bytes_values(b"not a jpeg at all")}, "image does not decode"),
        ({"class": None}, "class missing"),
        ({"class": int64s(7)}, "class 7 out of range 0..4"),
        ({"label": bytes_values(b"tulips")}, "label 'tulips' does not match class 2 ('roses')"),
        ({"label": bytes_values(b"roses", b"roses")}, "label has 2 values, expected 1"),
        ({"label": int64s(2)}, "label has type int64_list, expected bytes_list"),
        ({"size": int64s(24, 32, 3)}, "size has 3 values, expected 2"),
        ({"size": int64s(32, 24)}, "size [32, 24] does not match the image's [height, width] [24, 32]"),
        ({"one_hot_class": floats(1, 0, 0, 0, 0)}, "one_hot_class [1.0, 0.0, 0.0, 0.0, 0.0] does not match class 2"),
        ({"one_hot_class": floats(0, 0, 1)}, "one_hot_class has 3 values, expected 5"),
        ({"class": bytes_values(b"2")}, "class has type bytes_list, expected int64_list"),
        ({"class": int64s(1, 2)}, "class has 2 values, expected 1"),
        ({"image": bytes_values(b"")}, "image has 1 values, expected one non-empty JPEG"),
        ({"image": tf.train.Feature()}, "image has type none (empty feature), expected bytes_list"),
    ],
)
def test_parse_record_names_each_problem(features, expected):
    problems = parse_record(example_with(**features))["problems"]
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_label_size_and_one_hot_are_optional_as_in_the_schema():
    parsed = parse_record(example_with(label=None, size=None, one_hot_class=None))
    assert parsed["problems"] == [] and parsed["class"] == 2 and parsed["image_size"] == (24, 32)


def test_parse_record_flags_png_and_grayscale_images():
    png = make_example(jpeg_bytes(image_format="PNG"), 0, 24, 32).SerializeToString()
    assert "image is PNG, expected JPEG" in parse_record(png)["problems"]
    gray = make_example(jpeg_bytes(mode="L"), 0, 24, 32).SerializeToString()
    assert "image mode is L, expected RGB" in parse_record(gray)["problems"]


def test_parse_record_reports_bytes_that_are_not_an_example():
    problems = parse_record(b"\x0a\xff\xff")["problems"]
    assert len(problems) == 1 and problems[0].startswith("not a tf.train.Example")


def test_parse_record_can_skip_decoding_the_image():
    parsed = parse_record(example_with(image=bytes_values(b"garbage")), check_image=False)
    assert parsed["problems"] == [] and parsed["image_size"] is None


def read_shard(path):
    return [bytes(record) for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]


def test_write_shards_streams_records_in_order_into_exactly_named_shards(tmp_path):
    payloads = [f"record {i}".encode() for i in range(10)]
    paths = records.write_shards(iter(payloads), 10, str(tmp_path), shards=3)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["flowers00-4.tfrec", "flowers01-3.tfrec", "flowers02-3.tfrec"]
    assert [record for path in paths for record in read_shard(path)] == payloads


@pytest.mark.parametrize("announced", [11, 9])
def test_write_shards_refuses_a_wrong_total_and_leaves_no_shards(tmp_path, announced):
    payloads = [b"x"] * 10
    with pytest.raises(DataError, match=f"{announced} records"):
        records.write_shards(iter(payloads), announced, str(tmp_path), shards=3)
    assert list(tmp_path.iterdir()) == []
