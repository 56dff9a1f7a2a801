"""Spans: data that arrives in numbered folders, the latest span (or a
rolling window of the latest few) per run, and the lineage that says which
spans and how many examples of each class a model learned from.

The quick tests check span listing and window resolution on empty files;
the end-to-end test runs the pipeline as a weekly schedule would: span 1,
then span 2 arriving, then a run with nothing new, then a span that drifted
(the drift gate's end-to-end check), then the same span let through with a
two-span window.
"""

import json
import re
from pathlib import Path

import pytest
from file_trees import tree_hashes
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2

from components.example_gen import spans
from components.training_data import data_lineage, data_profile
from pipeline.config_loading import load_config
from pipeline.data.shards import DataError
from pipeline.data.source import check_local_data, split_glob


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def split(pattern: str) -> example_gen_pb2.Input.Split:
    return example_gen_pb2.Input.Split(name="all", pattern=pattern)


def test_spans_are_listed_from_numbered_folders_with_or_without_a_width(tmp_path):
    touch(tmp_path, "span-1/a.tfrec", "span-2/a.tfrec", "span-10/b.tfrec", "span-x/c.tfrec", "other/d.tfrec")
    assert spans.existing_spans(str(tmp_path), "span-{SPAN}/*.tfrec") == [1, 2, 10]
    touch(tmp_path, "w/007/a.tfrec", "w/12/a.tfrec")
    assert spans.existing_spans(str(tmp_path), "w/{SPAN:3}/*.tfrec") == [7]


def test_date_specs_are_spans_counted_in_days_as_tfx_counts_them(tmp_path):
    touch(tmp_path, "2026-11-30/a.tfrec", "2026-12-01/a.tfrec")
    listed = spans.existing_spans(str(tmp_path), "{YYYY}-{MM}-{DD}/*.tfrec")
    assert listed == [
        example_gen_utils.date_to_span_number(2026, 11, 30),
        example_gen_utils.date_to_span_number(2026, 12, 1),
    ]


def test_the_window_is_the_latest_existing_spans_each_at_its_latest_version(tmp_path):
    touch(tmp_path, "span-1/v-1/a.tfrec", "span-3/v-1/a.tfrec", "span-3/v-2/a.tfrec", "span-4/v-1/a.tfrec")
    template = split("span-{SPAN}/v-{VERSION}/*.tfrec")
    assert spans.window(str(tmp_path), template, 4, 1) == [(4, "span-4/v-1/*.tfrec")]
    # span 2 is missing: the window of three is the latest three that exist.
    assert spans.window(str(tmp_path), template, 4, 3) == [
        (1, "span-1/v-1/*.tfrec"),
        (3, "span-3/v-2/*.tfrec"),
        (4, "span-4/v-1/*.tfrec"),
    ]
    assert spans.window(str(tmp_path), template, 4, 9)[0][0] == 1
    assert spans.window(str(tmp_path), split("*.tfrec"), 0, 3) == [(0, "*.tfrec")]


def test_a_span_source_splits_before_the_placeholder(tmp_path):
    remote = split_glob("gs://bucket/flowers/span-{SPAN}/*.tfrec")
    assert (remote.base, remote.pattern) == ("gs://bucket/flowers", "span-{SPAN}/*.tfrec")
    local = split_glob(f"{tmp_path}/{{YYYY}}{{MM}}{{DD}}/*.tfrec")
    assert (local.base, local.pattern) == (str(tmp_path), "{YYYY}{MM}{DD}/*.tfrec")


def test_a_local_span_source_is_checked_against_every_span(tmp_path):
    config = load_config(environ={})
    location = split_glob(f"{tmp_path}/span-{{SPAN}}/*.tfrec")
    with pytest.raises(DataError, match=r"span-\{SPAN\}/\*\.tfrec: no files match this pattern"):
        check_local_data(location, config)
    touch(tmp_path, "span-1/a.tfrec")
    check_local_data(location, config)


