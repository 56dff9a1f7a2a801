"""Transfer learning that runs the frozen part of a pretrained model once,
not every epoch.

While a layer is frozen (and its batch norm in inference mode) its output for
an image never changes, so an epoch that runs it again recomputes the same
values. Here the frozen part runs once over every training and evaluation
image, the trainable rest trains on its cached outputs, and since that rest
is made of the full model's own layers, its trained weights are the full
model's; the export then sees the whole network as before. Both phases of
mobilenetv2 are trained this way:

- The frozen phase (the whole base frozen): the cut is after the global
  pooling that starts the head, so what is cached is 1,280 floats per image
  for MobileNetV2, not the base's 6x6x1280 feature map (36 times more
  memory). That is exact because the pooling has no weights: whatever the
  head learns, it only ever sees the pooled values. A head that did anything
  before pooling (dropout on the feature map, a convolution) could not be
  trained on pooled features, so this split is only made when the base is
  followed by a global pooling layer.
- The fine-tuning phase (the base's top ``model.fine_tune_layers`` layers
  trainable): the cut is at the input of the lowest trainable layer, and
  what is cached is the activation there (24x24x32 floats at 192 px below
  MobileNetV2's block 6). This is exact only when everything above the cut
  depends on that one tensor: a cut inside a residual block, whose skip
  connection reaches around it, is refused and the phase trains the full
  network.

Augmentation: a left-right flip is an exact permutation of the pixels, so
each training image's features are computed twice, from the plain and the
flipped image, and every epoch picks one of the two at random for each
image, as the random flip of ``input_pipeline.augment`` does. The random
saturation change cannot be cached (each epoch draws a new factor), so the
cached phases train without it.

Memory and restarts: the features are kept in memory when they take at most
``model.cache_mb`` (1,840 training photos with their flips and 460
evaluation photos: 21 MB pooled, 305 MB below block 6 at 192 px, against
813 MB of transformed images); otherwise, and for models without a frozen
part, the phase trains the full network on the images as before. Each
phase's epochs are checkpointed by BackupAndRestore in a folder of their
own; a restarted phase computes the features again (one pass) and resumes
at its last epoch.
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
    """A model cut where its frozen part ends.

    ``extractor`` maps images to the features at the cut (the frozen part);
    ``head`` maps those features to the model's output and is built of the
    model's own layers, so training it trains them in the full model.
    """

    extractor: keras.Model
    head: keras.Model

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(int(size) for size in self.extractor.output_shape[1:])


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


def split_frozen_part(model: keras.Model) -> FrozenSplit | None:
    """The model cut where its frozen part ends, or None when nothing can be
    cached exactly: no pretrained base (every model of the zoo but
    mobilenetv2 and xception), a base trained whole (xception, or
    ``fine_tune_layers`` 0), a head that is not a plain chain of layers, or a
    cut that a skip connection reaches around.

    A frozen base is cut after the global pooling that follows it; a base
    whose top layers train is cut at the input of its lowest trainable layer.
    """
    names = [layer.name for layer in model.layers]
    if models.PRETRAINED_BASE not in names:
        return None
    index = names.index(models.PRETRAINED_BASE)
    base = model.layers[index]
    chain = _head_chain(model, index)
    if chain is None:
        return None
    if not base.trainable:
        pooling = chain[0]
        if not isinstance(pooling, _GLOBAL_POOLINGS):
            return None
        return _split_at(model, pooling.get_output_at(0), chain[1:])
    lowest = next(i for i, layer in enumerate(base.layers) if layer.trainable)
    cut = base.layers[lowest].get_input_at(0)  # node 0: its call in the base
    if lowest <= 1 or isinstance(cut, (list, tuple)):  # trained whole, or a merge just above the cut
        return None
    try:
        top = keras.Model(cut, base.output, name="trainable_top")
    except ValueError:  # "Graph disconnected": a skip connection reaches around the cut
        return None
    # The frozen layers below the cut, on the model's own input (node 0 is
    # each layer's call in the model; a split adds another).
    below = keras.Model(base.input, cut, name="frozen_bottom")(base.get_input_at(0), training=False)
    # The base runs in inference mode in the model (batch norm's statistics
    # stay fixed); its top does here too.
    return _split_at(model, below, [lambda x: top(x, training=False), *chain])


def _head_chain(model: keras.Model, index: int) -> list | None:
    """The layers after the base when they are a plain chain to the model's
    only output, each fed by the one before; else None."""
    previous = model.layers[index]
    chain = model.layers[index + 1 :]
    if not chain or len(model.outputs) != 1:
        return None
    for layer in chain:
        if layer.get_input_at(0) is not previous.get_output_at(0):
            return None
        previous = layer
    return chain if previous.get_output_at(0) is model.outputs[0] else None


def _split_at(model: keras.Model, cut, head_layers) -> FrozenSplit:
    extractor = keras.Model(model.inputs, cut, name="frozen_features")
    features_in = keras.Input(shape=cut.shape[1:], name="cached_features")
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
        flip = tf.random.uniform([tf.shape(plain)[0]], seed=seed) < 0.5
        flip = tf.reshape(flip, [-1] + [1] * (len(plain.shape) - 1))  # one draw per example
        return tf.where(flip, flipped, plain), labels

    return dataset.map(pick).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(cached: CachedFeatures, batch_size: int) -> tf.data.Dataset:
    """The same batches each pass, the last partial one dropped (static
    shapes), as the image pipeline's evaluation data."""
    return tf.data.Dataset.from_tensor_slices((cached.plain, cached.labels)).batch(batch_size, drop_remainder=True)


