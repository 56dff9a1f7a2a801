"""Transfer learning that runs the frozen pretrained base once, not every epoch.

While the pretrained base is frozen (the first phase of mobilenetv2) its
output for an image never changes, so training the head on the full network
recomputes the same features every epoch: nearly all the time of an epoch.
Here the base's features of every training and evaluation image are computed
once, the head trains on them for the frozen epochs, and since the head is
made of the full model's own layers, its trained weights are the full
model's; the fine-tuning phase and the export then see the whole network as
before.

What is cached: the output of the global pooling that starts the head (1,280
floats per image for MobileNetV2), not the base's 6x6x1280 feature map (36
times more memory). That is exact because the pooling has no weights and is
the head's first layer: whatever the head learns, it only ever sees the
pooled values. A head that did anything before pooling (dropout on the
feature map, a convolution) could not be trained on pooled features, so the
split is only made when the base is followed by a global pooling layer.

Augmentation: a left-right flip is an exact permutation of the pixels, so
each training image's features are computed twice, plain and flipped, and
every epoch picks one of the two at random for each image, as the random
flip of ``input_pipeline.augment`` does. The random saturation change cannot
be cached (each epoch draws a new factor), so the frozen phase trains
without it; the fine-tuning phase augments as before.

Memory and restarts: the features are kept in memory when they take at most
``model.cache_mb`` (1,840 training photos with their flips and 460
evaluation photos: 21 MB, against 813 MB of transformed images); otherwise,
and for models without a frozen base, the phase trains the full network on
the images as before. The head's epochs are checkpointed by
BackupAndRestore in a folder of their own; a restarted phase computes the
features again (one pass) and resumes the head at its last epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging  # as training.py: absl's INFO lines reach a Vertex AI job's log
from tf_keras import layers

from components.records import features
from components.trainer import models

# Weightless poolings that reduce a feature map to one vector per image.
_GLOBAL_POOLINGS = (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)
# The raw features the feature pass reads (the transform graph's inputs).
_RAW_SPEC = {
    features.IMAGE: tf.io.FixedLenFeature([1], tf.string),
    features.LABEL: tf.io.FixedLenFeature([1], tf.int64),
}
_FLOAT_BYTES = 4


@dataclass
class FrozenSplit:
    """A model cut after the pooling that follows its frozen base.

    ``extractor`` maps images to pooled features; ``head`` maps pooled
    features to the model's output and is built of the model's own layers,
    so training it trains them in the full model.
    """

    extractor: keras.Model
    head: keras.Model

    @property
    def feature_size(self) -> int:
        return int(self.extractor.output_shape[-1])


@dataclass
class CachedFeatures:
    """Pooled features of a split's images, with their labels.

    ``flipped`` holds the features of the left-right flipped images (training
    with augmentation), else None.
    """

    plain: np.ndarray
    labels: np.ndarray
    flipped: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def split_frozen_base(model: keras.Model) -> FrozenSplit | None:
    """The model's frozen base and its head, or None when the model has no
    frozen pretrained base followed by a global pooling and a chain of layers
    to its output (every model of the zoo but mobilenetv2)."""
    names = [layer.name for layer in model.layers]
    if models.PRETRAINED_BASE not in names:
        return None
    index = names.index(models.PRETRAINED_BASE)
    base = model.layers[index]
    if base.trainable or index + 1 >= len(model.layers):
        return None
    pooling, head_layers = model.layers[index + 1], model.layers[index + 2 :]
    # Node 0 of each layer is its call in the model (a split adds a second).
    if not isinstance(pooling, _GLOBAL_POOLINGS) or pooling.get_input_at(0) is not base.get_output_at(0):
        return None
    previous = pooling
    for layer in head_layers:  # a plain chain, each layer fed by the one before
        if layer.get_input_at(0) is not previous.get_output_at(0):
            return None
        previous = layer
    if len(model.outputs) != 1 or previous.get_output_at(0) is not model.outputs[0]:
        return None

    extractor = keras.Model(model.inputs, pooling.get_output_at(0), name="frozen_features")
    features_in = keras.Input(shape=pooling.get_output_at(0).shape[1:], name="pooled_features")
    x = features_in
    for layer in head_layers:
        x = layer(x)
    return FrozenSplit(extractor, keras.Model(features_in, x, name=f"{model.name}_head"))


def transformed_batches(files: list[str], tf_transform_output: tft.TFTransformOutput, batch_size: int):
    """Every record once, in file order, as (standardized images, labels);
    the last batch may be short."""
    transform_layer = tf_transform_output.transform_features_layer()

    def transform(serialized):
        transformed = transform_layer(tf.io.parse_example(serialized, _RAW_SPEC))
        return transformed[features.IMAGE], transformed[features.LABEL]

    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size)
    return dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _feature_model(split: FrozenSplit, with_flipped: bool) -> keras.Model:
    """Images and labels in, features (and those of the flipped images) and
    the same labels out: labels ride through the model so that they stay
    beside their features whatever order the strategy gathers batches in."""
    images = keras.Input(shape=split.extractor.input_shape[1:], name="images")
    labels = keras.Input(shape=(1,), dtype="int64", name="labels")
    outputs = {"labels": layers.Identity(name="passed_labels")(labels)}
    if with_flipped:
        # One call of the extractor on the batch and its mirror image, split
        # after: the graph (and its trace) holds the base once, not twice.
        both = layers.Lambda(_with_flipped, name="with_flipped")(images)
        outputs["plain"], outputs["flipped"] = layers.Lambda(_halves, name="halves")(split.extractor(both))
    else:
        outputs["plain"] = split.extractor(images)
    return keras.Model([images, labels], outputs, name="feature_pass")


def _with_flipped(images):
    return tf.concat([images, tf.image.flip_left_right(images)], axis=0)


def _halves(features):
    return tf.split(features, 2, axis=0)


def compute_features(split: FrozenSplit, batches: tf.data.Dataset, with_flipped: bool = False) -> CachedFeatures:
    """Runs the frozen base once over ``batches`` of (images, labels)."""
    passing = _feature_model(split, with_flipped)
    outputs = passing.predict(batches.map(lambda images, labels: ((images, tf.reshape(labels, [-1, 1])),)), verbose=0)
    as_float = lambda values: np.asarray(values, dtype=np.float32)  # noqa: E731 (bfloat16 on TPU)
    return CachedFeatures(
        plain=as_float(outputs["plain"]),
        labels=np.asarray(outputs["labels"], dtype=np.int64).reshape(-1, 1),
        flipped=as_float(outputs["flipped"]) if with_flipped else None,
    )


def training_dataset(cached: CachedFeatures, batch_size: int, seed: int) -> tf.data.Dataset:
    """Batches of (features, labels), shuffled anew every epoch and repeated;
    with flipped features, each example is the flipped one half the time."""
    if cached.flipped is None:
        dataset = tf.data.Dataset.from_tensor_slices((cached.plain, cached.labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((cached.plain, cached.flipped, cached.labels))
    dataset = dataset.shuffle(len(cached), seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if cached.flipped is None:
        return dataset.prefetch(tf.data.AUTOTUNE)

    def pick(plain, flipped, labels):
        flip = tf.random.uniform([tf.shape(plain)[0], 1], seed=seed) < 0.5
        return tf.where(flip, flipped, plain), labels

    return dataset.map(pick).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(cached: CachedFeatures, batch_size: int) -> tf.data.Dataset:
    """The same batches each pass, the last partial one dropped (static
    shapes), as the image pipeline's evaluation data."""
    return tf.data.Dataset.from_tensor_slices((cached.plain, cached.labels)).batch(batch_size, drop_remainder=True)


