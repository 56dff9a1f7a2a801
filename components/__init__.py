"""Code that the pipeline's components run: preprocessing, training, models.

Components receive this code by dotted path (for example
``components.transform.preprocessing.preprocessing_fn``), so it must be importable in
the container image. Keras 2 (tf_keras) is pinned here too because a
component process may import this package before ``pipeline``.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
