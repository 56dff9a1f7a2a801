"""Synthetic flowers: deterministic, balanced, in the record format, not separable by colour."""

import io
from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components.records.record_format import parse_record
from pipeline.cli.data_commands import main as cli_main
from pipeline.data import synth
from pipeline.data.shards import parse_shard_filename
from schema import LABELS


def shard_bytes(paths) -> dict[str, bytes]:
    return {path.rsplit("/", 1)[1]: open(path, "rb").read() for path in paths}


def read_records(paths):
    return [bytes(r) for path in paths for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    first = synth.write_synthetic_shards(str(tmp_path / "a"), images=12, shards=3, seed=7, size=48)
    again = synth.write_synthetic_shards(str(tmp_path / "b"), images=12, shards=3, seed=7, size=48)
    other = synth.write_synthetic_shards(str(tmp_path / "c"), images=12, shards=3, seed=8, size=48)
    assert shard_bytes(first) == shard_bytes(again)
    assert list(shard_bytes(first)) == list(shard_bytes(other))  # same names: same counts
    for (_, a), (_, c) in zip(shard_bytes(first).items(), shard_bytes(other).items(), strict=True):
        assert a != c


def test_an_image_depends_only_on_seed_index_and_class():
    assert synth.synthetic_jpeg(5, 3, 1, 40) == synth.synthetic_jpeg(5, 3, 1, 40)
    assert synth.synthetic_jpeg(5, 3, 1, 40) != synth.synthetic_jpeg(5, 4, 1, 40)


@pytest.mark.parametrize("images", [5, 23, 100])
def test_classes_are_balanced(images):
    counts = Counter(synth.synthetic_class_ids(images, seed=1).tolist())
    assert set(counts) <= set(range(len(LABELS)))
    assert max(counts.values()) - min(counts.values()) <= 1 and sum(counts.values()) == images


def test_classes_come_in_a_seeded_order_not_a_fixed_cycle():
    first = synth.synthetic_class_ids(50, seed=1).tolist()
    assert first == synth.synthetic_class_ids(50, seed=1).tolist()
    assert first != synth.synthetic_class_ids(50, seed=2).tolist()
    assert first != [i % 5 for i in range(50)]


def test_records_follow_the_format(tmp_path):
    paths = synth.write_synthetic_shards(str(tmp_path), images=25, shards=4, seed=0, size=64)
    assert [parse_shard_filename(p) for p in paths] == [(0, 7), (1, 6), (2, 6), (3, 6)]
    parsed = [parse_record(r) for r in read_records(paths)]
    assert len(parsed) == 25
    assert [p["problems"] for p in parsed] == [[]] * 25
    assert {p["image_size"] for p in parsed} == {(64, 64)}
    assert Counter(p["label"] for p in parsed) == {label: 5 for label in LABELS}
    image = Image.open(io.BytesIO(parsed[0]["image"]))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 64))


def test_mean_colour_alone_does_not_give_the_class_away():
    """A nearest-centroid classifier on mean RGB must stay far from the ~100% a CNN reaches."""
    ids = synth.synthetic_class_ids(400, seed=11)
    pictures = [synth.draw_flower_picture(int(c), synth.image_rng(11, i), 48) for i, c in enumerate(ids)]
    means = np.array([np.asarray(picture).mean(axis=(0, 1)) for picture in pictures])
    train, test = slice(0, 300), slice(300, None)
    centroids = np.stack([means[train][ids[train] == k].mean(axis=0) for k in range(len(LABELS))])
    predicted = np.argmin(((means[test][:, None, :] - centroids) ** 2).sum(axis=-1), axis=1)
    accuracy = float((predicted == ids[test]).mean())
    assert accuracy < 0.5, f"mean colour predicts the class {accuracy:.0%} of the time"


def test_cli_synth_writes_shards_and_rejects_bad_numbers(tmp_path, capsys):
    out = tmp_path / "synth"
    arguments = ["--out", str(out), "--images", "6", "--shards", "2", "--seed", "1", "--size", "32"]
    assert cli_main(["data", "synth", *arguments]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["flowers00-3.tfrec", "flowers01-3.tfrec"]
    assert "wrote 6 synthetic 32x32 records into 2 shard(s)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["data", "synth", "--out", str(out), "--images", "0", "--shards", "2", "--seed", "1"])
    assert exit_info.value.code == 2
    assert "--images: must be at least 1" in capsys.readouterr().err
    tiny = ["--out", str(tmp_path / "tiny"), "--images", "2", "--shards", "1", "--seed", "1", "--size", "8"]
    assert cli_main(["data", "synth", *tiny]) == 2
    assert "error: size must be at least 16 pixels, got 8" in capsys.readouterr().err
