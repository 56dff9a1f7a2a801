"""Less fixed cost per Beam step, with the same answers as Beam's own.

On small data a Beam step's time goes mostly to what Beam does for every
transform, not to the data. Three things it does again and again are done
once here, each by a wrapper around one of Beam's (or dill's) functions:

- ``dofn_specs``: the inspection of a DoFn for state and timers, kept per
  kind of DoFn (``userstate.get_dofn_specs``);
- ``option_views``: a view of the pipeline's options, kept per set of
  options (``PipelineOptions.view_as``);
- ``dill_trace``: the pickler's logger level, set only when it changes
  (``dill._dill._trace``).

:func:`install` puts the three in place; call it before a Beam pipeline is
built. The local runner does (pipeline/runners/local.py).
"""

from __future__ import annotations

from pipeline.lean_beam import dill_trace, dofn_specs, option_views


def _wrapped_functions():
    """(owner, attribute, wrapper) for each function wrapped."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.transforms import userstate
    from dill import _dill

    return [
        (userstate, "get_dofn_specs", dofn_specs.remembering),
        (PipelineOptions, "view_as", option_views.remembering),
        (_dill, "_trace", dill_trace.skipping_unchanged_levels),
    ]


def install() -> None:
    """Installing twice does nothing."""
    for owner, attribute, wrapper in _wrapped_functions():
        function = getattr(owner, attribute)
        if not getattr(function, "lean_beam", False):
            wrapped = wrapper(function)
            wrapped.lean_beam = True
            setattr(owner, attribute, wrapped)


def installed() -> bool:
    """Whether the three are in place in this process (tests)."""
    return all(getattr(getattr(owner, attribute), "lean_beam", False) for owner, attribute, _ in _wrapped_functions())
