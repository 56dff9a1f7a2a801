"""The run report's sample predictions: one grid of eval photos, each
captioned with what the exported model answered for its JPEG bytes."""

import io

import numpy as np
import tensorflow as tf
from PIL import Image
from tiny_model import export_tiny_model

from components.records import features
from pipeline.data.synth import synthetic_jpeg
from pipeline.reporting import report

WHITE = 255


def wide_jpeg(width: int, height: int) -> bytes:
    """A dark photo wider than it is high: its cell must show white above and below it."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 60, 20)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_eval_split(examples_uri, jpegs: list[bytes]) -> None:
    """The Examples artifact's eval split as ImportExampleGen writes it (GZIP TFRecords)."""
    (examples_uri / "Split-eval").mkdir(parents=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(str(examples_uri / "Split-eval" / "data.gz"), options) as writer:
        for index, jpeg in enumerate(jpegs):
            feature = {
                features.IMAGE: tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg])),
                features.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 5])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def test_thumbnails_keep_the_photos_shape_in_a_white_square():
    cell = report.thumbnail(wide_jpeg(60, 30), 160)
    assert cell.shape == (160, 160, 3)
    assert (cell[:30] == WHITE).all() and (cell[-30:] == WHITE).all()  # the 2:1 photo is 80 px high, centred
    assert (cell[50:110] < 100).all()  # scaled up to the full width
    small = report.thumbnail(synthetic_jpeg(1, 0, 0, 24), 160)
    assert (small != WHITE).any(axis=2).all()  # a square photo fills its cell, even a small one


def test_sample_predictions_are_one_grid_with_a_caption_per_photo(tmp_path):
    jpegs = [synthetic_jpeg(3, i, i % 5, 48) for i in range(5)] + [wide_jpeg(60, 30)]
    write_eval_split(tmp_path / "examples", jpegs)
    model = export_tiny_model(tmp_path / "model" / "1")
    picture = tmp_path / "sample_predictions.png"

    report.plot_predictions(model, str(tmp_path / "examples"), picture)

    pixels = np.asarray(Image.open(picture).convert("RGB"))
    side, caption, gap = 160, 44, 12
    assert pixels.shape == (2 * (side + caption), 4 * (side + gap), 3)  # 4 columns, 2 rows for 6 photos
    for index in range(6):
        top, left = (index // 4) * (side + caption), (index % 4) * (side + gap) + gap // 2
        words = pixels[top + 4 : top + caption - 4, left : left + side]
        assert (words != WHITE).any(), f"photo {index} has no caption"
        photo = pixels[top + caption : top + caption + side, left : left + side]
        assert (photo != WHITE).any(axis=2).mean() > (0.4 if index == 5 else 0.9), index
    assert (pixels[2 * (side + caption) - side :, 2 * (side + gap) :] == WHITE).all()  # the two empty cells
