"""A small profile of a set of examples, and how far two profiles drift apart.

The profile counts what a model's quality depends on and what changes when
the photos that arrive change: examples per class, and histograms of the
images' byte lengths and pixel counts (powers of two, read from the image
headers without decoding). The Trainer stores the profile of its training
data inside the exported model (``assets.extra/data_profile.json``), so the
last blessed model carries it wherever it goes; the drift gate
(``components/drift_gate/``) profiles a new run's training data and compares:

- the class distribution by the L-infinity distance of the class shares;
- each histogram by the Jensen-Shannon divergence (base 2: 0 same, 1 disjoint).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import tensorflow as tf

from components.records import features
from components.records.image_budget import ImageHeaderError, read_dimensions

PROFILE_FILE = "data_profile.json"
# Histogram bins: floor(log2(value)) from these lowest exponents, clamped into the count.
_BINS = {"image_bytes": (8, 20), "image_pixels": (10, 22)}


def _bin(value: int, feature: str) -> int:
    lowest, count = _BINS[feature]
    exponent = int(math.log2(value)) if value > 0 else lowest
    return min(max(exponent - lowest, 0), count - 1)


def new_profile(num_classes: int) -> dict:
    """An empty profile, to add records to."""
    return {
        "examples": 0,
        "classes": [0] * num_classes,
        **{feature: [0] * count for feature, (_, count) in _BINS.items()},
    }


def add_record(profile: dict, record: bytes) -> dict:
    """Counts one serialized tf.Example into ``profile`` (and returns it)."""
    feature = tf.train.Example.FromString(record).features.feature
    profile["examples"] += 1
    class_id = feature[features.LABEL].int64_list.value[0] if features.LABEL in feature else -1
    if 0 <= class_id < len(profile["classes"]):
        profile["classes"][class_id] += 1
    image = feature[features.IMAGE].bytes_list.value[0] if features.IMAGE in feature else b""
    profile["image_bytes"][_bin(len(image), "image_bytes")] += 1
    try:
        dimensions = read_dimensions(image)
    except ImageHeaderError:
        dimensions = None
    if dimensions is not None:
        profile["image_pixels"][_bin(dimensions.pixels, "image_pixels")] += 1
    return profile


def merge_profiles(profiles: Iterable[dict], num_classes: int) -> dict:
    """The profile of the union of the examples that ``profiles`` counted."""
    total = new_profile(num_classes)
    for profile in profiles:
        total["examples"] += profile["examples"]
        for key in ["classes", *_BINS]:
            total[key] = [a + b for a, b in zip(total[key], profile[key], strict=True)]
    return total


def profile_records(records: Iterable[bytes], num_classes: int) -> dict:
    """The profile of serialized tf.Examples."""
    profile = new_profile(num_classes)
    for record in records:
        add_record(profile, record)
    return profile


def profile_files(files: list[str], num_classes: int) -> dict:
    """The profile of GZIP TFRecord files (ExampleGen's output)."""
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator()
    return profile_records(records, num_classes)


def write_profile(profile: dict, path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as handle:
        handle.write(json.dumps(profile, indent=1))


def read_profile(path: str) -> dict | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.loads(handle.read())


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [count / total for count in counts] if total else [0.0] * len(counts)


def class_distance(current: dict, baseline: dict) -> float:
    """The largest difference in any class's share of the examples (L-infinity)."""
    return max(abs(a - b) for a, b in zip(_shares(current["classes"]), _shares(baseline["classes"]), strict=True))


def js_divergence(p_counts: list[int], q_counts: list[int]) -> float:
    """Jensen-Shannon divergence of two histograms, base 2 (0..1)."""
    p, q = _shares(p_counts), _shares(q_counts)
    if not sum(p) or not sum(q):
        return 0.0
    middle = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(x, y):
        return sum(a * math.log2(a / b) for a, b in zip(x, y, strict=True) if a > 0)

    return max(0.0, min(1.0, (kl(p, middle) + kl(q, middle)) / 2))


def compare(current: dict, baseline: dict, max_class_drift: float, max_feature_drift: float) -> list[dict]:
    """One entry per check: what was measured, its distance, threshold, and whether it drifted.
    A threshold of 0 turns its check off."""
    checks = [("class distribution", "L-infinity distance", class_distance(current, baseline), max_class_drift)]
    for feature in _BINS:
        checks.append(
            (
                feature.replace("_", " "),
                "Jensen-Shannon divergence",
                js_divergence(current[feature], baseline[feature]),
                max_feature_drift,
            )
        )
    return [
        {
            "feature": feature,
            "measure": measure,
            "distance": round(distance, 4),
            "threshold": threshold,
            "drifted": bool(threshold) and distance > threshold,
        }
        for feature, measure, distance, threshold in checks
    ]
