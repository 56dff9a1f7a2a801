"""The model zoo of the "Keras on TPU" codelabs, built by name.

Every builder takes the square input size, the number of classes and the
model's options, and returns an uncompiled tf_keras model whose input is a
batch of standardized images (the Transform output) and whose output is a
softmax kept in float32, also under bfloat16 mixed precision. Build models
inside the distribution strategy's scope.
"""

from __future__ import annotations

import os

import numpy as np
import tf_keras as keras
from tf_keras import layers

from components.trainer.choices import MODEL_NAMES, PRETRAINED_MODELS, check
from components.trainer.keras_autograph import leave_tf_keras_unconverted

# Every model is built here: from now on tf_function traces skip tf_keras's internals.
leave_tf_keras_unconverted()

# The pretrained part of the transfer-learning models, found by this name
# when the Trainer unfreezes it for fine-tuning.
PRETRAINED_BASE = "pretrained_base"
# Batch norm momentum of the codelab's squeezenet.
SQUEEZENET_BN_MOMENTUM = 0.9


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights could not be downloaded or loaded."""


def _softmax(num_classes: int):
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")


def dense(image_size: int, num_classes: int, dropout: float = 0.0, weights: str = "") -> keras.Model:
    """The codelab's first model: a plain multi-layer perceptron."""
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            layers.Flatten(),
            layers.Dense(500, activation="relu"),
            layers.Dense(50, activation="relu"),
            layers.Dropout(dropout),
            _softmax(num_classes),
        ],
        name="dense",
    )


def convnet(image_size: int, num_classes: int, dropout: float = 0.0, weights: str = "") -> keras.Model:
    """The codelab's convolutional model: 3x3 convolutions with max pooling,
    a 1x1 convolution to narrow the channels, then global average pooling."""

    def conv(filters, size=3):
        return layers.Conv2D(filters, size, padding="same", activation="relu")

    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            conv(16),
            conv(30),
            layers.MaxPooling2D(2),
            conv(60),
            layers.MaxPooling2D(2),
            conv(90),
            layers.MaxPooling2D(2),
            conv(110),
            layers.MaxPooling2D(2),
            conv(130),
            conv(40, 1),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(dropout),
            _softmax(num_classes),
        ],
        name="convnet",
    )


def _conv_bn(x, filters: int, size: int):
    x = layers.Conv2D(filters, size, padding="same", activation="relu")(x)
    return layers.BatchNormalization(momentum=SQUEEZENET_BN_MOMENTUM)(x)


