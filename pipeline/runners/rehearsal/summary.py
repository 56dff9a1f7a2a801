"""The summary at the end of a rehearsal: the one ``flowers-tfx run`` prints.

``run`` reads its run's executions from ML Metadata; a rehearsal has the
tasks' ExecutorInputs and output files instead, which name the same
artifacts (gs:// URLs, read here under the root) with their custom
properties as metadata. The gate's thresholds, which the summary quotes,
are read back from the Evaluator's ``eval_config`` parameter, so they are
the spec's, not this checkout's configuration.
"""

from __future__ import annotations

from dataclasses import asdict

from google.protobuf import json_format

from components.shared import eval_results
from pipeline.config import GateConfig
from pipeline.reporting.run_outputs import Artifact, ExecutionArtifacts
from pipeline.runners.rehearsal.storage import Storage


def gate_of(eval_config_json: str) -> GateConfig:
    """The [gate] thresholds that ``quality_gate.eval_config`` turned into this EvalConfig."""
    import tensorflow_model_analysis as tfma

    config = json_format.Parse(eval_config_json, tfma.EvalConfig(), ignore_unknown_fields=True)
    return GateConfig(**asdict(eval_results.thresholds_of(config)))


def _artifacts(entries: dict, storage: Storage) -> dict[str, list[Artifact]]:
    return {
        key: [
            Artifact(
                id=0, uri=storage.to_local(artifact["uri"]), type_name="", properties=dict(artifact.get("metadata", {}))
            )
            for artifact in entry.get("artifacts", [])
        ]
        for key, entry in entries.items()
    }


def summary_text(produced: dict[str, dict], inputs: dict[str, dict], results: list, storage: Storage) -> str:
    """``format_summary`` of the rehearsal's tasks (heavy: TFMA reads the evaluation)."""
    from pipeline.reporting.summary import format_summary, summarize

    artifacts = {
        name: ExecutionArtifacts(
            inputs=_artifacts(inputs.get(name, {}).get("artifacts", {}), storage),
            outputs=_artifacts(outputs, storage),
        )
        for name, outputs in produced.items()
    }
    eval_config = inputs.get("Evaluator", {}).get("parameterValues", {}).get("eval_config")
    gate = gate_of(eval_config) if eval_config else GateConfig()
    timings = [(result.name, result.status, result.seconds) for result in results]
    return format_summary(summarize(artifacts, timings, gate))
