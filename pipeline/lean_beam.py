"""Less fixed cost per Beam step: Beam inspects each DoFn once, not at every ask.

Building, translating and running a Beam pipeline asks
``apache_beam.transforms.userstate.get_dofn_specs`` about the same DoFn
many times (the ParDo, its runner-API form, every bundle's DoFnRunner).
Each answer walks ``dir(dofn)`` and takes ``inspect.signature`` of every
bound method: about 8 asks per DoFn and 130,000 signatures in one small
local run, 4.5 s of its 26 s in a profile (cProfile, 200 images).

The answer depends only on the DoFn's methods and their default arguments,
which do not change once the DoFn exists, so :func:`install` keeps it per
DoFn object for as long as that object lives. Beam's own function does the
work on the first ask; a DoFn that cannot be weakly referenced is not kept.
Callers get fresh sets each time, as before.
"""

from __future__ import annotations

import weakref

_answers: dict[int, tuple[weakref.ref, tuple[set, set]]] = {}


def _remembering(inspect_dofn):
    def get_dofn_specs(dofn):
        key = id(dofn)
        kept = _answers.get(key)
        if kept is None or kept[0]() is not dofn:
            answer = inspect_dofn(dofn)
            try:
                ref = weakref.ref(dofn, lambda _, key=key: _answers.pop(key, None))
            except TypeError:  # no weak references to it: ask Beam every time
                return answer
            kept = _answers[key] = (ref, answer)
        state_specs, timer_specs = kept[1]
        return set(state_specs), set(timer_specs)

    get_dofn_specs.remembers = True
    get_dofn_specs.__wrapped__ = inspect_dofn
    return get_dofn_specs


def install() -> None:
    """Call before a Beam pipeline is built; installing twice does nothing."""
    from apache_beam.transforms import userstate

    if not installed():
        userstate.get_dofn_specs = _remembering(userstate.get_dofn_specs)


def installed() -> bool:
    """Whether Beam's DoFn inspection is remembered in this process (tests)."""
    from apache_beam.transforms import userstate

    return getattr(userstate.get_dofn_specs, "remembers", False)
