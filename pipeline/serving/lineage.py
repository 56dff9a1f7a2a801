"""Where a pushed model came from, read from ML Metadata.

Every TFX component run is an execution in the metadata store, linked by
events to the artifacts it read and wrote, and by contexts to the pipeline
run it belonged to. From a model artifact this module follows the links

    Examples (ExampleGen: input_base, patterns) --------+
    TransformGraph -------------------------------------+-> Trainer -> Model
    Model -> Evaluator -> ModelEvaluation, ModelBlessing (blessed 1/0)

and the Trainer execution's ``pipeline_run`` context. The store is opened
read-only: looking never changes it, and a missing store is not created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.reporting import mlmd
from pipeline.reporting.mlmd import PIPELINE_RUN_CONTEXT, Event, Execution


@dataclass
class TrainingData:
    """The Examples artifact a Trainer read, and the files it was made from."""

    examples_uri: str
    input_base: str | None = None
    # {split name: file pattern} of the ExampleGen's input configuration.
    patterns: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelLineage:
    """What ML Metadata knows about one model artifact."""

    model_artifact_id: int
    model_uri: str
    pipeline_run: str | None = None
    training_data: TrainingData | None = None
    transform_graph_uri: str | None = None
    evaluation_uri: str | None = None
    blessing_uri: str | None = None
    blessed: bool | None = None
    # Whether the Evaluator compared the model with a baseline (TFMA then
    # stores the results under the model names 'candidate' and 'baseline').
    has_baseline: bool = False


@dataclass
class Blessing:
    """A ModelBlessing artifact's verdict and the model it judged."""

    uri: str
    blessed: bool
    model_artifact_id: int | None


class LineageReader:
    """Lineage queries on one metadata store."""

    def __init__(self, store: metadata_store.MetadataStore):
        self.store = store
        self._context_types = {t.id: t.name for t in store.get_context_types()}

    @classmethod
    def open(cls, metadata_path: Path) -> "LineageReader":
        return cls(mlmd.open_store(metadata_path))

    # ----------------------------------------------------------------- artifacts

    def find_model(self, model_uri: str | None, model_artifact_id: int | None):
        """The Model artifact with this id (if its uri agrees) or else this uri."""
        if model_artifact_id is not None:
            found = self.store.get_artifacts_by_id([int(model_artifact_id)])
            if found and (not model_uri or found[0].uri == model_uri):
                return found[0]
        if model_uri:
            found = self.store.get_artifacts_by_uri(model_uri)
            models = [a for a in found if a.type == "Model"] or found
            if models:
                return models[0]
        return None

    def blessing(self, blessing_uri: str) -> Blessing | None:
        """The ModelBlessing artifact at ``blessing_uri``, if the store has one."""
        for artifact in self.store.get_artifacts_by_uri(blessing_uri):
            if "blessed" in artifact.custom_properties:
                model_id = artifact.custom_properties.get("current_model_id")
                return Blessing(
                    uri=artifact.uri,
                    blessed=bool(mlmd.property_value(artifact.custom_properties["blessed"])),
                    model_artifact_id=int(mlmd.property_value(model_id)) if model_id is not None else None,
                )
        return None

    # ---------------------------------------------------------------- executions

    def _executions(self, events: list[Event], event_type, key: str) -> list[Execution]:
        """Executions linked by ``events`` of this type and key, oldest first.

        Components are recognised by their input and output keys, not their
        class names, so subclasses (a screening ExampleGen, say) are found too.
        """
        ids = sorted({e.execution_id for e in events if e.type == event_type and key in mlmd.event_keys(e)})
        return sorted(self.store.get_executions_by_id(ids), key=lambda e: e.id) if ids else []

    def _artifacts_of(self, execution: Execution, event_type) -> dict[str, metadata_store_pb2.Artifact]:
        """``{input or output key: artifact}`` of one execution."""
        events = [e for e in self.store.get_events_by_execution_ids([execution.id]) if e.type == event_type]
        by_id = {a.id: a for a in self.store.get_artifacts_by_id(sorted({e.artifact_id for e in events}))}
        return {key: by_id[e.artifact_id] for e in events if e.artifact_id in by_id for key in mlmd.event_keys(e)}

    def _producer(self, artifact_id: int, key: str) -> Execution | None:
        """The execution that wrote the artifact as output ``key`` (not a later cached reuse of it)."""
        events = self.store.get_events_by_artifact_ids([artifact_id])
        producers = self._executions(events, Event.OUTPUT, key)
        complete = [e for e in producers if e.last_known_state == Execution.COMPLETE]
        return (complete or producers or [None])[0]

    def _pipeline_run(self, execution: Execution) -> str | None:
        for context in self.store.get_contexts_by_execution(execution.id):
            if self._context_types.get(context.type_id) == PIPELINE_RUN_CONTEXT:
                return context.name
        return None

    def _training_data(self, examples: metadata_store_pb2.Artifact) -> TrainingData:
        data = TrainingData(examples_uri=examples.uri)
        example_gen = self._producer(examples.id, "examples")
        if example_gen is None:
            return data
        properties = {key: mlmd.property_value(v) for key, v in example_gen.custom_properties.items()}
        data.input_base = properties.get("input_base")
        try:
            splits = json.loads(properties.get("input_config") or "{}").get("splits", [])
            data.patterns = {split.get("name", ""): split.get("pattern", "") for split in splits}
        except (ValueError, AttributeError):
            pass  # an input config this code does not know: the base is still shown
        return data

    # -------------------------------------------------------------------- lineage

    def lineage(
        self, model_uri: str | None, model_artifact_id: int | None = None, blessing_uri: str | None = None
    ) -> ModelLineage | None:
        """The model's training data, run, evaluation and blessing; None when the
        store has no such model.

        When the model was evaluated several times (each later run compares
        it with the last blessed model), the evaluation whose blessing is
        ``blessing_uri`` (the one the push was based on) is chosen, else the
        latest.
        """
        model = self.find_model(model_uri, model_artifact_id)
        if model is None:
            return None
        lineage = ModelLineage(model_artifact_id=model.id, model_uri=model.uri)
        trainer = self._producer(model.id, "model")
        if trainer is not None:
            lineage.pipeline_run = self._pipeline_run(trainer)
            inputs = self._artifacts_of(trainer, Event.INPUT)
            if "examples" in inputs:
                lineage.training_data = self._training_data(inputs["examples"])
            if "transform_graph" in inputs:
                lineage.transform_graph_uri = inputs["transform_graph"].uri

        # The executions that read the model; the Evaluator's are those with an evaluation.
        evaluators = self._executions(self.store.get_events_by_artifact_ids([model.id]), Event.INPUT, "model")
        chosen = None
        for evaluator in reversed(evaluators):
            outputs = self._artifacts_of(evaluator, Event.OUTPUT)
            if "blessing" not in outputs or "evaluation" not in outputs:
                continue
            if chosen is None or outputs["blessing"].uri == blessing_uri:
                chosen = (evaluator, outputs)
            if outputs["blessing"].uri == blessing_uri:
                break
        if chosen is not None:
            evaluator, outputs = chosen
            lineage.evaluation_uri = outputs["evaluation"].uri
            lineage.blessing_uri = outputs["blessing"].uri
            blessed = outputs["blessing"].custom_properties.get("blessed")
            lineage.blessed = bool(mlmd.property_value(blessed)) if blessed is not None else None
            lineage.has_baseline = "baseline_model" in self._artifacts_of(evaluator, Event.INPUT)
        return lineage
