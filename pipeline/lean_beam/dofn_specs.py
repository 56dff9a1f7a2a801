"""Beam inspects each kind of DoFn once, not at every ask.

Building, translating and running a Beam pipeline asks
``apache_beam.transforms.userstate.get_dofn_specs`` about the same DoFn
many times (the ParDo, its runner-API form, every bundle's DoFnRunner),
and about each copy of it that a bundle unpickles. Each answer walks
``dir(dofn)`` and takes ``inspect.signature`` of every bound method: 948
asks in one small local run (200 images), 0.95 s of its CPU, even after
answers were kept per DoFn object (which had already saved 4.5 s of 26).

The answer depends only on the bound methods that ``dir(dofn)`` finds and
on their default arguments: the DoFn's class, and whatever the object
holds in place of its class's attributes (Beam's wrappers of functions set
``process`` on the object, for example). It is kept per class and such a
*shape*; the 948 asks become 78 inspections. Entries hold the
class and the functions weakly, so nothing is kept alive for them; a shape
that holds something which cannot be weakly referenced is inspected at
every ask, as Beam does. Callers get fresh sets each time, as before.
"""

from __future__ import annotations

import types
import weakref


def _own_attributes(dofn) -> list[tuple[str, object]]:
    """What the object holds that ``dir`` sees instead of (or besides) its
    class's methods: (name, the function of a bound method, or None for
    anything else that hides a class attribute), sorted by name."""
    kind = type(dofn)
    own = []
    for name, value in vars(dofn).items():
        if isinstance(value, types.MethodType):
            own.append((name, value.__func__))
        elif hasattr(kind, name):
            own.append((name, None))
    return sorted(own, key=lambda item: item[0])


def remembering(inspect_dofn):
    # class -> {shape key: (weak references to the shape's functions, answer)}
    answers = weakref.WeakKeyDictionary()

    def get_dofn_specs(dofn):
        try:
            own = _own_attributes(dofn)
        except TypeError:  # no __dict__: ask Beam every time
            return inspect_dofn(dofn)
        per_shape = answers.setdefault(type(dofn), {})
        key = tuple((name, id(function)) for name, function in own)
        functions = [function for _, function in own if function is not None]
        kept = per_shape.get(key)
        # An id may be reused once its function is gone: the weak references tell.
        if kept is None or any(ref() is not function for ref, function in zip(kept[0], functions, strict=True)):
            answer = inspect_dofn(dofn)
            try:
                refs = tuple(weakref.ref(function) for function in functions)
            except TypeError:  # a function that cannot be weakly referenced: not kept
                return answer
            kept = per_shape[key] = (refs, answer)
        state_specs, timer_specs = kept[1]
        return set(state_specs), set(timer_specs)

    get_dofn_specs.answers = answers  # for the tests
    get_dofn_specs.__wrapped__ = inspect_dofn
    return get_dofn_specs
