"""The per-class gate: overall accuracy can hide one class collapsing, so the
Evaluator can also require every class's accuracy (its recall) to reach a
floor and not to drop against the last blessed model."""

import io
from pathlib import Path

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


@pytest.mark.e2e
@pytest.mark.slow
def test_a_class_below_its_floor_is_named_and_nothing_is_pushed(tmp_path):
    from pipeline.data.synth import write_synthetic_shards
    from pipeline.runners.local import run_local

    shards = tmp_path / "shards"
    write_synthetic_shards(str(shards), images=200, shards=2, seed=8, size=64)
    overrides = {
        "data.source": f"{shards}/*.tfrec",
        "run.work_dir": str(tmp_path / "work"),
        "model.image_size": 32,
        "model.batch_size": 16,
        "model.epochs": 1,
        "gate.min_accuracy": 0,
        "gate.min_class_accuracy": 0.99,
    }
    out = io.StringIO()
    result = run_local(load_config(overrides=overrides, environ={}), out)
    assert result.succeeded, out.getvalue()
    evaluation = result.summary.evaluation
    assert not evaluation.blessed
    # One epoch on 200 pictures leaves some class below 0.99; each is named with its value and the floor.
    per_class = {name: value for name, value in evaluation.per_class_accuracy.items() if value is not None}
    below = sorted(name for name, value in per_class.items() if value < 0.99)
    assert below
    for name in below:
        reason = next(r for r in evaluation.reasons if f"on class {name} " in r)
        assert reason == f"sparse_categorical_accuracy on class {name} {per_class[name]:.3f} is below the floor 0.990"
    assert "NOT BLESSED: sparse_categorical_accuracy on class" in out.getvalue()
    assert not Path(tmp_path / "work" / "serving").exists() or not any((tmp_path / "work" / "serving").iterdir())
