"""AutoGraph leaves tf_keras's own code alone, as it leaves Keras's.

When a ``tf.function`` is traced (a training step, an export signature),
AutoGraph rewrites the Python control flow of every function it calls into
graph ops, except in libraries it knows to be written for graphs already:
``tensorflow`` and ``keras`` among them. ``tf_keras`` (Keras 2 as a package
of its own, which this project uses because TensorFlow Transform needs it)
is not on that list, so every trace converted some 150 of tf_keras's
internal functions again: two thirds of a small run's Trainer CPU time
(21 s -> 7 s measured on 2 cores). It is the same Keras 2 code that
TensorFlow always ran unconverted under the name ``keras``.

Our own functions (augmentation, the signatures) are still converted.
"""

from __future__ import annotations

from tensorflow.python.autograph.core import config as autograph_config

PACKAGE = "tf_keras"


def leave_tf_keras_unconverted() -> None:
    """Adds the rule once; AutoGraph reads its rules at every conversion."""
    rules = autograph_config.CONVERSION_RULES
    if not any(isinstance(rule, autograph_config.DoNotConvert) and rule.matches(PACKAGE) for rule in rules):
        autograph_config.CONVERSION_RULES = (autograph_config.DoNotConvert(PACKAGE), *rules)
