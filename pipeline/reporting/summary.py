"""What a run did, in figures a person reads at the end of ``flowers-tfx run``.

Everything here is read from the run's own artifacts: the statistics (examples
per split and class), the anomalies, the Trainer's per-epoch history, TFMA's
evaluation and validation results, the blessing, the push, and the
BatchInference step's tally when it ran.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2

import schema
from components.anomalies_gate.component import read_anomalies
from components.batch_inference.executor import SKIPPED_KEY, TALLY_KEY
from components.drift_gate.component import REPORT_FILE as DRIFT_REPORT_FILE
from components.example_gen.component import QUARANTINE_DIR, QUARANTINED_KEY, SCREENED_KEY
from components.pusher.component import ALREADY_SERVING_KEY
from components.records import features
from components.shared import eval_results
from components.trainer.outputs import HISTORY_FILE
from components.training_data import data_lineage
from pipeline.reporting.run_outputs import Artifact, ExecutionArtifacts

STATS_FILE = "FeatureStats.pb"


@dataclass
class Evaluation:
    """The candidate model's quality on the eval split, and the gate's verdict."""

    accuracy: float
    example_count: int
    confusion: list[list[int]]  # confusion[actual][predicted]
    blessed: bool
    reasons: list[str]
    baseline_accuracy: float | None = None

    @property
    def per_class_accuracy(self) -> dict[str, float | None]:
        """Accuracy on each class's examples (the confusion matrix's diagonal over rows)."""
        return eval_results.per_class_accuracy(self.confusion)


@dataclass
class RunSummary:
    """Everything the end-of-run summary and the report show."""

    timings: list[tuple[str, str, float]] = field(default_factory=list)
    split_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    history: dict | None = None
    evaluation: Evaluation | None = None
    pushed_path: str | None = None
    # True when the blessed model was already serving (no new version).
    already_serving: bool = False
    model_path: str | None = None
    examples_uri: str | None = None
    # Records ImportExampleGen screened, and how many it set aside.
    screened: int | None = None
    quarantined: int = 0
    failed: str | None = None
    # The drift gate's checks against the last blessed model's training data
    # (empty: no blessed model yet, or the gate did not run).
    drift_checks: list[dict] = field(default_factory=list)
    # The spans this run read (ExampleGen's data lineage: span, examples,
    # classes), and those the last blessed model it was compared with learned from.
    spans: list[dict] = field(default_factory=list)
    baseline_spans: list[int] = field(default_factory=list)
    # The BatchInference step's output folder, and its tally (images,
    # per_class, refused, model_version) or why it skipped.
    inference_uri: str | None = None
    inference_tally: dict | None = None
    inference_skipped: str | None = None


def class_counts(statistics_uri: str, split: str) -> dict[str, int]:
    """Examples per class in one split, from StatisticsGen's output."""
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    path = os.path.join(statistics_uri, f"Split-{split}", STATS_FILE)
    stats.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
    dataset = stats.datasets[0]
    counts = {"total": int(dataset.num_examples)}
    for feature in dataset.features:
        if feature.path.step == [features.LABEL] and feature.HasField("string_stats"):
            for bucket in feature.string_stats.rank_histogram.buckets:
                class_id = int(bucket.label)
                name = schema.LABELS[class_id] if 0 <= class_id < len(schema.LABELS) else bucket.label
                counts[name] = int(bucket.sample_count)
    return counts


