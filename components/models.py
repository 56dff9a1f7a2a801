"""The model zoo: every model the Trainer can build, by name.

Each builder takes the square input size and the number of classes and
returns an uncompiled tf_keras model whose output is a float32 softmax.
Build models inside the distribution strategy's scope.
"""

from __future__ import annotations

from typing import Callable

import tf_keras as keras
from tf_keras import layers


def dense(image_size: int, num_classes: int) -> keras.Model:
    """The codelab's first model: a plain multi-layer perceptron."""
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            layers.Flatten(),
            layers.Dense(500, activation="relu"),
            layers.Dense(50, activation="relu"),
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="dense",
    )


def convnet(image_size: int, num_classes: int) -> keras.Model:
    """The codelab's convolutional model: 3x3 convolutions with max pooling,
    a 1x1 convolution to narrow the channels, then global average pooling."""
    conv = lambda filters, size=3: layers.Conv2D(  # noqa: E731
        filters, size, padding="same", activation="relu"
    )
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
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="convnet",
    )


BUILDERS: dict[str, Callable[[int, int], keras.Model]] = {
    "dense": dense,
    "convnet": convnet,
}


def build_model(name: str, image_size: int, num_classes: int) -> keras.Model:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(BUILDERS)}")
    return BUILDERS[name](image_size, num_classes)
