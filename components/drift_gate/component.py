"""A component that stops the run before training when the data drifted, or
when a split has too few examples for one batch.

It runs right after ExampleGen, before the Beam steps that read the
examples (statistics, Transform), so a run that cannot train stops in
seconds: ExampleGen counted each split (``data_lineage.py``), and a split
smaller than ``model.batch_size`` could not give the Trainer one step.

It compares the training split of this run's examples with the training
data of the last blessed model, whose profile the Trainer stored inside that
model (``components/training_data/data_profile.py``). The blessed model comes from the
same resolver as the Evaluator's baseline, so the gate finds it the same way
locally and on Vertex AI. Beyond ``gate.max_class_drift`` (class shares,
L-infinity) or ``gate.max_feature_drift`` (image byte lengths and pixel
counts, Jensen-Shannon) the run stops, naming the feature, the distance and
the threshold; without a blessed model (the first run) there is nothing to
compare with. The comparison is written into the gate's output either way,
for the summary and the report.
"""

# No `from __future__ import annotations`: TFX reads the component's type hints as objects.
import json
import os
from typing import Optional

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.experimental import simple_artifacts
from tfx.utils import path_utils

from components.training_data import data_lineage, data_profile
from schema import LABELS

REPORT_FILE = "drift.json"
TRAIN_SPLIT = "train"


class DataDriftError(RuntimeError):
    """This run's training data differs too much from the last blessed model's."""


class TooFewExamplesError(RuntimeError):
    """A split cannot fill one batch."""


def check_batch_size(lineage: dict | None, batch_size: int) -> None:
    """Raises TooFewExamplesError when a split has fewer examples than one batch
    (per replica: with several replicas the Trainer checks the global batch)."""
    splits = (lineage or {}).get("splits") or {}
    small = {name: profile["examples"] for name, profile in splits.items() if profile["examples"] < batch_size}
    if small:
        counts = ", ".join(f"{count} for {name}" for name, count in sorted(small.items()))
        raise TooFewExamplesError(
            f"too few examples for a batch of {batch_size} (model.batch_size): {counts}; "
            "lower model.batch_size or give more data"
        )


def baseline_profile(model_uri: str) -> Optional[dict]:
    """The profile the Trainer stored in a model's export, if it has one."""
    path = os.path.join(path_utils.serving_model_path(model_uri), "assets.extra", data_profile.PROFILE_FILE)
    return data_profile.read_profile(path)


def describe(drifted: list) -> str:
    return "; ".join(
        f"{check['feature']}: {check['measure']} {check['distance']:.3f} "
        f"is above the threshold {check['threshold']:.3f}"
        for check in drifted
    )


@component
def DriftGate(
    examples: InputArtifact[standard_artifacts.Examples],
    # TFX's generic Statistics type: a custom type would need its own module on Vertex AI.
    drift: OutputArtifact[simple_artifacts.Statistics],
    max_class_drift: Parameter[float],
    max_feature_drift: Parameter[float],
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
    batch_size: Parameter[int] = 1,
):
    """Fails when a split cannot fill a batch, or the training data drifted
    beyond a threshold; records the comparison."""
    lineage = data_lineage.read(examples.uri)
    check_batch_size(lineage, batch_size)
    # ExampleGen profiled the split as it wrote it; older examples are read here.
    current = data_lineage.split_profile(lineage, TRAIN_SPLIT)
    if current is None:
        split_uri = artifact_utils.get_split_uri([examples], TRAIN_SPLIT)
        current = data_profile.profile_files(sorted(tf.io.gfile.glob(os.path.join(split_uri, "*"))), len(LABELS))
    baseline = baseline_profile(baseline_model.uri) if baseline_model is not None else None
    checks = data_profile.compare(current, baseline, max_class_drift, max_feature_drift) if baseline else []
    record = {
        "current": current,
        "baseline": baseline,
        "checks": checks,
        "baseline_model": baseline_model.uri if baseline_model is not None else None,
    }
    tf.io.gfile.makedirs(drift.uri)  # a launcher need not have made the output folder
    with tf.io.gfile.GFile(os.path.join(drift.uri, REPORT_FILE), "w") as handle:
        handle.write(json.dumps(record, indent=1))
    drifted = [check for check in checks if check["drifted"]]
    if drifted:
        raise DataDriftError(
            f"the training data drifted from the last blessed model's ({baseline_model.uri}): {describe(drifted)}; "
            f"class shares now {_shares(current)} against {_shares(baseline)}. Set gate.max_class_drift or "
            "gate.max_feature_drift higher (0 turns a check off) if the change is expected"
        )


def _shares(profile: dict) -> str:
    total = sum(profile["classes"]) or 1
    return (
        "["
        + ", ".join(f"{name} {count / total:.2f}" for name, count in zip(LABELS, profile["classes"], strict=True))
        + "]"
    )
