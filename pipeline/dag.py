"""The pipeline's DAG: one ``create_pipeline(config)`` that every runner uses.

    ImportExampleGen (screens every record, reads the latest span or spans)
      -> DriftGate (enough examples for a batch; no drift from the last blessed model's data)
      -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> AnomaliesGate -> Transform
      -> Trainer -> Evaluator (vs last blessed) -> Pusher (only if blessed)
      [-> BatchInference (the pushed model over run.batch_inference_source), if configured]
      [-> ModelRegistryPusher, on Vertex AI if configured]

The same DAG runs on this machine (``platform="local"``) and on Vertex AI
Pipelines (``platform="vertex"``). On Vertex AI the configuration may move
the Beam steps to Dataflow, the Trainer to Vertex AI Training (GPU or TPU),
and add a promotion step that uploads the pushed model to the Model Registry;
``pipeline/vertex_specs.py`` builds those settings.

Component code is given by dotted path (``components.trainer.training.run_fn``), not
``module_file``, so nothing has to be packaged or uploaded: the code is
importable wherever the pipeline runs (this checkout, or the container).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Literal

from pipeline import lean_tfx  # noqa: F401  (first: it makes TFX's imports lean)

# isort: split


# TFX's modules one by one, not `from tfx import v1`: the v1 API also imports
# every Google Cloud extension (the Vertex AI SDK among them), which costs a
# local run several seconds before its first component. Vertex-only modules
# are imported where the Vertex DAG needs them. Each component from its own
# module, not from `tfx.components` (see lean_tfx.py).
from tfx.components.evaluator.component import Evaluator
from tfx.components.example_validator.component import ExampleValidator
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.components.statistics_gen.component import StatisticsGen
from tfx.components.trainer.component import Trainer
from tfx.components.transform.component import Transform
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import LatestBlessedModelStrategy
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2
from tfx.types import Channel, standard_artifacts

import schema
from components.anomalies_gate.component import AnomaliesGate
from components.batch_inference.component import BatchInference
from components.drift_gate.component import DriftGate
from components.example_gen.component import ScreenedImportExampleGen
from components.pusher.component import Pusher
from components.shared.classifier import DEFAULT_BATCH_SIZE
from pipeline import (
    direct_runner,
    vertex_specs,
)
from pipeline.config import Config
from pipeline.config_loading import with_recipe
from pipeline.data.location import DataLocation
from pipeline.quality_gate import eval_config

PREPROCESSING_FN = "components.transform.preprocessing.preprocessing_fn"
RUN_FN = "components.trainer.training.run_fn"
HASH_BUCKETS = 100
# Classes per line of the BatchInference step's JSON Lines (batch-predict's default).
BATCH_INFERENCE_TOP_K = 3

# Where the pipeline runs: LocalDagRunner here, or Vertex AI Pipelines.
Platform = Literal["local", "vertex"]


def example_gen_configs(config: Config, location: DataLocation):
    """Input and output configs: split by shard patterns, or by hash buckets."""
    data = config.data
    if data.train_pattern and data.eval_pattern:
        input_config = example_gen_pb2.Input(
            splits=[
                example_gen_pb2.Input.Split(name="train", pattern=data.train_pattern),
                example_gen_pb2.Input.Split(name="eval", pattern=data.eval_pattern),
            ]
        )
        return input_config, None
    eval_buckets = max(1, round(HASH_BUCKETS * data.eval_fraction))
    input_config = example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern=location.pattern)])
    output_config = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=HASH_BUCKETS - eval_buckets),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
            ]
        )
    )
    return input_config, output_config


def model_settings(config: Config) -> dict:
    """The [model] section with every ``auto`` value taken from the model's recipe."""
    return asdict(with_recipe(config).model)


def trainer_custom_config(config: Config, platform: Platform = "local") -> dict:
    """What run_fn reads: the model settings, the labels and where to checkpoint.

    The checkpoint root is the pipeline root, which stays the same from one
    pipeline run to the next; the artifact folders do not (on Vertex AI each
    run's artifacts are under ``<root>/<project number>/<job>/``), so the
    Trainer could not find an earlier run's checkpoints next to its own output.
    """
    root = config.vertex.pipeline_root if platform == "vertex" else str(config.pipeline_root)
    return {"model": model_settings(config), "labels": list(schema.LABELS), "checkpoint_root": root}


def make_trainer(config: Config, platform: Platform, **inputs) -> Trainer:
    """The Trainer, in the pipeline's own process or container, or as a Vertex AI
    Training job on the configured machine (CPU, GPUs or a TPU)."""
    custom_config = trainer_custom_config(config, platform)
    if platform == "vertex" and config.vertex.training:
        from tfx.v1.extensions import google_cloud_ai_platform as cloud  # Vertex only

        custom_config.update(
            {
                cloud.ENABLE_VERTEX_KEY: True,
                cloud.VERTEX_REGION_KEY: config.vertex.region,
                cloud.TRAINING_ARGS_KEY: vertex_specs.training_job(config.vertex),
            }
        )
        return cloud.Trainer(run_fn=RUN_FN, custom_config=custom_config, **inputs)
    return Trainer(run_fn=RUN_FN, custom_config=custom_config, **inputs)


def run_notifier(config: Config):
    """Vertex AI only: the exit handler that posts how a run ended to
    ``notify.webhook`` (None when no webhook is configured)."""
    if not config.notify.webhook:
        return None
    import json

    from tfx import v1 as tfx

    from components.run_notifier.component import RunNotifier  # TFX's Vertex-only exit handler

    return RunNotifier(
        final_status=tfx.orchestration.experimental.FinalStatusStr(),
        webhook_url=config.notify.webhook,
        notify_on=json.dumps(config.notify.on),
        pipeline_name=config.run.pipeline_name,
        timeout_seconds=config.notify.timeout_seconds,
    ).with_id("RunNotifier")


