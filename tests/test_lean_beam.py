"""pipeline/lean_beam.py: Beam's DoFn inspection, asked once per DoFn, gives
the answers Beam's own gives, and stateful DoFns still run as stateful."""

import gc

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


def test_answers_are_beams_own_and_asked_once_per_dofn():
    asked = []

    def inspect(dofn):
        asked.append(dofn)
        return beams_own_answer(dofn)

    remembered = lean_beam._remembering(inspect)
    stateful, plain = CountPerKey(), Double()
    for _ in range(3):
        assert remembered(stateful) == beams_own_answer(stateful) == ({COUNT}, set())
        assert remembered(plain) == (set(), set())
    assert asked == [stateful, plain]
    # Callers get sets of their own: changing one does not change the next answer.
    remembered(plain)[0].add(COUNT)
    assert remembered(plain) == (set(), set())


def test_nothing_is_kept_for_a_dofn_that_is_gone():
    remembered = lean_beam._remembering(beams_own_answer)
    dofn = Double()
    key = id(dofn)
    remembered(dofn)
    assert key in lean_beam._answers
    del dofn
    gc.collect()
    assert key not in lean_beam._answers


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
