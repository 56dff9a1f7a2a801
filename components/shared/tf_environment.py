"""TensorFlow's environment, set in one place before TensorFlow is imported.

TensorFlow reads these variables once, when it loads, so they must be set
first. ``pipeline`` and ``components`` call :func:`configure` when they are
imported, and the benchmarks and the tests' child processes call it before
their own ``import tensorflow``; the Dockerfile sets the same values.

- ``TF_USE_LEGACY_KERAS=1``: Keras 2 (tf_keras) everywhere, because
  TensorFlow Transform works with Keras 2 only; training, export and serving
  then all see the same Keras.
- ``TF_CPP_MIN_LOG_LEVEL=3``: TensorFlow's C++ start-up chatter (CUDA plugin
  registration on a machine without GPUs) is not for users; real failures
  still raise Python errors.
- ``GRPC_VERBOSITY=ERROR``: gRPC's fork warnings under Beam, likewise.

A value already in the environment wins: ``TF_CPP_MIN_LOG_LEVEL=0`` shows
everything when debugging.
"""

import os

VARIABLES = {
    "TF_USE_LEGACY_KERAS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
}


def configure() -> None:
    """Sets each variable that the environment does not already set."""
    for name, value in VARIABLES.items():
        os.environ.setdefault(name, value)