def default_beam_args(config: Config, platform: Platform) -> list[str]:
    """``run.beam_args``; on Vertex AI with Dataflow, the Dataflow options first.

    ``run.beam_args`` come after them, so they can add or override options;
    the DirectRunner's own options (the local defaults) are left out there.
    """
    if platform == "vertex" and config.vertex.dataflow:
        extra = [arg for arg in config.run.beam_args if not arg.startswith("--direct_")]
        return vertex_specs.dataflow_beam_args(config.vertex) + extra
    return direct_runner.local_beam_args(config.run.beam_args)


def create_pipeline(
    config: Config,
    data: DataLocation,
    pipeline_root: str,
    serving_dir: str,
    metadata_connection_config=None,
    beam_pipeline_args: list[str] | None = None,
    platform: Platform = "local",
) -> Pipeline:
    """The whole DAG, for the local runner and the Kubeflow v2 compiler alike.

    On ``platform="vertex"`` the configuration is checked for Vertex AI first
    (a ConfigError names the key) and files are named by their path in the image.
    """
    if platform == "vertex":
        vertex_specs.validate(config)
    input_config, output_config = example_gen_configs(config, data)
    # Screens every record of the latest span(s) and splits them into train and eval.
    example_gen = ScreenedImportExampleGen(
        input_base=data.base,
        input_config=input_config,
        output_config=output_config,
        max_bad_fraction=config.data.max_bad_fraction,
        max_image_pixels=config.data.max_image_pixels,
        spans=config.data.spans,
    ).with_id("ImportExampleGen")
    schema_file = vertex_specs.CONTAINER_SCHEMA_FILE if platform == "vertex" else str(schema.SCHEMA_FILE)
    # The curated schema of the raw examples (schema/).
    schema_gen = ImportSchemaGen(schema_file=schema_file)
    # Statistics of every split; with the schema, `class` is counted as a category (exact counts per class).
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"])

    # The last blessed model: the DriftGate's and the Evaluator's baseline.
    latest_blessed_model = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    # Before any Beam step reads the examples: enough for a batch, and not
    # drifted from the last blessed model's data?
    drift_gate = DriftGate(
        examples=example_gen.outputs["examples"],
        baseline_model=latest_blessed_model.outputs["model"],
        max_class_drift=config.gate.max_class_drift,
        max_feature_drift=config.gate.max_feature_drift,
        batch_size=int(model_settings(config)["batch_size"]),
    )
    statistics_gen.add_upstream_node(drift_gate)
    # Checks the statistics against the schema.
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    # Stops the run on any anomaly, before Transform.
    anomalies_gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])

    # The preprocessing graph (decode, resize, standardize), not materialized.
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # The pixel budget becomes a constant of the transform graph, so the
        # exported model (which runs that graph) refuses what screening refused.
        custom_config={
            "image_size": model_settings(config)["image_size"],
            "max_image_pixels": config.data.max_image_pixels,
        },
        materialize=False,
        disable_statistics=True,
        # No run reads an analyzer cache (none is passed in as
        # ``analyzer_cache``), so writing one only cost time: about 0.9 s of
        # a small run's 7 s in Transform.
        disable_analyzer_cache=True,
    )
    transform.add_upstream_node(anomalies_gate)

    # Trains the configured model and exports it with its serving signatures.
    trainer = make_trainer(
        config,
        platform,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
    )
    trainer.add_upstream_node(drift_gate)

    # Blesses the model when it passes the accuracy gate against the baseline.
    evaluator = Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=latest_blessed_model.outputs["model"],
        eval_config=eval_config(config),
        example_splits=["eval"],
    )

    # Copies a blessed model, once, to <serving_dir>/<version>/, with its model
    # card (made from the evaluation, the Trainer's settings and the pixel budget).
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
        ),
        model_evaluation=evaluator.outputs["evaluation"],
        model_run=trainer.outputs["model_run"],
        max_image_pixels=config.data.max_image_pixels,
    )

    components = [
        example_gen,
        latest_blessed_model,
        drift_gate,
        statistics_gen,
        schema_gen,
        example_validator,
        anomalies_gate,
        transform,
        trainer,
        evaluator,
        pusher,
    ]
    if config.run.batch_inference_source:
        source = config.run.batch_inference_source
        if "://" not in source:  # absolute: the parameter ML Metadata keeps names the files read
            source = os.path.abspath(os.path.expanduser(source))
        # Classifies the source's images with the pushed model into JSON Lines (skips when nothing was pushed).
        components.append(
            BatchInference(
                pushed_model=pusher.outputs["pushed_model"],
                input_glob=source,
                top_k=BATCH_INFERENCE_TOP_K,
                batch_size=DEFAULT_BATCH_SIZE,
                max_image_pixels=config.data.max_image_pixels,
            )
        )
    if platform == "vertex" and config.vertex.upload_model:
        from components.model_registry_pusher.component import ModelRegistryPusher  # the Vertex AI SDK: Vertex only

        # The pushed version into the Vertex AI Model Registry (and onto an endpoint).
        components.append(
            ModelRegistryPusher(
                pushed_model=pusher.outputs["pushed_model"],
                **vertex_specs.model_registry_target(config),
            )
        )

    return Pipeline(
        pipeline_name=config.run.pipeline_name,
        pipeline_root=pipeline_root,
        components=components,
        enable_cache=config.run.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=beam_pipeline_args or default_beam_args(config, platform),
    )
