"""The Evaluator's output, read in one place.

TFMA writes metrics, plots (the confusion matrix) and validation results
into the ``evaluation`` artifact, with the EvalConfig that holds the gate's
thresholds. The run summary, ``models list`` and the model card the Pusher
writes all need the same figures, so they all read them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import schema
from components.records import features

# TFMA's name of the accuracy metric in its results, and its class in the EvalConfig.
ACCURACY = "sparse_categorical_accuracy"
ACCURACY_CLASS = "SparseCategoricalAccuracy"
BASELINE = "baseline"
CANDIDATE = "candidate"


@dataclass
class Thresholds:
    """The gate, as the EvalConfig states it (0 and 1: the check is off)."""

    min_accuracy: float = 0.0
    max_accuracy_drop: float = 1.0
    min_class_accuracy: float = 0.0
    max_class_accuracy_drop: float = 1.0


@dataclass
class EvalResults:
    """The candidate's figures on the eval split (and the baseline's, when it had one)."""

    accuracy: float
    example_count: int
    confusion: list[list[int]]  # confusion[actual][predicted]
    failures: list[str]  # why the gate refused the model, one sentence each
    thresholds: Thresholds = field(default_factory=Thresholds)
    baseline_accuracy: float | None = None
    baseline_confusion: list[list[int]] | None = None

    @property
    def per_class_accuracy(self) -> dict[str, float | None]:
        return per_class_accuracy(self.confusion)

    @property
    def baseline_per_class_accuracy(self) -> dict[str, float | None] | None:
        return per_class_accuracy(self.baseline_confusion) if self.baseline_confusion else None


def per_class_accuracy(confusion: list[list[int]]) -> dict[str, float | None]:
    """Accuracy on each class's examples (its recall): the diagonal over the row; None without examples."""
    result = {}
    for class_id, name in enumerate(schema.LABELS):
        total = sum(confusion[class_id])
        result[name] = confusion[class_id][class_id] / total if total else None
    return result


def thresholds_of(eval_config) -> Thresholds:
    """The accuracy thresholds that ``pipeline/quality_gate.eval_config`` put into a tfma.EvalConfig."""
    found = Thresholds()
    for metrics_spec in eval_config.metrics_specs:
        for metric in metrics_spec.metrics:
            if metric.class_name != ACCURACY_CLASS:
                continue
            found.min_accuracy = metric.threshold.value_threshold.lower_bound.value
            if metric.threshold.HasField("change_threshold"):
                found.max_accuracy_drop = -metric.threshold.change_threshold.absolute.value
            for per_slice in metric.per_slice_thresholds:
                found.min_class_accuracy = per_slice.threshold.value_threshold.lower_bound.value
                if per_slice.threshold.HasField("change_threshold"):
                    found.max_class_accuracy_drop = -per_slice.threshold.change_threshold.absolute.value
    return found


def _confusion_matrix(plots) -> list[list[int]]:
    size = len(schema.LABELS)
    matrix = [[0] * size for _ in range(size)]
    for _, plot in plots:
        data = plot[""][""].get("multiClassConfusionMatrixAtThresholds", {})
        for entry in data.get("matrices", [{}])[0].get("entries", []):
            actual = int(entry.get("actualClassId", 0))
            predicted = int(entry.get("predictedClassId", 0))
            if 0 <= actual < size and 0 <= predicted < size:
                matrix[actual][predicted] += int(entry.get("numWeightedExamples", 0))
    return matrix


def _overall_metrics(result) -> dict:
    for slice_key, metrics in result.slicing_metrics:
        if slice_key == ():
            return {name: value.get("doubleValue") for name, value in metrics[""][""].items()}
    return {}


def _slice_name(slice_key) -> str:
    """``class roses`` for a per-class slice; empty for the whole eval split."""
    for single in slice_key.single_slice_keys:
        if single.column == features.LABEL:
            class_id = int(single.int64_value or single.bytes_value or 0)
            name = schema.LABELS[class_id] if 0 <= class_id < len(schema.LABELS) else str(class_id)
            return f"class {name}"
    return ""


def failure_reason(failure, slice_key=None) -> str:
    """One sentence for one failed threshold of TFMA's validation result."""
    name = failure.metric_key.name
    where = _slice_name(slice_key) if slice_key is not None else ""
    if where:
        name = f"{name} on {where}"
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if failure.metric_key.is_diff:
        allowed = -threshold.change_threshold.absolute.value
        return f"{name} is {-value:.3f} below the last blessed model's (at most {allowed:.3f} allowed)"
    floor = threshold.value_threshold.lower_bound.value
    return f"{name} {value:.3f} is below the floor {floor:.3f}"


def read(evaluation_uri: str, has_baseline: bool | None = None) -> EvalResults:
    """The figures in an Evaluator's ``evaluation`` folder. ``has_baseline``
    None: whether a baseline was evaluated is read from the folder itself."""
    import tensorflow_model_analysis as tfma  # heavy; only where an evaluation is read
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config, _, _, model_locations = eval_config_writer.load_eval_run(evaluation_uri)
    if has_baseline is None:
        has_baseline = BASELINE in (model_locations or {})
    result = tfma.load_eval_result(evaluation_uri, model_name=CANDIDATE if has_baseline else None)
    metrics = _overall_metrics(result)
    found = EvalResults(
        accuracy=float(metrics.get(ACCURACY) or 0.0),
        example_count=int(metrics.get("example_count") or 0),
        confusion=_confusion_matrix(result.plots),
        failures=[],
        thresholds=thresholds_of(eval_config) if eval_config is not None else Thresholds(),
    )
    if has_baseline:
        baseline = tfma.load_eval_result(evaluation_uri, model_name=BASELINE)
        found.baseline_accuracy = _overall_metrics(baseline).get(ACCURACY)
        found.baseline_confusion = _confusion_matrix(baseline.plots)
    validation = tfma.load_validation_result(evaluation_uri)
    found.failures = [
        failure_reason(failure, per_slice.slice_key)
        for per_slice in validation.metric_validations_per_slice
        for failure in per_slice.failures
    ]
    return found
