"""Spans: data that arrives in numbered (or dated) folders, and the window of
the latest few that a run trains on.

A split pattern may hold TFX's ``{SPAN}`` placeholder (optionally with a
width, ``{SPAN:3}``, and a ``{VERSION}``), or the date specs
``{YYYY}-{MM}-{DD}`` (a date is span number "days since 1970-01-01"), e.g.
``span-{SPAN}/*.tfrec``. ExampleGen's driver resolves the latest span, on
this machine and on Vertex AI alike, and the run records it.

A rolling window (``data.spans = N``) is resolved here, inside ExampleGen's
executor, because nothing else can do it on both platforms: TFX's driver
resolves exactly one span, and the Kubeflow v2 compiler that Vertex AI runs
accepts only two resolvers (the latest artifact, with
``desired_num_of_artifacts=1``, and the latest blessed model), so a resolver
over the last N Examples artifacts compiles locally but not for Vertex AI.
The window is the latest N spans that exist (gaps are skipped), each at its
latest version.
"""

from __future__ import annotations

import copy
import os
import re

import tensorflow as tf
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2, range_config_pb2

_DATE_GROUPS = ("year", "month", "day")


def has_span_spec(pattern: str) -> bool:
    """Whether a pattern names spans with ``{SPAN}`` or the date specs."""
    return bool(re.search(example_gen_utils.SPAN_FULL_REGEX, pattern)) or any(
        spec in pattern for spec in example_gen_utils.DATE_SPECS
    )


def as_glob(pattern: str) -> str:
    """The pattern with every span, date and version spec as ``*``: the files
    of any span."""
    pattern = re.sub(example_gen_utils.SPAN_FULL_REGEX, "*", pattern)
    pattern = re.sub(example_gen_utils.VERSION_FULL_REGEX, "*", pattern)
    for spec in example_gen_utils.DATE_SPECS:
        pattern = pattern.replace(spec, "*")
    return pattern


def _span_regex(pattern: str) -> re.Pattern:
    """A regular expression for the pattern's paths that captures the span."""
    regex = re.escape(pattern)
    # re.escape turned the specs' braces and colons into escapes: match them so.
    regex = re.sub(
        r"\\\{SPAN(?::(\d+))?\\\}",
        lambda m: r"(?P<span>\d{%s})" % m.group(1) if m.group(1) else r"(?P<span>\d+)",
        regex,
    )
    regex = re.sub(r"\\\{VERSION(?::(\d+))?\\\}", r"\\d+", regex)
    for spec, group, width in zip(example_gen_utils.DATE_SPECS, _DATE_GROUPS, (4, 2, 2), strict=True):
        regex = regex.replace(re.escape(spec), r"(?P<%s>\d{%d})" % (group, width))
    regex = regex.replace(r"\*", r"[^/]*").replace(r"\?", r"[^/]")
    return re.compile(regex + "$")


def existing_spans(base: str, pattern: str) -> list[int]:
    """The span numbers that have files matching ``pattern`` under ``base``, ascending."""
    full = os.path.join(base, pattern)
    regex = _span_regex(full)
    found = set()
    for path in tf.io.gfile.glob(as_glob(full)):
        match = regex.match(path)
        if not match:
            continue
        groups = match.groupdict()
        if groups.get("span") is not None:
            found.add(int(groups["span"]))
        elif groups.get("year") is not None:
            found.add(example_gen_utils.date_to_span_number(*(int(groups[g]) for g in _DATE_GROUPS)))
    return sorted(found)


def resolve_span(base: str, split: example_gen_pb2.Input.Split, span: int) -> str:
    """The split's pattern for one span, at its latest version (TFX's own
    resolution, with the span fixed)."""
    fixed = copy.deepcopy(split)
    range_config = range_config_pb2.RangeConfig(
        static_range=range_config_pb2.StaticRange(start_span_number=span, end_span_number=span)
    )
    example_gen_utils.calculate_splits_fingerprint_span_and_version(base, [fixed], range_config)
    return fixed.pattern


def window(base: str, split: example_gen_pb2.Input.Split, latest: int, size: int) -> list[tuple[int, str]]:
    """``(span, pattern)`` of the latest ``size`` existing spans up to ``latest``,
    oldest first; ``split`` holds the pattern with its placeholders."""
    if not has_span_spec(split.pattern):
        return [(0, split.pattern)]
    older = [span for span in existing_spans(base, split.pattern) if span < latest]
    chosen = older[max(0, len(older) - (size - 1)) :] + [latest] if size > 1 else [latest]
    return [(span, resolve_span(base, split, span)) for span in chosen]