def read_evaluation(evaluation_uri: str, blessing: Artifact, has_baseline: bool, gate) -> Evaluation:
    """The Evaluator's figures (components/shared/eval_results.py) and the gate's verdict in words."""
    found = eval_results.read(evaluation_uri, has_baseline)
    accuracy, baseline_accuracy = found.accuracy, found.baseline_accuracy
    blessed = bool(blessing.properties.get("blessed"))
    reasons = list(found.failures)
    if blessed:
        reasons = [f"accuracy {accuracy:.3f} is at least the floor {gate.min_accuracy:.3f}"]
        if baseline_accuracy is not None:
            reasons.append(
                f"and within {gate.max_accuracy_drop:.3f} of the last blessed model's {baseline_accuracy:.3f}"
            )
        else:
            reasons.append("and there is no blessed model before it to compare with")
        if gate.min_class_accuracy > 0:
            reasons.append(f"and every class's accuracy is at least {gate.min_class_accuracy:.3f}")
    return Evaluation(
        accuracy=accuracy,
        example_count=found.example_count,
        confusion=found.confusion,
        blessed=blessed,
        reasons=reasons,
        baseline_accuracy=baseline_accuracy,
    )


def summarize(artifacts: dict[str, ExecutionArtifacts], timings, gate) -> RunSummary:
    """Builds the summary from a run's artifacts (components that did not run are left out)."""
    summary = RunSummary(timings=list(timings))

    def first(node: str, key: str) -> Artifact | None:
        outputs = artifacts[node].outputs if node in artifacts else {}
        return (outputs.get(key) or [None])[0]

    examples = first("ImportExampleGen", "examples")
    if examples is not None:
        summary.examples_uri = examples.uri
        summary.screened = examples.properties.get(SCREENED_KEY)
        summary.quarantined = int(examples.properties.get(QUARANTINED_KEY) or 0)
        summary.spans = (data_lineage.read(examples.uri) or {}).get("spans", [])
    statistics = first("StatisticsGen", "statistics")
    if statistics is not None:
        for split in json.loads(statistics.properties.get("split_names", "[]")):
            summary.split_counts[split] = class_counts(statistics.uri, split)
    anomalies = first("ExampleValidator", "anomalies")
    if anomalies is not None:
        summary.anomalies = read_anomalies(anomalies.uri, anomalies.properties.get("split_names", "[]"))

    drift = first("DriftGate", "drift")
    if drift is not None:
        path = os.path.join(drift.uri, DRIFT_REPORT_FILE)
        if tf.io.gfile.exists(path):
            summary.drift_checks = json.loads(tf.io.gfile.GFile(path).read()).get("checks", [])

    model_run = first("Trainer", "model_run")
    if model_run is not None:
        history_path = os.path.join(model_run.uri, HISTORY_FILE)
        if tf.io.gfile.exists(history_path):
            summary.history = json.loads(tf.io.gfile.GFile(history_path).read())
    model = first("Trainer", "model")
    if model is not None:
        summary.model_path = os.path.join(model.uri, "Format-Serving")

    evaluation = first("Evaluator", "evaluation")
    blessing = first("Evaluator", "blessing")
    if evaluation is not None and blessing is not None:
        baselines = artifacts["Evaluator"].inputs.get("baseline_model") or []
        has_baseline = bool(baselines)
        if baselines:
            summary.baseline_spans = data_lineage.span_numbers(
                data_lineage.read(os.path.join(baselines[0].uri, "Format-Serving", "assets.extra"))
            )
        summary.evaluation = read_evaluation(evaluation.uri, blessing, has_baseline, gate)

    pushed = first("Pusher", "pushed_model")
    if pushed is not None and pushed.properties.get("pushed"):
        summary.pushed_path = str(pushed.properties.get("pushed_destination"))
        summary.already_serving = bool(pushed.properties.get(ALREADY_SERVING_KEY))
    inference = first("BatchInference", "inference_result")
    if inference is not None:
        summary.inference_uri = inference.uri
        summary.inference_skipped = inference.properties.get(SKIPPED_KEY) or None
        tally = inference.properties.get(TALLY_KEY)
        summary.inference_tally = json.loads(tally) if tally else None
    return summary


