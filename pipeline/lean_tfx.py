"""A faster start: TFX's component package without the components a run never uses.

``tfx/components/__init__.py`` imports every standard component so that
``tfx.components.Evaluator`` works. Among them are the Tuner (it imports
Keras Tuner, which imports Keras 3 and matplotlib), the InfraValidator (the
Kubernetes client), the BulkInferrer and, through them, BigQuery's client
with its notebook widgets. This pipeline uses none of those; an import
profile (``python -X importtime``, at load 4) gave them about 10 s of the
43 s that importing the local runner took.

Importing this module calls :func:`install`, which registers
``tfx.components`` as the same package without running its ``__init__``:
its submodules (``tfx.components.evaluator.component``) import as usual.
The first time a name that only the ``__init__`` defines is asked for
(``from tfx.components import Tuner``), the real ``__init__`` runs, so
nothing that relies on it breaks; it is only slower.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

PACKAGE = "tfx.components"


def install() -> None:
    """Call before anything imports TFX's components; does nothing after."""
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:  # no TFX here: nothing to make lean
        return
    package = importlib.util.module_from_spec(spec)

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            return importlib.import_module(f"{PACKAGE}.{name}")  # a submodule: the usual import
        del package.__getattr__  # once: the real __init__ defines the rest
        spec.loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = __getattr__
    sys.modules[PACKAGE] = package
    import tfx

    tfx.components = package


def full_init_ran() -> bool:
    """Whether ``tfx.components``' own ``__init__`` has run (tests)."""
    package = sys.modules.get(PACKAGE)
    return package is not None and "Tuner" in vars(package)


install()
