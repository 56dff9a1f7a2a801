"""Beam's pickler sets the ``dill`` logger's level only when it changes.

After every pickle and unpickle, Beam calls ``dill._dill._trace(False)``,
which sets the ``dill`` logger's level to WARNING. Each ``setLevel`` clears
the cached levels of every logger in the process (TensorFlow, TFX and Beam
make thousands), even when the level was already WARNING: 6,986 times in
one small local run (200 images), 1.3 s of its CPU in a profile. The
``_trace`` here sets the same levels, and skips setting a level the logger
already has.
"""

from __future__ import annotations

import logging


def skipping_unchanged_levels(trace):
    """``trace`` (dill's ``_trace``), setting the logger's level only when it changes."""
    logger = logging.getLogger("dill")

    def set_trace(boolean):
        if logger.level != (logging.INFO if boolean else logging.WARNING):
            trace(boolean)

    set_trace.__wrapped__ = trace
    return set_trace
