"""``models list``: every pushed version, with how good it is and where it came from.

The push manifest of each version names its model artifact; ML Metadata then
gives the Evaluator's metrics and verdict, the training data and the pipeline
run (``pipeline/model_lineage.py``). Versions are listed even when the
metadata store is missing (a serving directory copied elsewhere, say); what
cannot be known is then said, not guessed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from components.shared import serving_layout
from components.training_data import data_lineage
from pipeline.reporting.mlmd import DamagedStore, StoreUnavailable
from pipeline.serving import versions as pushed_versions
from pipeline.serving.lineage import LineageReader, ModelLineage
from schema import LABELS


@dataclass
class Metrics:
    """The Evaluator's figures on the eval split."""

    accuracy: float
    example_count: int
    per_class_accuracy: dict[str, float | None]
    # Why the gate refused the model (empty when blessed).
    failures: list[str] = field(default_factory=list)


@dataclass
class ServedModel:
    """One version of a serving directory and what is known about it."""

    version: int
    path: str
    pushed_at: str | None = None
    model_uri: str | None = None
    blessed: bool | None = None
    metrics: Metrics | None = None
    lineage: ModelLineage | None = None
    # The push manifest's data lineage: spans, examples per class and split
    # (components/training_data/data_lineage.py); None for a model pushed before it was recorded.
    data: dict | None = None
    # The version's model card (assets.extra/model_card.md), when it has one.
    card: str | None = None
    # What could not be found out, and why.
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def card_metrics(folder: Path) -> Metrics | None:
    """The push-time figures the Pusher wrote into the version's model card
    (``model_card.json``, rounded to 4 places): plain JSON, so listing versions
    loads no TensorFlow. None when the version has no card with an evaluation."""
    path = serving_layout.join(str(folder), serving_layout.CARD_JSON)
    if not serving_layout.is_file(path):
        return None
    try:
        card = json.loads(serving_layout.read_text(path))
        evaluation, gate = card.get("evaluation") or {}, card.get("gate") or {}
        return Metrics(
            accuracy=float(evaluation["accuracy"]),
            example_count=int(evaluation["examples"]),
            per_class_accuracy=dict(evaluation["per_class_accuracy"]),
            failures=[] if gate.get("verdict") == "BLESSED" else list(gate.get("reasons") or []),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # an older or damaged card: the Evaluator's own output says it


def read_metrics(lineage: ModelLineage) -> Metrics:
    """Accuracy, example count and per-class accuracy from the TFMA result."""
    from pipeline.config import GateConfig
    from pipeline.reporting import summary  # heavy: TensorFlow Model Analysis
    from pipeline.reporting.run_outputs import Artifact

    blessing = Artifact(
        id=0,
        uri=lineage.blessing_uri or "",
        type_name="ModelBlessing",
        properties={"blessed": int(bool(lineage.blessed))},
    )
    evaluation = summary.read_evaluation(lineage.evaluation_uri, blessing, lineage.has_baseline, GateConfig())
    return Metrics(
        accuracy=evaluation.accuracy,
        example_count=evaluation.example_count,
        per_class_accuracy=evaluation.per_class_accuracy,
        failures=[] if evaluation.blessed else evaluation.reasons,
    )


def describe_version(version: int, folder: Path, reader: LineageReader | None, no_lineage_reason: str) -> ServedModel:
    """Everything the manifest and ML Metadata say about one version."""
    served = ServedModel(version=version, path=str(folder))
    try:
        manifest = pushed_versions.read_manifest(folder)
    except pushed_versions.ServingDirError as error:
        served.notes.append(str(error))
        return served
    if manifest is None:
        served.notes.append(f"no push manifest ({pushed_versions.MANIFEST_PATH}): its origin is unknown")
        return served
    served.pushed_at = manifest.get("pushed_at")
    served.model_uri = manifest.get("model_uri")
    served.data = manifest.get("data") if isinstance(manifest.get("data"), dict) else None
    served.blessed = pushed_versions.blessing_on_disk(manifest.get("blessing_uri"))
    card = manifest.get("model_card") if isinstance(manifest.get("model_card"), dict) else {}
    if card.get("path"):
        served.card = serving_layout.join(str(folder), card["path"])
    elif card.get("error"):
        served.notes.append(f"model card {card['error']}")
    if reader is None:
        served.notes.append(f"metrics unknown: {no_lineage_reason}")
        return served
    served.lineage = reader.lineage(served.model_uri, manifest.get("model_artifact_id"), manifest.get("blessing_uri"))
    if served.lineage is None:
        served.notes.append(f"metrics unknown: model {served.model_uri} is not in ML Metadata")
        return served
    if served.lineage.blessed is not None:
        served.blessed = served.lineage.blessed
    if served.lineage.evaluation_uri is None:
        served.notes.append("metrics unknown: ML Metadata has no evaluation of this model")
        return served
    try:
        served.metrics = card_metrics(folder) or read_metrics(served.lineage)
    except Exception as error:  # noqa: BLE001 - TFMA's errors vary; one version must not hide the others
        served.notes.append(f"metrics unreadable from {served.lineage.evaluation_uri}: {error}")
    return served


def list_served_models(serving_dir: Path, metadata_path: Path) -> list[ServedModel]:
    """Every numbered version in ``serving_dir``, oldest first."""
    reader, no_lineage_reason = None, ""
    try:
        reader = LineageReader.open(metadata_path)
    except (StoreUnavailable, DamagedStore) as error:  # the push manifests still list every version
        no_lineage_reason = str(error)
    return [
        describe_version(version, folder, reader, no_lineage_reason)
        for version, folder in pushed_versions.version_dirs(serving_dir).items()
    ]


def _verdict(blessed: bool | None) -> str:
    return {True: "BLESSED", False: "NOT BLESSED", None: "blessing unknown"}[blessed]


def format_served_models(models: list[ServedModel], serving_dir: Path) -> str:
    """One block per version, for the terminal."""
    if not models:
        return f"No pushed versions in {serving_dir}"
    lines = [f"{len(models)} version(s) in {serving_dir}"]
    for served in models:
        lines.append("")
        pushed = served.pushed_at or "at an unknown time"
        lines.append(f"version {served.version}  pushed {pushed}  {_verdict(served.blessed)}")
        if served.metrics:
            metrics = served.metrics
            lines.append(f"  accuracy  {metrics.accuracy:.3f} on {metrics.example_count} eval examples")
            per_class = ", ".join(
                f"{name} {value:.2f}" if value is not None else f"{name} -"
                for name, value in metrics.per_class_accuracy.items()
            )
            lines.append(f"  per class {per_class}")
            lines.extend(f"  refused:  {reason}" for reason in metrics.failures)
        for line in data_lineage.describe(served.data, list(LABELS)):  # spans, then each split's classes
            label, _, rest = line.partition(" ")
            lines.append(f"  {label:<9} {rest}")
        lineage = served.lineage
        if lineage and lineage.training_data:
            data = lineage.training_data
            patterns = ", ".join(f"{split}: {pattern}" for split, pattern in data.patterns.items())
            source = f"{data.input_base} ({patterns})" if data.input_base else "unknown source"
            lines.append(f"  data      {source}")
            lines.append(f"  examples  {data.examples_uri}")
        if lineage:
            lines.append(f"  run       {lineage.pipeline_run or 'unknown'}")
        if served.model_uri:
            lines.append(f"  model     {served.model_uri}")
        if served.card:
            lines.append(f"  card      {served.card}  (flowers-tfx models show {served.version})")
        lines.extend(f"  note:     {note}" for note in served.notes)
    return "\n".join(lines)


def read_card(serving_dir: str, version: int, as_json: bool = False) -> str:
    """The model card of one version (Markdown, or its JSON); FlowersError
    naming what is missing, or why the Pusher wrote none."""
    from pipeline.errors import FlowersError

    folder = pushed_versions.version_dirs(serving_dir).get(version)
    if folder is None:
        raise FlowersError(f"{serving_dir}: no version {version}")
    path = serving_layout.join(str(folder), serving_layout.CARD_JSON if as_json else serving_layout.CARD_MD)
    if not serving_layout.is_file(path):
        try:
            card = (pushed_versions.read_manifest(folder) or {}).get("model_card") or {}
        except pushed_versions.ServingDirError:
            card = {}
        why = card.get("error") if isinstance(card, dict) else None
        raise FlowersError(f"{path}: no model card ({why or 'pushed before versions carried one'})")
    return serving_layout.read_text(path)