def fire_module(x, squeeze: int, expand: int):
    """Squeeze with 1x1 convolutions, then expand with parallel 1x1 and 3x3
    convolutions whose outputs are concatenated."""
    x = _conv_bn(x, squeeze, 1)
    return layers.concatenate([_conv_bn(x, expand // 2, 1), _conv_bn(x, expand // 2, 3)])


def squeezenet(image_size: int, num_classes: int, dropout: float = 0.0, weights: str = "") -> keras.Model:
    """The codelab's squeezenet: fire modules alternating with max pooling."""
    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = _conv_bn(inputs, 32, 3)
    x = fire_module(x, 24, 48)
    x = layers.MaxPooling2D(2)(x)
    x = fire_module(x, 48, 96)
    x = layers.MaxPooling2D(2)(x)
    x = fire_module(x, 64, 128)
    x = layers.MaxPooling2D(2)(x)
    x = fire_module(x, 48, 96)
    x = layers.MaxPooling2D(2)(x)
    x = fire_module(x, 24, 48)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _softmax(num_classes)(x), name="squeezenet")


def imagenet_inputs(pixel_stats: tuple | None):
    """A layer that turns standardized images back into what the ImageNet
    networks were trained on: pixels scaled to [-1, 1].

    ``pixel_stats`` is the (mean, std) per channel that Transform standardized
    with (pixel values in [0, 1]); 2 * (x * std + mean) - 1 undoes it exactly.
    Without them the layer only rescales by one half, close for photos.
    """
    if pixel_stats is None:
        return layers.Rescaling(0.5, name="imagenet_inputs")
    mean, std = (np.asarray(values, dtype="float32") for values in pixel_stats)
    return layers.Rescaling(scale=2 * std, offset=2 * mean - 1, name="imagenet_inputs")


def pretrained_base(application, image_size: int, weights: str, title: str) -> keras.Model:
    """An ImageNet network without its classification head.

    ``weights`` is "imagenet" (Keras downloads the file), a local weights file,
    or "none" for random weights (tests).
    """
    source = None if weights.lower() == "none" else weights
    if source not in (None, "imagenet") and not os.path.isfile(source):
        raise PretrainedWeightsError(f"{source}: weights file for {title} not found")
    try:
        base = application(include_top=False, weights=source, input_shape=(image_size, image_size, 3))
    except Exception as error:  # a failed download or a file of the wrong model
        if source == "imagenet":
            raise PretrainedWeightsError(
                f"could not download the ImageNet weights for {title} ({error}). Offline, give a "
                f"local weights file: --set model.weights=/path/to/{title.lower()}_no_top.h5"
            ) from error
        raise PretrainedWeightsError(f"{source}: cannot load it as {title} weights: {error}") from error
    base._name = PRETRAINED_BASE
    return base


def mobilenetv2(
    image_size: int, num_classes: int, dropout: float = 0.2, weights: str = "imagenet", pixel_stats=None
) -> keras.Model:
    """Transfer learning: a frozen ImageNet MobileNetV2 and a new softmax head.
    The Trainer may unfreeze the base for a second, fine-tuning phase.

    The head starts with the global pooling: while the base is frozen the
    Trainer computes the pooled features once and trains the head on them
    (``frozen_features.py``), which is exact only for a head that sees
    nothing but the pooled features."""
    base = pretrained_base(keras.applications.MobileNetV2, image_size, weights, "MobileNetV2")
    base.trainable = False
    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = base(
        imagenet_inputs(pixel_stats)(inputs), training=False
    )  # keep batch norm in inference mode, also when unfrozen
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _softmax(num_classes)(x), name="mobilenetv2")


def unfreeze_base(model: keras.Model, top_layers: int = 0) -> None:
    """The fine-tuning phase: the pretrained base's top ``top_layers`` layers
    become trainable (0: the whole base). Gradients stop at the lowest
    trainable layer, so a partly unfrozen base also trains faster."""
    base = model.get_layer(PRETRAINED_BASE)
    base.trainable = True
    if top_layers:
        for layer in base.layers[:-top_layers]:
            layer.trainable = False


def xception(
    image_size: int, num_classes: int, dropout: float = 0.0, weights: str = "imagenet", pixel_stats=None
) -> keras.Model:
    """Fine-tuning: an ImageNet Xception with every weight trainable."""
    base = pretrained_base(keras.applications.Xception, image_size, weights, "Xception")
    base.trainable = True
    inputs = keras.Input(shape=(image_size, image_size, 3))
    x = layers.GlobalAveragePooling2D()(base(imagenet_inputs(pixel_stats)(inputs)))
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, _softmax(num_classes)(x), name="xception")


# One builder per name of choices.MODEL_NAMES (a test checks they agree).
BUILDERS = {
    "dense": dense,
    "convnet": convnet,
    "squeezenet": squeezenet,
    "mobilenetv2": mobilenetv2,
    "xception": xception,
}


def build_model(
    name: str,
    image_size: int,
    num_classes: int,
    dropout: float = 0.0,
    weights: str = "imagenet",
    pixel_stats: tuple | None = None,
) -> keras.Model:
    """``pixel_stats``: the Transform's (mean, std) per channel, for the
    pretrained models' input layer (see :func:`imagenet_inputs`)."""
    check("model", name, MODEL_NAMES)
    if name in PRETRAINED_MODELS:
        return BUILDERS[name](image_size, num_classes, dropout=dropout, weights=weights, pixel_stats=pixel_stats)
    return BUILDERS[name](image_size, num_classes, dropout=dropout, weights=weights)