def format_inference(summary: RunSummary) -> list[str]:
    """The BatchInference step's lines: its tally, or why it skipped (none when it did not run)."""
    if summary.inference_skipped:
        return [f"Batch inference skipped: {summary.inference_skipped}"]
    tally = summary.inference_tally
    if not tally:
        return []
    classified = tally["images"] - tally["refused"]
    refused = f", {tally['refused']} refused" if tally["refused"] else ""
    return [
        f"Batch inference: {classified} of {tally['images']} image(s) classified{refused} "
        f"by version {tally['model_version']}",
        "  " + ", ".join(f"{name} {tally['per_class'].get(name, 0)}" for name in schema.LABELS),
        f"  predictions in {summary.inference_uri}",
    ]


def format_summary(summary: RunSummary) -> str:
    """The summary as plain text for the terminal."""
    lines = []
    if summary.split_counts:
        lines.append("Examples")
        names = list(schema.LABELS)
        lines.append(f"  {'split':<8}{'total':>7}" + "".join(f"{n:>12}" for n in names))
        for split, counts in summary.split_counts.items():
            lines.append(f"  {split:<8}{counts.get('total', 0):>7}" + "".join(f"{counts.get(n, 0):>12}" for n in names))
        for span in summary.spans:  # the rows of a rolling window, oldest first
            lines.append(
                f"  {'span ' + str(span['span']):<8}{span['examples']:>7}"
                + "".join(f"{count:>12}" for count in span["classes"])
            )
    if summary.screened is not None:
        quarantined = (
            f", {summary.quarantined} set aside in {os.path.join(summary.examples_uri, QUARANTINE_DIR)}"
            if summary.quarantined
            else ", none set aside"
        )
        lines.append(f"Records screened: {summary.screened}{quarantined}")
    lines.append("Anomalies")
    lines.extend(f"  {a}" for a in summary.anomalies or ["none"])
    if summary.drift_checks:
        lines.append("Data drift against the last blessed model's training data")
        for check in summary.drift_checks:
            limit = f"at most {check['threshold']:.3f}" if check["threshold"] else "not checked"
            lines.append(f"  {check['feature']:<20}{check['measure']:<28}{check['distance']:.3f} ({limit})")
    if summary.history:
        epochs = summary.history["epochs"]
        lines.append(f"Training ({summary.history['model']})")
        lines.append(f"  {'epoch':<7}{'loss':>8}{'accuracy':>10}{'val_loss':>10}{'val_accuracy':>14}")
        for i, loss in enumerate(epochs.get("loss", [])):
            row = [
                epochs.get(key, [None] * (i + 1))[i]
                for key in ("sparse_categorical_accuracy", "val_loss", "val_sparse_categorical_accuracy")
            ]
            lines.append(
                f"  {i + 1:<7}{loss:>8.4f}"
                + "".join(
                    f"{v:>{w}.4f}" if v is not None else f"{'-':>{w}}" for v, w in zip(row, (10, 10, 14), strict=False)
                )
            )
    evaluation = summary.evaluation
    if evaluation:
        lines.append(f"Evaluation on {evaluation.example_count} eval examples")
        lines.append(f"  accuracy {evaluation.accuracy:.3f}")
        for name, value in evaluation.per_class_accuracy.items():
            lines.append(f"    {name:<12}{value:.3f}" if value is not None else f"    {name:<12}no examples")
        verdict = "BLESSED" if evaluation.blessed else "NOT BLESSED"
        lines.append(f"  {verdict}: " + " ".join(evaluation.reasons))
        if summary.baseline_spans:
            spans = ", ".join(str(number) for number in summary.baseline_spans)
            plural = "s" if len(summary.baseline_spans) > 1 else ""
            lines.append(f"  (the last blessed model was trained on span{plural} {spans})")
    if summary.pushed_path and summary.already_serving:
        lines.append(f"Already serving from {summary.pushed_path}: nothing new pushed")
    elif summary.pushed_path:
        lines.append(f"Pushed to {summary.pushed_path}")
    elif evaluation is not None:
        lines.append("Not pushed: the serving directory is unchanged")
    lines.extend(format_inference(summary))
    return "\n".join(lines)