def test_profiles_merge_to_the_profile_of_the_union():
    from pipeline.data.shards import example_bytes
    from pipeline.data.synth import synthetic_jpeg

    records = [
        example_bytes(synthetic_jpeg(seed=3, index=i, class_id=i % 5, size=32), i % 5, 32, 32) for i in range(12)
    ]
    whole = data_profile.profile_records(records, 5)
    parts = [data_profile.profile_records(records[:5], 5), data_profile.profile_records(records[5:], 5)]
    assert data_profile.merge_profiles(parts, 5) == whole


def test_the_lineage_is_described_by_span_and_by_split():
    lineage = {
        "spans": [
            {"span": 1, "examples": 10, "classes": [2] * 5, "pattern": "span-1/*"},
            {"span": 2, "examples": 5, "classes": [1] * 5, "pattern": "span-2/*"},
        ],
        "splits": {
            "eval": {"examples": 3, "classes": [1, 1, 1, 0, 0], "image_bytes": [3]},
            "train": {"examples": 12, "classes": [2, 2, 2, 3, 3], "image_bytes": [12]},
        },
    }
    short = data_lineage.short(lineage)
    assert "image_bytes" not in short["splits"]["train"] and "pattern" not in short["spans"][0]
    assert data_lineage.describe(short, ["a", "b", "c", "d", "e"]) == [
        "spans 1 (10 examples), 2 (5 examples)",
        "train 12: a 2, b 2, c 2, d 3, e 3",
        "eval 3: a 1, b 1, c 1, d 0, e 0",
    ]
    assert data_lineage.describe_spans(short) == "1, 2"


# ------------------------------------------------------------------ the schedule, end to end


def manifest_data(serving: Path, version: str) -> dict:
    return json.loads((serving / version / "assets.extra" / "push.json").read_text())["data"]


def examples_lineage(work: Path) -> dict:
    """The data lineage of the newest Examples artifact."""
    folders = sorted((work / "pipeline" / "ImportExampleGen" / "examples").iterdir(), key=lambda p: int(p.name))
    return data_lineage.read(str(folders[-1]))


def records_without_class(folders: list[Path], class_id: int) -> list[bytes]:
    """Every record of the shards in ``folders`` but those of one class."""
    import tensorflow as tf

    records = [r for d in folders for f in sorted(d.glob("*.tfrec")) for r in tf.data.TFRecordDataset(str(f))]
    examples = [(r.numpy(), tf.train.Example.FromString(r.numpy())) for r in records]
    return [r for r, example in examples if example.features.feature["class"].int64_list.value[0] != class_id]


