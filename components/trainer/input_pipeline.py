"""The Trainer's tf.data pipeline: raw records through the transform graph.

Transform does not materialize preprocessed images, so the Trainer reads the
raw examples that ExampleGen wrote (GZIP TFRecords of tf.Examples), parses
only the features the model needs, and applies the transform graph in a
parallel, prefetched map, and keeps the results in memory when they fit. Shapes are
static (fixed image size and ``drop_remainder``) so the same pipeline feeds a TPU.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tensorflow_transform as tft

from components.records import features

_RAW_SPEC = {
    features.IMAGE: tf.io.FixedLenFeature([1], tf.string),
    features.LABEL: tf.io.FixedLenFeature([1], tf.int64),
}
# What the dataset carries from the transform graph: the augmentation needs
# the channel statistics to work on pixel values.
_TRANSFORMED_KEYS = (features.IMAGE, features.LABEL, features.IMAGE_MEAN, features.IMAGE_STD)
# Transformed examples are kept in memory when they take at most this much
# (the default data set at 64x64: about 40 MB; 1,840 photos at 192x192: 813 MB).
# The Trainer passes model.cache_mb.
CACHE_BUDGET_BYTES = 1024 * 1024 * 1024


def list_files(file_patterns: list[str]) -> list[str]:
    """Expands TFX file patterns (``.../Split-train/*``) into a sorted file list."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example files match {file_patterns}")
    return files


def count_records(files: list[str]) -> int:
    """Number of records in GZIP TFRecord files (a quick pass, no parsing)."""
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def augment(
    images: tf.Tensor, mean: tf.Tensor, std: tf.Tensor, seed: int, saturation: tuple[float, float] = (0.6, 1.4)
) -> tf.Tensor:
    """Random left-right flips and saturation changes, image by image.

    Saturation is changed on pixel values, so the standardization is undone
    first and redone after: a blend with the grey version of each image (a
    factor below 1 washes colours out, above 1 makes them stronger).
    """
    mean, std = mean[:, None, None, :], std[:, None, None, :]
    pixels = images * std + mean
    pixels = tf.image.random_flip_left_right(pixels, seed=seed)
    factor = tf.random.uniform([tf.shape(pixels)[0], 1, 1, 1], *saturation, seed=seed)
    grey = tf.image.rgb_to_grayscale(pixels)
    pixels = tf.clip_by_value(grey + factor * (pixels - grey), 0.0, 1.0)
    return (pixels - mean) / std


def first_images(files: list[str], count: int) -> list[bytes]:
    """The encoded images of the first ``count`` records (e.g. for warmup requests)."""
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(count)
    spec = {features.IMAGE: _RAW_SPEC[features.IMAGE]}
    return [tf.io.parse_single_example(record, spec)[features.IMAGE].numpy()[0] for record in dataset]


def pixel_statistics(files: list[str], tf_transform_output: tft.TFTransformOutput) -> tuple:
    """The (mean, std) per channel that the transform graph standardizes with,
    read off its outputs for one record."""
    record = next(iter(tf.data.TFRecordDataset(files[:1], compression_type="GZIP").batch(1)))
    transformed = tf_transform_output.transform_features_layer()(tf.io.parse_example(record, _RAW_SPEC))
    return transformed[features.IMAGE_MEAN][0].numpy(), transformed[features.IMAGE_STD][0].numpy()


def example_bytes(tf_transform_output: tft.TFTransformOutput) -> int:
    """Memory one transformed example takes (image, label and channel statistics)."""
    spec = tf_transform_output.transformed_feature_spec()
    return sum(math.prod(spec[key].shape) * spec[key].dtype.size for key in _TRANSFORMED_KEYS)


def fits_in_memory(examples: int, tf_transform_output: tft.TFTransformOutput, budget_bytes: int) -> bool:
    """Whether ``examples`` transformed examples take at most ``budget_bytes``."""
    return examples * example_bytes(tf_transform_output) <= budget_bytes


def read_records(paths: tf.data.Dataset, file_count: int) -> tf.data.Dataset:
    """The serialized records of ExampleGen's GZIP files, read several files
    at a time, in whichever order they are ready."""
    options = tf.data.Options()
    options.deterministic = False
    return paths.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=min(file_count, 8),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).with_options(options)


def make_dataset(
    files: list[str],
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    training: bool,
    seed: int = 42,
    augment_images: bool = True,
    examples: int | None = None,
    cache_budget_bytes: int = CACHE_BUDGET_BYTES,
) -> tf.data.Dataset:
    """Batches of (standardized images, integer labels).

    Training data is shuffled, repeated forever (the caller sets
    steps_per_epoch) and, if asked, augmented; evaluation data is read once.
    Both drop the last partial batch, so shapes are static. Order is not
    kept: parallel reads hand on whichever record is ready first.

    When the ``examples`` transformed examples (counted here if not given)
    fit in ``cache_budget_bytes``, the first pass keeps them in memory and
    every later epoch, and every later validation pass, skips reading,
    decoding and resizing; training then shuffles all the examples, not a
    window of them. Read evaluation data to its end (no ``validation_steps``):
    a cache that is left part-way is thrown away.
    """
    transform_layer = tf_transform_output.transform_features_layer()
    if examples is None:
        examples = count_records(files)
    keep_in_memory = fits_in_memory(examples, tf_transform_output, cache_budget_bytes)

    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = read_records(dataset, len(files))

    def transform(serialized):
        transformed = transform_layer(tf.io.parse_example(serialized, _RAW_SPEC))
        return tuple(transformed[key] for key in _TRANSFORMED_KEYS)

    if keep_in_memory and training:
        # Transform in batches (the graph is batched), keep single examples
        # so that every epoch can shuffle them anew.
        dataset = dataset.batch(batch_size).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.unbatch().cache()
        dataset = dataset.shuffle(max(examples, 1), seed=seed, reshuffle_each_iteration=True).repeat()
        dataset = dataset.batch(batch_size, drop_remainder=True)
    elif keep_in_memory:  # evaluation: the same batches each pass, kept whole
        dataset = dataset.batch(batch_size, drop_remainder=True)
        dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).cache()
    else:  # too many to keep: transform every batch anew, each epoch
        if training:
            dataset = dataset.shuffle(2048, seed=seed, reshuffle_each_iteration=True).repeat()
        dataset = dataset.batch(batch_size, drop_remainder=True)
        dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)

    if training and augment_images:
        dataset = dataset.map(
            lambda images, labels, mean, std: (augment(images, mean, std, seed), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(lambda images, labels, mean, std: (images, labels))
    return dataset.prefetch(tf.data.AUTOTUNE)
