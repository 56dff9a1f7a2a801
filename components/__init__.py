"""Code that the pipeline's components run: preprocessing, training, models.

Components receive this code by dotted path (for example
``components.transform.preprocessing.preprocessing_fn``), so it must be importable in
the container image. TensorFlow's environment is set here too because a
component process may import this package before ``pipeline``.
"""

from components.shared import tf_environment

tf_environment.configure()