@pytest.mark.e2e
def test_a_weekly_schedule_takes_each_new_span_and_stops_at_one_that_drifted(tmp_path, small_run):
    from pipeline.data.shards import write_shard
    from pipeline.data.synth import write_synthetic_shards

    data, work = tmp_path / "data", tmp_path / "work"
    source = f"{data}/span-{{SPAN}}/*.tfrec"
    settings = {"gate.max_accuracy_drop": 1.0}
    write_synthetic_shards(str(data / "span-1"), images=100, shards=1, seed=1, size=64)

    # Week 1: span 1 is trained and pushed; the manifest says so.
    result, out = small_run.run(source, work, **settings)
    assert result.succeeded and result.summary.pushed_path, out
    first = Path(result.summary.pushed_path).name
    assert [span["span"] for span in manifest_data(work / "serving", first)["spans"]] == [1]
    assert "span 1" in out
    assert result.summary.drift_checks == []  # no earlier model's data to compare with

    # Week 2: span 2 arrives; only it is read, and the candidate is gated against span 1's model.
    write_synthetic_shards(str(data / "span-2"), images=100, shards=1, seed=2, size=64)
    result, out = small_run.run(source, work, **settings)
    assert result.succeeded, out
    lineage = examples_lineage(work)
    assert [span["span"] for span in lineage["spans"]] == [2] and lineage["spans"][0]["examples"] == 100
    assert "the last blessed model was trained on span 1" in out
    assert (
        result.summary.pushed_path
        and manifest_data(work / "serving", Path(result.summary.pushed_path).name)["spans"][0]["span"] == 2
    )

    # Week 3: nothing arrived; everything comes from the cache and nothing is pushed.
    versions = sorted(p.name for p in (work / "serving").iterdir() if p.name.isdigit())
    result, out = small_run.run(source, work, **settings)
    assert result.succeeded, out
    assert sorted(p.name for p in (work / "serving").iterdir() if p.name.isdigit()) == versions
    assert "nothing new pushed" in out, out

    # Span 3 arrives without tulips (spans 1 and 2 less their tulips): the
    # drift gate stops the run before the Beam steps, naming what drifted,
    # and the serving directory is left as it was.
    kept = records_without_class([data / "span-1", data / "span-2"], 4)
    (data / "span-3").mkdir()
    write_shard(str(data / "span-3" / f"flowers00-{len(kept)}.tfrec"), kept)
    before = tree_hashes(work / "serving")
    drifted, out = small_run.run(source, work, **settings)
    assert not drifted.succeeded
    assert "DriftGate failed: the training data drifted from the last blessed model's" in out
    assert re.search(r"class distribution: L-infinity distance 0\.(1[1-9]|2)\d* is above the threshold 0\.100", out)
    assert "tulips 0.00] against [daisy" in out
    ran = [node for node, _, _ in drifted.summary.timings]
    assert "Trainer" not in ran and "StatisticsGen" not in ran and "Transform" not in ran
    assert tree_hashes(work / "serving") == before

    # With the class check off, and a rolling window of two spans: the run
    # trains on spans 2 and 3 (the training split holds both spans' examples),
    # and the summary shows the measured distances. (One run for both: each
    # run here costs the whole pipeline.)
    allowed, out = small_run.run(source, work, **{**settings, "gate.max_class_drift": 0, "data.spans": 2})
    assert allowed.succeeded, out
    checks = {check["feature"]: check for check in allowed.summary.drift_checks}
    assert checks["class distribution"]["distance"] > 0.1 and not checks["class distribution"]["drifted"]
    assert "Data drift against the last blessed model's training data" in out
    lineage = examples_lineage(work)
    assert [span["span"] for span in lineage["spans"]] == [2, 3]
    splits = lineage["splits"]
    assert splits["train"]["examples"] + splits["eval"]["examples"] == 100 + len(kept)
    trainer_runs = sorted((work / "pipeline" / "Trainer" / "model_run").iterdir(), key=lambda p: int(p.name))
    history = json.loads((trainer_runs[-1] / "history.json").read_text())
    assert history["train_examples"] == splits["train"]["examples"]
    assert "span 2" in out and "span 3" in out
    if allowed.summary.pushed_path:
        data_of_model = manifest_data(work / "serving", Path(allowed.summary.pushed_path).name)
        assert [span["span"] for span in data_of_model["spans"]] == [2, 3]
        assert data_of_model["splits"]["train"]["examples"] == splits["train"]["examples"]


def test_models_list_says_which_spans_and_classes_a_version_learned_from(tmp_path):
    from pipeline.serving.served_models import ServedModel, format_served_models

    data = {
        "spans": [{"span": 3, "examples": 40, "classes": [8] * 5}],
        "splits": {
            "train": {"examples": 32, "classes": [7, 7, 6, 6, 6]},
            "eval": {"examples": 8, "classes": [1, 1, 2, 2, 2]},
        },
    }
    text = format_served_models([ServedModel(version=7, path=str(tmp_path / "7"), data=data)], tmp_path)
    assert "  spans     3 (40 examples)" in text
    assert "  train     32: daisy 7, dandelion 7, roses 6, sunflowers 6, tulips 6" in text
    assert "  eval      8: daisy 1" in text
