"""ImportExampleGen that screens every record before the pipeline uses it.

TFX's ImportExampleGen copies records as they are; one image that does not
decode then fails Transform deep inside a Beam job, with no word of which
shard it came from. This ExampleGen reads each shard itself and checks every
record: a tf.Example with one ``image`` that TensorFlow decodes (JPEG, PNG,
grayscale or CMYK, any size), one ``class`` in 0..4, and ``label``, ``size``
and ``one_hot_class`` of the right shape and agreeing with ``class`` when
present. Good records go on to the usual train/eval splits.

Each image's width and height are read from its header before TensorFlow
decodes it: one over the pixel budget (``data.max_image_pixels``, see
``components/records/image_budget.py``) is a bad record and is never decoded: a 64 KB PNG that
declares 23000 x 23000 pixels is refused in microseconds instead of taking
gigabytes to decode here and again in Transform.

The policy for bad records (``data.max_bad_fraction``):
- none at all allowed (the default): the run stops, listing each bad record
  by shard and index with its reasons;
- up to that fraction: they are set aside into ``<examples>/quarantine/``
  (the raw records, and ``reasons-*.jsonl``) and the run goes on; the run's
  summary shows how many.
A shard that is truncated or corrupted (bad length or CRC) always stops the
run: the records after the damage cannot be counted, let alone checked.

When the input patterns name spans (``span-{SPAN}/*.tfrec``), TFX's driver
resolves the latest span and this executor reads the window of the latest
``data.spans`` spans (``spans.py``). While the records are written it counts
each span's examples per class and profiles each output split, into
``data_lineage.json`` in the Examples artifact (``data_lineage.py``).
"""

from __future__ import annotations

import json
import os
import re

import apache_beam as beam
import tensorflow as tf
from google.protobuf import struct_pb2
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import component as example_gen_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.example_gen import screening, spans
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.training_data import data_lineage, data_profile
from schema import LABELS

QUARANTINE_DIR = "quarantine"
SCREENED_KEY = "screened_records"
QUARANTINED_KEY = "quarantined_records"
# The spans of a rolling window, e.g. "2, 3" (TFX's own `span` property is the latest).
SPANS_KEY = "spans"
# Beside the quarantine: each output split's profile, for the data lineage.
_PROFILE_PREFIX = "profile-"


class ProfileSplit(beam.CombineFn):
    """The profile (``data_profile.py``) of one output split, counted as it is written."""

    def create_accumulator(self):
        return data_profile.new_profile(len(LABELS))

    def add_input(self, profile, record):
        return data_profile.add_record(profile, record)

    def merge_accumulators(self, profiles):
        return data_profile.merge_profiles(profiles, len(LABELS))

    def extract_output(self, profile):
        return profile


