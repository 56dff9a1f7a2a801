"""Transform's preprocessing_fn, run through tft_beam on a handful of records.

The channel statistics that TFT's analyzers compute must equal numpy's over
the same decoded pixels, and every image must be standardized with them.
"""

import io

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components.records import features
from components.transform import preprocessing
from components.transform.preprocessing import decode_image, preprocessing_fn

SIZE = 16


def jpeg(width, height, colour, seed):
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(colour, 40, size=(height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def records():
    shapes = [(40, 40), (64, 48), (30, 50), (20, 20), (80, 60), (33, 33)]
    colours = [(200, 50, 50), (20, 180, 40), (60, 60, 220), (250, 250, 0), (10, 10, 10), (128, 128, 128)]
    return [
        {features.IMAGE: [jpeg(w, h, c, i)], features.LABEL: [i % 5]}
        for i, ((w, h), c) in enumerate(zip(shapes, colours, strict=True))
    ]


def run_transform(records, tmp_path):
    metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(
            {
                features.IMAGE: tf.io.FixedLenFeature([1], tf.string),
                features.LABEL: tf.io.FixedLenFeature([1], tf.int64),
            }
        )
    )
    with tft_beam.Context(temp_dir=str(tmp_path), force_tf_compat_v1=False):
        (transformed, _), _ = (records, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, {"image_size": SIZE})
        )
    return transformed


def test_channel_statistics_match_numpy(records, tmp_path):
    pixels = np.stack([decode_image(r[features.IMAGE][0], SIZE).numpy() for r in records])
    mean = pixels.mean(axis=(0, 1, 2))
    std = pixels.std(axis=(0, 1, 2))

    transformed = run_transform(records, tmp_path)

    assert len(transformed) == len(records)
    for record, pixel_values, output in zip(records, pixels, transformed, strict=True):
        image = np.asarray(output[features.IMAGE]).reshape(SIZE, SIZE, 3)
        np.testing.assert_allclose(image, (pixel_values - mean) / std, rtol=1e-4, atol=1e-4)
        assert output[features.LABEL] == record[features.LABEL][0]
        np.testing.assert_allclose(output[features.IMAGE_MEAN], mean, rtol=1e-5)
        np.testing.assert_allclose(output[features.IMAGE_STD], std, rtol=1e-4)
    everything = np.stack([np.asarray(o[features.IMAGE]).reshape(SIZE, SIZE, 3) for o in transformed])
    np.testing.assert_allclose(everything.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(everything.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_decode_crops_to_a_centred_square():
    # A wide image: red left third, green middle, blue right third.
    pixels = np.zeros((30, 90, 3), np.uint8)
    pixels[:, :30, 0] = pixels[:, 30:60, 1] = pixels[:, 60:, 2] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    image = decode_image(buffer.getvalue(), 8).numpy()
    assert image.shape == (8, 8, 3)
    np.testing.assert_allclose(image.mean(axis=(0, 1)), [0, 1, 0], atol=0.02)  # only the middle is kept


def test_decode_gives_three_channels_for_grayscale():
    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 10), 200, np.uint8)).save(buffer, format="JPEG")
    image = decode_image(buffer.getvalue(), 12).numpy()
    assert image.shape == (12, 12, 3)
    np.testing.assert_allclose(image, 200 / 255, atol=0.02)


def test_a_large_jpeg_is_decoded_scaled_down_to_nearly_the_same_pixels():
    # A smooth 200 x 300 photo-like gradient: libjpeg's 1/2 and 1/4 decodes
    # average blocks, which a plain resize of the full image nearly matches.
    rows, cols = np.mgrid[0:200, 0:300]
    pixels = np.stack([rows * 255 // 200, cols * 255 // 300, (rows + cols) * 255 // 500], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    jpeg = buffer.getvalue()
    assert [int(preprocessing.jpeg_scale_index(tf.constant([200, 300]), size)) for size in (24, 50, 99, 100, 101)] == [
        3,
        2,
        1,
        1,
        0,
    ]
    full = tf.image.convert_image_dtype(tf.io.decode_jpeg(jpeg, channels=3), tf.float32)[:, 50:250]
    for size in (24, 50, 100):
        np.testing.assert_allclose(
            decode_image(jpeg, size).numpy(), tf.image.resize(full, [size, size], antialias=True).numpy(), atol=0.03
        )
    # At the full size nothing is scaled: the pixels are decode_image's own.
    np.testing.assert_array_equal(decode_image(jpeg, 200).numpy(), tf.image.resize(full, [200, 200]).numpy())
