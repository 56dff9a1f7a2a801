"""The per-class gate: overall accuracy can hide one class collapsing, so the
Evaluator can also require every class's accuracy (its recall) to reach a
floor and not to drop against the last blessed model.

The gate in a real run (a class below its floor is named, nothing is pushed)
is one step of the end-to-end chain in tests/test_pipeline_e2e.py."""

import pytest

from pipeline.config_loading import load_config
from pipeline.quality_gate import eval_config


def thresholds(config):
    [metrics] = eval_config(config).metrics_specs
    return next(metric for metric in metrics.metrics if metric.class_name == "SparseCategoricalAccuracy")


def test_by_default_there_is_no_per_class_gate():
    config = eval_config(load_config(environ={}))
    assert len(config.slicing_specs) == 1
    assert not thresholds(load_config(environ={})).per_slice_thresholds


def test_per_class_thresholds_slice_on_the_class():
    config = load_config(overrides={"gate.min_class_accuracy": 0.6, "gate.max_class_accuracy_drop": 0.05}, environ={})
    [per_class] = thresholds(config).per_slice_thresholds
    assert [list(spec.feature_keys) for spec in per_class.slicing_specs] == [["class"]]
    assert per_class.threshold.value_threshold.lower_bound.value == pytest.approx(0.6)
    assert per_class.threshold.change_threshold.absolute.value == pytest.approx(-0.05)
    assert [list(spec.feature_keys) for spec in eval_config(config).slicing_specs] == [[], ["class"]]
