"""A component that stops the pipeline when ExampleValidator found anomalies.

ExampleValidator records anomalies but lets the pipeline go on. Transform
depends on this gate, so records that break the curated schema stop the run
before any preprocessing or training, with a message that names the split,
the feature and what is wrong.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
    """The examples do not match the curated schema."""


def read_anomalies(anomalies_uri: str, split_names: str) -> "list[str]":
    """One readable line per anomaly: ``split: feature 'x': description``."""
    problems = []
    for split in artifact_utils.decode_split_names(split_names):
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(io_utils.read_bytes_file(path))
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reasons = "; ".join(reason.description for reason in info.reason) or info.description
            problems.append(f"{split} split: feature {feature!r}: {reasons}")
        if anomalies.HasField("dataset_anomaly_info"):
            reasons = "; ".join(r.description for r in anomalies.dataset_anomaly_info.reason)
            problems.append(f"{split} split: {reasons}")
    return problems


@component
def AnomaliesGate(anomalies: InputArtifact[standard_artifacts.ExampleAnomalies]):
    """Fails when any split has an anomaly; does nothing otherwise."""
    problems = read_anomalies(anomalies.uri, anomalies.split_names)
    if problems:
        raise DataAnomaliesError(
            "the examples do not match the schema (schema/schema.pbtxt):\n  " + "\n  ".join(problems)
        )
