"""Transform's ``preprocessing_fn``: image preprocessing in the TF graph, once.

The same graph runs in three places: in Transform (to compute the channel
statistics over the training split), in the Trainer's tf.data pipeline, and
inside the exported model, where it turns raw JPEG bytes into the model's
input. Training and serving therefore cannot drift apart.

Transform does not materialize the preprocessed images (float pixels are
about 35 times the JPEG bytes); the Trainer applies the graph on the fly.

Before anything is decoded, the batch's image sizes are read from their
headers and checked against the pixel budget (``custom_config
["max_image_pixels"]``, from ``data.max_image_pixels``): the budget is a
constant of the transform graph, so the exported model refuses a
decompression bomb sent to TF Serving with the same limit the training data
was screened with.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from components.records import features
from components.records.image_budget import (
    DEFAULT_MAX_IMAGE_PIXELS,
    assert_within_budget,
    fixed_header_dimensions,
    is_jpeg,
    jpeg_dimensions,
)

# libjpeg can decode a JPEG at 1/2, 1/4 or 1/8 of its size, skipping most of
# the work (a scaled inverse DCT); see :func:`decode_image`.
JPEG_SCALES = (1, 2, 4, 8)


def jpeg_scale_index(dimensions: tf.Tensor, image_size: int) -> tf.Tensor:
    """The index in JPEG_SCALES of the largest scale-down that still leaves
    the image's shorter side at least ``image_size`` pixels."""
    shorter = tf.minimum(dimensions[0], dimensions[1])
    fits = [shorter >= image_size * scale for scale in JPEG_SCALES[1:]]
    return tf.reduce_sum(tf.cast(tf.stack(fits), tf.int32))


def decode_image(encoded: tf.Tensor, image_size: int, dimensions: tf.Tensor | None = None) -> tf.Tensor:
    """One encoded image (JPEG, PNG, ...) -> float32 [size, size, 3] in [0, 1].

    Any channel count decodes to RGB, and any aspect ratio is centre-cropped
    to a square before resizing, as the data converter does. A JPEG at least
    twice ``image_size`` on its shorter side is decoded scaled down by libjpeg
    (1/2, 1/4 or 1/8, never below ``image_size``), which is about twice as fast
    and averages pixels where a plain resize would skip them. ``dimensions``:
    the image's (height, width) when already read from its header.
    """
    if dimensions is None:
        dimensions = jpeg_dimensions(encoded, tf.zeros([2], tf.int64))
    scale_index = jpeg_scale_index(dimensions, image_size)

    def jpeg_from(index):
        """Nested conds, not tf.switch_case: Transform cannot analyse a graph with Case ops."""
        decoded = lambda: tf.io.decode_jpeg(encoded, channels=3, ratio=JPEG_SCALES[index])  # noqa: E731
        if index == len(JPEG_SCALES) - 1:
            return decoded
        return lambda: tf.cond(scale_index == index, decoded, jpeg_from(index + 1))

    image = tf.cond(
        is_jpeg(encoded), jpeg_from(0), lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False)
    )
    image = tf.image.convert_image_dtype(image, tf.float32)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    # A plain slice, not tf.image.crop_to_bounding_box: the same pixels, but
    # without its Assert ops, which are stateful and make tf.map_fn in
    # decode_images run its iterations one after the other.
    image = image[top : top + side, left : left + side]
    image = tf.image.resize(image, [image_size, image_size])
    return tf.ensure_shape(image, [image_size, image_size, 3])


def decode_images(encoded: tf.Tensor, image_size: int, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tf.Tensor:
    """A batch of encoded images, shape [batch] or [batch, 1] -> [batch, size, size, 3].

    Fails with InvalidArgumentError when an image declares more than
    ``max_pixels`` pixels in its header, and never decodes that image: each
    image's size is read from its header first (PNG, GIF and BMP for the
    whole batch, a JPEG's by libjpeg inside the loop), and one over the
    budget gives a blank image instead of being decoded. One Assert on the
    batch of sizes then fails the batch. The Assert is outside map_fn on
    purpose: a stateful op in the per-image function would make map_fn run
    its iterations one after the other.
    """
    encoded = tf.reshape(encoded, [-1])

    def decode_one(args):
        one, header_size = args
        size = jpeg_dimensions(one, header_size)
        image = tf.cond(
            size[0] * size[1] <= max_pixels,
            lambda: decode_image(one, image_size, size),
            lambda: tf.zeros([image_size, image_size, 3], tf.float32),
        )
        return image, size

    images, sizes = tf.map_fn(
        decode_one,
        (encoded, fixed_header_dimensions(encoded)),
        fn_output_signature=(
            tf.TensorSpec([image_size, image_size, 3], tf.float32),
            tf.TensorSpec([2], tf.int64),
        ),
        parallel_iterations=8,
    )
    with tf.control_dependencies([assert_within_budget(sizes, max_pixels)]):
        return tf.identity(images)


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    """Raw records -> standardized images and integer labels.

    Each channel is standardized with the mean and standard deviation of
    that channel over all pixels of the training split. Every image has the
    same number of pixels after resizing, so the mean of per-image channel
    means is the exact pixel mean, and likewise for the squares.
    """
    image_size = int(custom_config["image_size"])
    max_pixels = int(custom_config.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS))
    images = decode_images(inputs[features.IMAGE], image_size, max_pixels)

    per_image_mean = tf.reduce_mean(images, axis=[1, 2])  # [batch, 3]
    per_image_mean_square = tf.reduce_mean(tf.square(images), axis=[1, 2])
    channel_mean = tft.mean(per_image_mean, reduce_instance_dims=False)  # [3]
    channel_mean_square = tft.mean(per_image_mean_square, reduce_instance_dims=False)
    channel_std = tf.sqrt(tf.maximum(channel_mean_square - tf.square(channel_mean), 1e-12))

    batch = tf.shape(images)[0]
    return {
        features.IMAGE: (images - channel_mean) / channel_std,
        features.LABEL: tf.reshape(inputs[features.LABEL], [-1]),
        # The statistics themselves, so that training-time augmentation can
        # work on pixel values (saturation) and standardize again.
        features.IMAGE_MEAN: tf.broadcast_to(channel_mean, [batch, 3]),
        features.IMAGE_STD: tf.broadcast_to(channel_std, [batch, 3]),
    }
