"""pipeline/lean_beam/: what Beam did per transform, done once, gives the
answers Beam's own gives: DoFn inspection (stateful DoFns still run as
stateful), views of the pipeline's options, and the pickler's log level."""

import gc
import logging
import types
import weakref

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, TypeOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate

from pipeline import lean_beam
from pipeline.lean_beam import dill_trace, dofn_specs, option_views

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

    return dofn_specs.remembering(inspect), asked


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
    remembered = dofn_specs.remembering(beams_own_answer)

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
    from dill import _dill

    for wrapped in (userstate.get_dofn_specs, PipelineOptions.view_as, _dill._trace):  # not wrapped twice
        assert not getattr(wrapped.__wrapped__, "lean_beam", False)
    assert userstate.is_stateful_dofn(CountPerKey()) and not userstate.is_stateful_dofn(Double())
    with beam.Pipeline() as pipeline:
        counted = (
            pipeline
            | beam.Create([("a", 1), ("b", 1), ("a", 1), ("a", 1)])
            | beam.ParDo(CountPerKey())
            | beam.combiners.Count.PerElement()
        )
        assert_that(counted, equal_to([(("a", 1), 1), (("a", 2), 1), (("a", 3), 1), (("b", 1), 1)]))


# ------------------------------------------------------------------ views of the pipeline's options


def beams_own_view_as():
    return getattr(PipelineOptions.view_as, "__wrapped__", PipelineOptions.view_as)


def remembering_view_as():
    """A remembering view_as, and the list of the classes it asked Beam to make views of."""
    made = []

    def view_as(options, cls):
        made.append(cls)
        return beams_own_view_as()(options, cls)

    return option_views.remembering(view_as), made


def test_a_view_is_made_once_per_set_of_options_and_reads_and_writes_the_options_beams_would():
    view_as, made = remembering_view_as()
    options = PipelineOptions(["--direct_num_workers=2", "--no_pipeline_type_check"])
    for _ in range(3):
        assert view_as(options, DirectOptions).direct_num_workers == 2
        assert view_as(options, TypeOptions).pipeline_type_check is False
    assert made == [DirectOptions, TypeOptions]
    # A view asked of another view of the same options is the same view.
    assert view_as(view_as(options, StandardOptions), DirectOptions) is view_as(options, DirectOptions)
    # What one view sets, every view reads, Beam's own included.
    view_as(options, StandardOptions).streaming = True
    assert view_as(options, StandardOptions).streaming is True
    assert beams_own_view_as()(options, StandardOptions).streaming is True
    assert made == [DirectOptions, TypeOptions, StandardOptions]


def test_other_options_other_flags_and_a_missing_option_get_a_new_view():
    view_as, made = remembering_view_as()
    first, second = PipelineOptions(["--direct_num_workers=2"]), PipelineOptions(["--direct_num_workers=3"])
    assert view_as(first, DirectOptions).direct_num_workers == 2
    assert view_as(second, DirectOptions).direct_num_workers == 3
    assert len(made) == 2
    # The same options with their flags changed: a new view parses them (and,
    # as Beam's does, keeps the values the shared dict already holds).
    first._flags = ["--direct_num_workers=4", "--direct_running_mode=multi_processing"]
    assert view_as(first, DirectOptions).direct_running_mode == "in_memory"
    assert len(made) == 3
    # An option gone from the shared dict: a new view puts it back from the flags, as Beam's does.
    del first._all_options["direct_running_mode"]
    assert view_as(first, DirectOptions).direct_running_mode == "multi_processing"
    assert len(made) == 4
    # Options read from the command line depend on sys.argv: never kept.
    from_argv = PipelineOptions()
    view_as(from_argv, TypeOptions)
    view_as(from_argv, TypeOptions)
    assert len(made) == 6


def test_only_the_latest_views_are_kept():
    view_as, _ = remembering_view_as()
    for workers in range(option_views.KEPT_VIEWS + 10):
        view_as(PipelineOptions([f"--direct_num_workers={workers}"]), DirectOptions)
    assert len(view_as.views) == option_views.KEPT_VIEWS


# ------------------------------------------------------------------ the pickler's log level


def test_the_picklers_log_level_is_set_as_dills_own_sets_it_and_only_when_it_changes(monkeypatch):
    calls = []

    def trace(boolean):  # dill's _trace, counted
        calls.append(boolean)
        logging.getLogger("dill").setLevel(logging.INFO if boolean else logging.WARNING)

    set_trace = dill_trace.skipping_unchanged_levels(trace)
    logger = logging.getLogger("dill")
    monkeypatch.setattr(logger, "level", logging.WARNING)
    set_trace(False)
    set_trace(False)
    assert calls == [] and logger.level == logging.WARNING
    set_trace(True)
    set_trace(True)
    assert calls == [True] and logger.level == logging.INFO
    set_trace(False)
    assert calls == [True, False] and logger.level == logging.WARNING