def feature_bytes(split: FrozenSplit, train_count: int, eval_count: int, with_flipped: bool) -> int:
    """Memory the cached features take."""
    vectors = train_count * (2 if with_flipped else 1) + eval_count
    return vectors * split.feature_size * _FLOAT_BYTES


@dataclass
class FrozenPhase:
    """What the first training phase needs besides the model.

    ``fit`` holds the image datasets' ``model.fit`` arguments (the path
    without a cache); ``callbacks(folder)`` makes the phase's callbacks with
    their BackupAndRestore folder; ``compile(model)`` compiles a model with
    the phase's optimizer and loss.
    """

    fit: dict
    epochs: int
    callbacks: Callable[[str], list]
    compile: Callable[[keras.Model], None]
    distribution: tf.distribute.Strategy
    train_files: list[str]
    eval_files: list[str]
    tf_transform_output: tft.TFTransformOutput
    batch_size: int
    train_count: int
    eval_count: int
    augment: bool
    seed: int
    budget_bytes: int


# The BackupAndRestore folders: the full network's, as before, and the head's
# (a different model, whose checkpoint the full network could not restore).
FULL_NETWORK_BACKUP = "train"
HEAD_BACKUP = "train_head"


def fit_frozen_phase(model: keras.Model, phase: FrozenPhase) -> dict:
    """Trains the first phase and returns its history: on cached features
    when the model has a frozen base and they fit in ``budget_bytes``, else
    the full network on the images, as ``model.fit`` would."""
    split = split_frozen_base(model)
    # Several workers would each need all the features, or one share of them
    # in step with the others': not done (nor tested), so they train as before.
    several_workers = isinstance(phase.distribution, tf.distribute.MultiWorkerMirroredStrategy)
    if split is None or several_workers:
        return model.fit(epochs=phase.epochs, callbacks=phase.callbacks(FULL_NETWORK_BACKUP), **phase.fit).history
    needed = feature_bytes(split, phase.train_count, phase.eval_count, phase.augment)
    if needed > phase.budget_bytes:
        logging.info(
            "Frozen base: cached features would take %d MB, over model.cache_mb; training the full network",
            needed >> 20,
        )
        return model.fit(epochs=phase.epochs, callbacks=phase.callbacks(FULL_NETWORK_BACKUP), **phase.fit).history

    started = time.perf_counter()
    with phase.distribution.scope():  # the feature pass and the head run on every replica
        phase.compile(split.head)
        train = compute_features(
            split, transformed_batches(phase.train_files, phase.tf_transform_output, phase.batch_size), phase.augment
        )
        evaluation = compute_features(
            split, transformed_batches(phase.eval_files, phase.tf_transform_output, phase.batch_size)
        )
    computed = time.perf_counter()
    logging.info(
        "Frozen base run once: features of %d training images%s and %d evaluation images (%d MB) in %.1f s%s",
        len(train),
        " and their flips" if phase.augment else "",
        len(evaluation),
        needed >> 20,
        computed - started,
        "; the frozen phase augments by flips only (no saturation changes)" if phase.augment else "",
    )
    history = split.head.fit(
        training_dataset(train, phase.batch_size, phase.seed),
        steps_per_epoch=phase.fit["steps_per_epoch"],
        validation_data=evaluation_dataset(evaluation, phase.batch_size),
        epochs=phase.epochs,
        callbacks=phase.callbacks(HEAD_BACKUP),
        verbose=0,
    ).history
    logging.info("Head trained on cached features: %d epochs in %.1f s", phase.epochs, time.perf_counter() - computed)
    return history
