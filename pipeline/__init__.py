"""The flowers TFX pipeline: DAG, configuration, runners and command line.

Importing this package sets TensorFlow's environment (Keras 2, quiet C++
logs) before TensorFlow is imported anywhere: see
``components/shared/tf_environment.py``.
"""

from components.shared import tf_environment

tf_environment.configure()
