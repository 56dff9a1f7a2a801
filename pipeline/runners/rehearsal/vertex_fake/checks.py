"""What keeps the fake honest: each call bound to the real SDK method's
signature, each request built as google-cloud-aiplatform's own type.

A fake that accepts what the SDK would not (a misspelled keyword, a field
the API does not have) lets a test pass and the cloud run fail. So every
fake method names the SDK method it stands in for (``@stands_in_for``), its
calls are bound to that method's signature, and ``surface_mismatches()``
lists where the fake and the installed SDK no longer agree.
"""

from __future__ import annotations

import functools
import importlib
import inspect


class RequestRefused(ValueError):
    """A request Google Cloud would refuse, naming what is wrong."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise RequestRefused(message)


def as_type(type_name: str, fields: dict, what: str = ""):
    """``fields`` as the aiplatform_v1 type ``type_name`` (e.g. "Model"):
    RequestRefused when the type has no such field or value."""
    from google.cloud.aiplatform_v1 import types

    try:
        return getattr(types, type_name)(fields)
    except (ValueError, TypeError, KeyError) as error:
        raise RequestRefused(f"{what or type_name} refused by google-cloud-aiplatform's type: {error}") from None


def real(path: str):
    """The SDK's own attribute at a dotted path, e.g.
    ``google.cloud.aiplatform.models.Model.upload``, looked up without binding."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            owner = inspect.getattr_static(owner, name)
            owner = owner.__func__ if isinstance(owner, (classmethod, staticmethod)) and name != parts[-1] else owner
        return owner
    raise ImportError(path)


def _is_instance_method(static) -> bool:
    return not isinstance(static, (classmethod, staticmethod))


def stands_in_for(path: str):
    """Marks a fake method as the SDK's ``path``. A call is bound to the real
    signature first (a keyword the SDK lacks is a TypeError, as it would be),
    then the fake gets every argument by name, the SDK's defaults filled in."""

    def decorate(function):
        @functools.wraps(function)
        def bound(self, *args, **kwargs):
            static = real(path)
            signature = inspect.signature(static if _is_instance_method(static) else static.__func__)
            # ``self`` is the fake's instance, or its class for a class method.
            arguments = signature.bind(self, *args, **kwargs)
            arguments.apply_defaults()
            named = dict(list(arguments.arguments.items())[1:])
            for parameter in signature.parameters.values():
                if parameter.kind is parameter.VAR_KEYWORD:
                    named.update(named.pop(parameter.name, {}))
            return function(self, **named)

        bound.stands_in_for = path
        return bound

    return decorate


def surface_mismatches(fake_classes) -> list[str]:
    """Where the fake differs from the installed SDK: a method or property the
    SDK's class lacks, a class method standing in for an instance method (or
    the reverse), a parameter the fake reads that the SDK's method has not."""
    found = []
    for fake in fake_classes:
        sdk_class = real(fake.SDK_CLASS)
        for name, static in vars(fake).items():
            if name.startswith("_") and name != "__init__":
                continue
            if name in ("SDK_CLASS", "fake") or not (callable(static) or isinstance(static, (property, classmethod))):
                continue
            where = f"{fake.SDK_CLASS}.{name}"
            function = static.__func__ if isinstance(static, classmethod) else static
            path = getattr(function, "stands_in_for", None)
            if path is None:
                if not hasattr(sdk_class, name):
                    found.append(f"{where}: the SDK has no such attribute")
                continue
            try:
                sdk_static = real(path)
            except (ImportError, AttributeError):
                found.append(f"{where}: the SDK has no {path}")
                continue
            if isinstance(static, classmethod) == _is_instance_method(sdk_static):
                found.append(f"{where}: a class method on one side, an instance method on the other")
            sdk_function = sdk_static if _is_instance_method(sdk_static) else sdk_static.__func__
            sdk_parameters = inspect.signature(sdk_function).parameters
            for parameter in list(inspect.signature(function.__wrapped__).parameters.values())[1:]:
                if parameter.kind is not parameter.VAR_KEYWORD and parameter.name not in sdk_parameters:
                    found.append(f"{where}: the SDK's method has no parameter {parameter.name!r}")
    return found