def _file_tag(split_pattern: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", split_pattern).strip("_") or "all"


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _ScreenRecords(pipeline: beam.Pipeline, exec_properties: dict, split_pattern: str):
    """The shards matching ``split_pattern`` -> their good serialized records."""
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    # The spans of the window, oldest first (one "span" 0 without placeholders).
    shards = []
    for span, pattern in exec_properties["_window"].get(split_pattern, [(0, split_pattern)]):
        files = sorted(tf.io.gfile.glob(os.path.join(input_base, pattern)))
        if not files:
            raise screening.BadRecordsError(f"{os.path.join(input_base, pattern)}: no files match this pattern")
        shards.extend((path, span) for path in files)
    quarantine = os.path.join(exec_properties["_quarantine_dir"], _file_tag(split_pattern))
    screened = (
        pipeline
        | "Shards" >> beam.Create(shards)
        | "Reshuffle" >> beam.Reshuffle()
        | "Screen"
        >> beam.ParDo(screening.ScreenShard(_settings(exec_properties)["max_image_pixels"])).with_outputs(
            screening.BAD, screening.TALLY, main="good"
        )
    )
    _ = (
        screened[screening.TALLY]
        | "TallyJson" >> beam.Map(json.dumps)
        | "WriteTallies" >> beam.io.WriteToText(quarantine + "-spans", file_name_suffix=".jsonl")
    )
    bad = screened[screening.BAD]
    _ = (
        bad
        | "Reasons" >> beam.Map(lambda entry: json.dumps({k: v for k, v in entry.items() if k != "record"}))
        | "WriteReasons" >> beam.io.WriteToText(quarantine + "-reasons", file_name_suffix=".jsonl")
    )
    _ = (
        bad
        | "BadRecords" >> beam.FlatMap(lambda entry: [entry["record"]] if "record" in entry else [])
        | "WriteBadRecords" >> beam.io.WriteToTFRecord(quarantine + "-records", file_name_suffix=".tfrecord")
    )
    _ = (
        screened.good
        | "CountGood" >> beam.combiners.Count.Globally()
        | "GoodJson" >> beam.Map(lambda count: json.dumps({"good": count}))
        | "WriteCount" >> beam.io.WriteToText(quarantine + "-good", file_name_suffix=".json")
    )
    return screened.good


def _settings(exec_properties: dict) -> dict:
    """The screening's settings from the component's custom config, with the
    defaults for any that is missing (a pipeline compiled before it existed)."""
    settings = {"max_bad_fraction": 0.0, "max_image_pixels": DEFAULT_MAX_IMAGE_PIXELS, "spans": 1, "span_patterns": {}}
    text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not text:
        return settings
    custom = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(text, custom)
    packed = struct_pb2.Struct()
    custom.custom_config.Unpack(packed)
    if "max_bad_fraction" in packed:
        settings["max_bad_fraction"] = float(packed["max_bad_fraction"])
    if "max_image_pixels" in packed:
        # A Struct holds numbers as doubles: exact for integers below 2**53.
        settings["max_image_pixels"] = int(packed["max_image_pixels"])
    if "spans" in packed:
        settings["spans"] = int(packed["spans"])
    if "span_patterns" in packed:
        settings["span_patterns"] = dict(packed["span_patterns"])
    return settings


def span_window(exec_properties: dict) -> dict[str, list[tuple[int, str]]]:
    """For each input split's resolved pattern (the latest span, as the driver
    resolved it), the ``(span, pattern)`` of every span of the window."""
    settings = _settings(exec_properties)
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    result = {}
    for split in input_config.splits:
        unresolved = settings["span_patterns"].get(split.name)
        if not unresolved or not spans.has_span_spec(unresolved):
            result[split.pattern] = [(0, split.pattern)]
            continue
        latest = exec_properties.get("span")
        if latest is None:  # a launcher that did not pass the driver's span on
            latest = spans.existing_spans(base, unresolved)[-1]
        template = example_gen_pb2.Input.Split(name=split.name, pattern=unresolved)
        result[split.pattern] = spans.window(base, template, int(latest), settings["spans"])
    return result


def read_lineage_parts(quarantine_dir: str, window: dict[str, list[tuple[int, str]]]) -> dict:
    """The data lineage from what the Beam steps wrote: span tallies, split profiles."""
    per_span: dict[int, dict] = {}
    for path in tf.io.gfile.glob(os.path.join(quarantine_dir, "*-spans*.jsonl")):
        for line in tf.io.gfile.GFile(path).read().splitlines():
            tally = json.loads(line)
            entry = per_span.setdefault(
                tally["span"], {"span": tally["span"], "examples": 0, "classes": [0] * len(LABELS), "shards": 0}
            )
            entry["examples"] += sum(tally["classes"])
            entry["classes"] = [a + b for a, b in zip(entry["classes"], tally["classes"], strict=True)]
            entry["shards"] += 1
    has_spans = any(span_patterns != [(0, pattern)] for pattern, span_patterns in window.items())
    patterns = {span: pattern for span_patterns in window.values() for span, pattern in span_patterns}
    for span, entry in per_span.items():
        entry["pattern"] = patterns.get(span, "")
    splits = {}
    for path in tf.io.gfile.glob(os.path.join(quarantine_dir, _PROFILE_PREFIX + "*.json")):
        name = os.path.splitext(os.path.basename(path))[0][len(_PROFILE_PREFIX) :]
        splits[name] = json.loads(tf.io.gfile.GFile(path).read())
    return {"spans": sorted(per_span.values(), key=lambda e: e["span"]) if has_spans else [], "splits": splits}


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """Screens records while importing them, then applies the policy."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ScreenRecords

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        """TFX's splits, each also profiled as it is written (for the data lineage)."""
        splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        for name, records in splits.items():
            _ = (
                records
                | f"Profile[{name}]" >> beam.CombineGlobally(ProfileSplit())
                | f"ProfileJson[{name}]" >> beam.Map(json.dumps)
                | f"WriteProfile[{name}]"
                >> beam.io.WriteToText(
                    os.path.join(exec_properties["_quarantine_dir"], f"{_PROFILE_PREFIX}{name}"),
                    file_name_suffix=".json",
                    shard_name_template="",
                )
            )
        return splits

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        quarantine = os.path.join(examples.uri, QUARANTINE_DIR)
        window = span_window(exec_properties)
        super().Do(input_dict, output_dict, {**exec_properties, "_quarantine_dir": quarantine, "_window": window})
        report = screening.read_report(quarantine)
        screening.enforce_policy(report, _settings(exec_properties)["max_bad_fraction"], quarantine)
        examples.set_int_custom_property(SCREENED_KEY, report.total)
        examples.set_int_custom_property(QUARANTINED_KEY, len(report.bad))
        lineage = read_lineage_parts(quarantine, window)
        data_lineage.write(lineage, examples.uri)
        if lineage["spans"]:
            examples.set_string_custom_property(SPANS_KEY, data_lineage.describe_spans(lineage))


class ScreenedImportExampleGen(example_gen_component.FileBasedExampleGen):
    """ImportExampleGen for TFRecords of tf.Examples, with record screening."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(
        self,
        input_base: str,
        input_config,
        output_config=None,
        max_bad_fraction: float = 0.0,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        spans: int = 1,
    ):
        """``spans``: how many of the latest spans to read when the input
        patterns name spans (``spans.py``)."""
        settings = struct_pb2.Struct()
        settings.update(
            {
                "max_bad_fraction": max_bad_fraction,
                "max_image_pixels": max_image_pixels,
                "spans": spans,
                # The patterns with their placeholders: the driver resolves them to the latest span.
                "span_patterns": {split.name: split.pattern for split in input_config.splits},
            }
        )
        custom_config = example_gen_pb2.CustomConfig()
        custom_config.custom_config.Pack(settings)
        super().__init__(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            custom_config=custom_config,
        )
