"""The flowers TFX pipeline: DAG, configuration, runners and command line.

TensorFlow Transform works with Keras 2 only. Importing this package pins
Keras 2 (tf_keras) before TensorFlow is imported anywhere, so training,
export and serving all see the same Keras.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
