"""pipeline/lean_beam.py: Beam's DoFn inspection, asked once per DoFn, gives
the answers Beam's own gives, and stateful DoFns still run as stateful."""

import gc
import types
import weakref

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate

from pipeline import lean_beam

COUNT = userstate.ReadModifyWriteStateSpec("count", VarIntCoder())
COUNT_STATE = beam.DoFn.StateParam(COUNT)  # Beam finds state through this default


class CountPerKey(beam.DoFn):
    """A stateful DoFn: numbers each key's elements 1, 2, 3, ..."""

    def process(self, element, count=COUNT_STATE):
        seen = (count.read() or 0) + 1
        count.write(seen)
        yield element[0], seen


class Double(beam.DoFn):
    def process(self, element):
        yield 2 * element


def beams_own_answer(dofn):
    return getattr(userstate.get_dofn_specs, "__wrapped__", userstate.get_dofn_specs)(dofn)


class Holder:
    """Has a method that Beam would find state in, to be set on a DoFn object."""

    def numbered(self, element, count=COUNT_STATE):
        yield element


def remembering_and_asked():
    """A remembering get_dofn_specs, and the list of the DoFns it asked Beam about."""
    asked = []

    def inspect(dofn):
        asked.append(dofn)
        return beams_own_answer(dofn)

    return lean_beam._remembering(inspect), asked


def test_answers_are_beams_own_and_asked_once_per_kind_of_dofn():
    remembered, asked = remembering_and_asked()
    stateful, plain, copy = CountPerKey(), Double(), Double()
    for _ in range(3):
        assert remembered(stateful) == beams_own_answer(stateful) == ({COUNT}, set())
        assert remembered(plain) == remembered(copy) == (set(), set())
    assert asked == [stateful, plain]  # the second Double is of the same kind: not inspected
    # Callers get sets of their own: changing one does not change the next answer.
    remembered(plain)[0].add(COUNT)
    assert remembered(plain) == (set(), set())


def test_what_an_object_holds_in_place_of_its_class_methods_is_a_kind_of_its_own():
    """As Beam's wrappers of functions do: a bound method set on the object
    is inspected (so its state is found), a plain function hides the class's."""
    remembered, asked = remembering_and_asked()
    with_state, hidden, plain = Double(), CountPerKey(), Double()
    with_state.process = Holder().numbered
    hidden.process = lambda element: [element]
    assert remembered(plain) == beams_own_answer(plain) == (set(), set())
    assert remembered(with_state) == beams_own_answer(with_state) == ({COUNT}, set())
    assert remembered(hidden) == beams_own_answer(hidden) == (set(), set())
    assert remembered(CountPerKey()) == ({COUNT}, set())
    again = Double()
    again.process = Holder().numbered  # another object, the same function: the same kind
    assert remembered(again) == ({COUNT}, set())
    assert asked == [plain, with_state, hidden, asked[3]] and isinstance(asked[3], CountPerKey)


def test_nothing_is_kept_alive_for_a_kind_of_dofn():
    """Neither the class nor a function set on the object outlives them here."""
    remembered = lean_beam._remembering(beams_own_answer)

    def a_dofn_of_a_new_class():
        class Temporary(beam.DoFn):
            def process(self, element):
                yield element

        return Temporary()

    def numbered(self, element, count=COUNT_STATE):
        yield element

    dofn = a_dofn_of_a_new_class()
    dofn.process = types.MethodType(numbered, object())
    assert remembered(dofn) == ({COUNT}, set())
    kind, function = weakref.ref(type(dofn)), weakref.ref(numbered)
    assert len(remembered.answers) == 1
    del dofn, numbered
    gc.collect()
    assert kind() is None and function() is None
    assert len(remembered.answers) == 0


def test_installed_once_a_stateful_pipeline_still_runs_as_stateful():
    lean_beam.install()
    lean_beam.install()
    assert lean_beam.installed()
    assert not getattr(userstate.get_dofn_specs.__wrapped__, "remembers", False)  # not wrapped twice
    assert userstate.is_stateful_dofn(CountPerKey()) and not userstate.is_stateful_dofn(Double())
    with beam.Pipeline() as pipeline:
        counted = (
            pipeline
            | beam.Create([("a", 1), ("b", 1), ("a", 1), ("a", 1)])
            | beam.ParDo(CountPerKey())
            | beam.combiners.Count.PerElement()
        )
        assert_that(counted, equal_to([(("a", 1), 1), (("a", 2), 1), (("a", 3), 1), (("b", 1), 1)]))
