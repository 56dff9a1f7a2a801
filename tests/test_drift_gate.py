"""The drift gate: a run whose training data differs too much from the last
blessed model's stops before the Trainer, naming what drifted. The
end-to-end check is a step of the weekly schedule in tests/test_spans.py."""

import pytest
import tensorflow as tf

from components.training_data import data_profile
from pipeline.data.shards import example_bytes
from pipeline.data.synth import synthetic_jpeg


def profile(classes, sizes=(), pixels=()):
    result = {"examples": sum(classes), "classes": list(classes), "image_bytes": [0] * 20, "image_pixels": [0] * 22}
    for size in sizes:
        result["image_bytes"][size] += 1
    for size in pixels:
        result["image_pixels"][size] += 1
    return result


def test_class_distance_is_the_largest_change_of_a_class_share():
    assert data_profile.class_distance(profile([10, 10, 10, 10, 10]), profile([20, 20, 20, 20, 20])) == 0
    assert data_profile.class_distance(profile([25, 25, 25, 25, 0]), profile([20] * 5)) == pytest.approx(0.2)


def test_js_divergence_is_zero_for_the_same_shape_and_one_for_disjoint_histograms():
    assert data_profile.js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0)
    assert data_profile.js_divergence([5, 0], [0, 5]) == pytest.approx(1)
    assert 0 < data_profile.js_divergence([5, 1], [1, 5]) < 1


def test_a_zero_threshold_turns_a_check_off():
    checks = data_profile.compare(profile([50, 0, 0, 0, 0], [3] * 50), profile([10] * 5, [9] * 50), 0, 0.3)
    by_feature = {check["feature"]: check for check in checks}
    assert not by_feature["class distribution"]["drifted"]
    assert by_feature["image bytes"]["drifted"] and by_feature["image bytes"]["distance"] == pytest.approx(1)


def test_a_split_smaller_than_one_batch_is_refused_naming_the_setting():
    from components.drift_gate.component import TooFewExamplesError, check_batch_size

    lineage = {"splits": {"train": {"examples": 40}, "eval": {"examples": 9}}}
    check_batch_size(lineage, 9)
    with pytest.raises(TooFewExamplesError, match=r"batch of 16 \(model.batch_size\): 9 for eval; lower"):
        check_batch_size(lineage, 16)
    check_batch_size(None, 4096)  # examples made before they were counted: the Trainer checks


def test_a_profile_counts_classes_bytes_and_pixels_from_the_headers(tmp_path):
    records = [
        example_bytes(synthetic_jpeg(seed=1, index=i, class_id=i % 5, size=64), i % 5, 64, 64) for i in range(10)
    ]
    path = tmp_path / "examples.gz"
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for record in records:
            writer.write(record)
    result = data_profile.profile_files([str(path)], 5)
    assert result["examples"] == 10 and result["classes"] == [2] * 5
    assert sum(result["image_pixels"]) == 10 and result["image_pixels"][12 - 10] == 10  # 64 x 64 = 2**12
