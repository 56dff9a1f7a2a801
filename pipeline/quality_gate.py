"""The Evaluator's gate, as TFMA's EvalConfig: what blesses a model.

Accuracy above ``gate.min_accuracy`` and at most ``gate.max_accuracy_drop``
below the last blessed model's, overall and (when configured) on each class;
the confusion matrix is computed too, for the summary and the model card.
"""

from __future__ import annotations

import tensorflow_model_analysis as tfma

from components.records import features
from components.shared.eval_results import ACCURACY_CLASS
from components.trainer import signatures
from pipeline.config import Config


def accuracy_threshold(floor: float, max_drop: float) -> tfma.MetricThreshold:
    """At least ``floor``, and at most ``max_drop`` below the last blessed model
    (TFMA skips the comparison when there is no blessed model yet)."""
    return tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": floor}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_drop},
        ),
    )


def per_class_gate_on(gate) -> bool:
    return gate.min_class_accuracy > 0 or gate.max_class_accuracy_drop < 1


def eval_config(config: Config) -> tfma.EvalConfig:
    """The gate: accuracy above a floor and not much worse than the last blessed
    model, overall and (when configured) on each class's examples, whose
    accuracy is the class's recall; plus the confusion matrix that the
    summary's per-class accuracy is read from."""
    gate = config.gate
    slicing_specs = [tfma.SlicingSpec()]
    accuracy = tfma.MetricConfig(
        class_name=ACCURACY_CLASS, threshold=accuracy_threshold(gate.min_accuracy, gate.max_accuracy_drop)
    )
    if per_class_gate_on(gate):
        by_class = tfma.SlicingSpec(feature_keys=[features.LABEL])
        slicing_specs.append(by_class)
        accuracy.per_slice_thresholds.append(
            tfma.PerSliceMetricThreshold(
                slicing_specs=[by_class],
                threshold=accuracy_threshold(gate.min_class_accuracy, gate.max_class_accuracy_drop),
            )
        )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=signatures.EXAMPLES_SIGNATURE,
                label_key=features.LABEL,
                prediction_key=signatures.PROBABILITIES,
            )
        ],
        slicing_specs=slicing_specs,
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    accuracy,
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            )
        ],
    )