def feature_bytes(split: FrozenSplit, train_count: int, eval_count: int, with_flipped: bool) -> int:
    """Memory the cached features take."""
    vectors = train_count * (2 if with_flipped else 1) + eval_count
    return vectors * int(np.prod(split.feature_shape)) * _FLOAT_BYTES


@dataclass
class Phase:
    """One training phase: what it needs besides the model.

    ``fit`` holds the image datasets' ``model.fit`` arguments (the path
    without a cache); ``epochs`` is the epoch it ends after, counted from the
    first phase's start, and ``initial_epoch`` the one it starts from;
    ``callbacks(folder)`` makes the phase's callbacks with their
    BackupAndRestore folder; ``compile(model)`` compiles a model with the
    phase's optimizer and loss; ``name`` names its backup folders.
    """

    name: str
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
    initial_epoch: int = 0


# The suffix of a phase's BackupAndRestore folder when it trains on cached
# features: the model it checkpoints is the head, whose checkpoint the full
# network could not restore (the full network's folder is the phase's name).
CACHED_BACKUP_SUFFIX = "_head"


def fit_phase(model: keras.Model, phase: Phase) -> dict:
    """Trains one phase and returns its history: on cached features when the
    model has a frozen part that can be cut off exactly and its features fit
    in ``budget_bytes``, else the full network on the images, as
    ``model.fit`` would."""

    def full_network() -> dict:
        return model.fit(
            epochs=phase.epochs,
            initial_epoch=phase.initial_epoch,
            callbacks=phase.callbacks(phase.name),
            **phase.fit,
        ).history

    split = split_frozen_part(model)
    # Several workers would each need all the features, or one share of them
    # in step with the others': not done (nor tested), so they train as before.
    several_workers = isinstance(phase.distribution, tf.distribute.MultiWorkerMirroredStrategy)
    if split is None or several_workers:
        return full_network()
    needed = feature_bytes(split, phase.train_count, phase.eval_count, phase.augment)
    if needed > phase.budget_bytes:
        logging.info(
            "Frozen part: cached features would take %d MB, over model.cache_mb; training the full network",
            needed >> 20,
        )
        return full_network()

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
        "Frozen part run once (%s phase): features %s of %d training images%s and %d evaluation images "
        "(%d MB) in %.1f s%s",
        phase.name,
        "x".join(str(size) for size in split.feature_shape),
        len(train),
        " and their flips" if phase.augment else "",
        len(evaluation),
        needed >> 20,
        computed - started,
        "; flips are the only augmentation (no saturation changes)" if phase.augment else "",
    )
    history = split.head.fit(
        training_dataset(train, phase.batch_size, phase.seed),
        steps_per_epoch=phase.fit["steps_per_epoch"],
        validation_data=evaluation_dataset(evaluation, phase.batch_size),
        epochs=phase.epochs,
        initial_epoch=phase.initial_epoch,
        callbacks=phase.callbacks(phase.name + CACHED_BACKUP_SUFFIX),
        verbose=0,
    ).history
    logging.info(
        "Trained on cached features: %d epochs in %.1f s",
        phase.epochs - phase.initial_epoch,
        time.perf_counter() - computed,
    )
    return history
