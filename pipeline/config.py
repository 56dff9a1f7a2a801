"""The pipeline's one typed configuration object: its sections, keys,
types, defaults and the ranges each value must lie in.

Every setting has a default that runs locally. How a run's configuration is
built from files, the environment and the command line is in
:mod:`pipeline.config_loading`. Keys are written ``section.key`` everywhere
(``model.epochs``).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

from components.records.pixel_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.trainer.choices import LR_SCHEDULES, MODEL_NAMES, OPTIMIZERS, PRECISIONS, STRATEGIES
from pipeline.errors import FlowersError

ENV_PREFIX = "FLOWERS_TFX__"


class ConfigError(FlowersError, ValueError):
    """A configuration key or value that cannot be used."""

    label = "configuration: "


@dataclasses.dataclass
class DataConfig:
    """Where the TFRecord shards come from and how they are split."""

    # Local path or gs:// glob of the shards, e.g. 'data/*.tfrec'. Empty means
    # the embedded synthetic data set, generated into the work directory.
    # With TFX's {SPAN} placeholder (or {YYYY}-{MM}-{DD}, optionally with
    # {VERSION}), e.g. 'gs://bucket/flowers/span-{SPAN}/*.tfrec', a run reads
    # the latest span(s) only.
    source: str = ""
    # With spans in the source: train and evaluate on the latest this many
    # spans together (a rolling window); 1 is the latest span alone.
    spans: int = 1
    synthetic_images: int = 1000
    synthetic_shards: int = 8
    synthetic_seed: int = 42
    # Hash-bucket split (used unless both patterns below are given).
    eval_fraction: float = 0.2
    # Split by shard file patterns instead, relative to the source directory.
    train_pattern: str = ""
    eval_pattern: str = ""
    # Records that cannot be used (an image that does not decode, a class out
    # of range, ...): with 0 any such record stops the run with a list of them;
    # up to this fraction they are quarantined and the run goes on.
    max_bad_fraction: float = 0.0
    # The largest image (width x height, read from its header) that is ever
    # decoded: screening, data convert/inspect, predict and the exported model
    # refuse larger ones, so a small "decompression bomb" cannot exhaust memory.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


@dataclasses.dataclass
class ModelConfig:
    """Which model the Trainer builds and how it trains it.

    Settings left at ``auto`` take the chosen model's recipe (see
    ``components/trainer/recipes.py``): the codelabs' values for that model.
    """

    name: Literal[MODEL_NAMES] = "convnet"
    # Images are resized to image_size x image_size inside the transform graph.
    image_size: int | None = None
    epochs: int | None = None
    # Per replica; the global batch is this times the number of replicas.
    batch_size: int | None = None
    optimizer: Literal[OPTIMIZERS] | None = None
    # The peak learning rate (after any ramp-up).
    learning_rate: float | None = None
    lr_schedule: Literal[LR_SCHEDULES] | None = None
    # exponential and ramp: the rate is multiplied by this after every epoch.
    lr_decay: float | None = None
    # ramp: epochs of linear ramp-up from lr_min to learning_rate.
    warmup_epochs: int | None = None
    # ramp and cosine: the smallest learning rate.
    lr_min: float | None = None
    label_smoothing: float | None = None
    dropout: float | None = None
    weight_decay: float | None = None
    # Random left-right flips and saturation changes of training images.
    augment: bool | None = None
    # Stop when validation loss has not improved for this many epochs (0: never).
    early_stopping_patience: int | None = None
    # mobilenetv2: epochs of a second phase that unfreezes the base (0: none).
    fine_tune_epochs: int | None = None
    fine_tune_learning_rate: float | None = None
    # The fine-tuning phase's schedule, over its own epochs from
    # fine_tune_learning_rate (with the same lr_decay, warmup_epochs, lr_min).
    fine_tune_lr_schedule: Literal[LR_SCHEDULES] | None = None
    # How many of the base's top layers fine-tuning trains (0: all of them);
    # the layers below keep their ImageNet weights and cost no backward pass.
    fine_tune_layers: int | None = None
    # Compile each training step with XLA (Keras' jit_compile).
    jit_compile: bool | None = None
    # Pretrained weights: "imagenet" (downloaded by Keras) or a local .h5 file.
    weights: str = "imagenet"
    strategy: Literal[STRATEGIES] = "auto"
    # auto: bfloat16 on TPU, float32 elsewhere.
    mixed_precision: Literal[PRECISIONS] = "auto"
    seed: int = 42
    # The Trainer keeps each split's transformed examples in memory, so only
    # the first epoch decodes and resizes, when they take at most this many
    # MB (0: never). 1,840 photos at 192 px take 813 MB.
    cache_mb: int = 1024


@dataclasses.dataclass
class GateConfig:
    """When the Evaluator blesses a candidate model."""

    # Overall accuracy on the eval split must be at least this.
    min_accuracy: float = 0.5
    # And at most this much below the last blessed model's accuracy.
    max_accuracy_drop: float = 0.02
    # Every class's accuracy on its own eval examples (its recall) must be at
    # least this (0: no per-class floor) ...
    min_class_accuracy: float = 0.0
    # ... and at most this much below the last blessed model's on that class (1: no check).
    max_class_accuracy_drop: float = 1.0
    # Before training: the largest change in any class's share of the training
    # examples against the last blessed model's (L-infinity; 0: no check) ...
    max_class_drift: float = 0.1
    # ... and the Jensen-Shannon divergence (0..1) of the image byte-length and
    # pixel-count histograms (0: no check).
    max_feature_drift: float = 0.3


@dataclasses.dataclass
class RunConfig:
    """Where a run writes, and how the Beam steps execute."""

    # Everything a run writes lives under this directory.
    work_dir: str = "flowers-work"
    pipeline_name: str = "flowers"
    # Blessed models are pushed to <serving_dir>/<version>/.
    # Empty means <work_dir>/serving.
    serving_dir: str = ""
    enable_cache: bool = True
    # Extra Apache Beam pipeline arguments for every Beam step. None: Beam's
    # DirectRunner with its defaults (in memory, one worker). With the
    # DirectRunner, an empty requirements file is added so that TFX does not
    # package itself for workers that never install it (pipeline/direct_runner.py).
    beam_args: list[str] = dataclasses.field(default_factory=list)
    # A local or gs:// glob of images or of TFRecord shards (codelab format):
    # after the Pusher, the BatchInference step classifies them with the pushed
    # model, into JSON Lines. Empty = no such step.
    batch_inference_source: str = ""


@dataclasses.dataclass
class VertexConfig:
    """Google Cloud settings for compiling and running on Vertex AI Pipelines."""

    project: str = ""
    region: str = "us-central1"
    # gs:// directory where Vertex Pipelines keep artifacts.
    pipeline_root: str = ""
    # Container image holding this project (see the Dockerfile).
    image: str = ""
    # Service account the pipeline (and its jobs) run as; empty = the project default.
    service_account: str = ""
    # Blessed models go to <serving_dir> on GCS; empty = <pipeline_root>/serving.
    serving_dir: str = ""
    # Beam steps on Dataflow instead of inside the pipeline's containers.
    dataflow: bool = False
    dataflow_machine_type: str = "n1-standard-4"
    dataflow_max_workers: int = 4
    # Empty = <pipeline_root>/tmp.
    dataflow_temp_location: str = ""
    # Train on Vertex AI Training (with accelerators) instead of in the pipeline's container.
    training: bool = False
    training_machine_type: str = "n1-standard-8"
    # Machines the Trainer runs on together (MultiWorkerMirroredStrategy):
    # one chief, and the others in a second worker pool of the same machine.
    training_replicas: int = 1
    accelerator: Literal["none", "gpu", "tpu"] = "none"
    gpu_type: str = "NVIDIA_TESLA_T4"
    gpu_count: int = 1
    tpu_type: Literal["TPU_V2", "TPU_V3"] = "TPU_V3"
    # An image with a TensorFlow build for TPU VMs (see README); required for accelerator = tpu.
    tpu_image: str = ""
    # Also upload blessed models to the Vertex AI Model Registry ...
    upload_model: bool = False
    # ... and deploy them to this endpoint (display name; empty = no deployment).
    endpoint: str = ""
    # A newly pushed version gets this share of the endpoint's traffic; the
    # versions already there keep the rest (100: it takes all of it).
    canary_percent: int = 100
    serving_machine_type: str = "n1-standard-2"
    serving_image: str = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest"


# How a run can end, for notify.on (and the state a notification carries).
RUN_OUTCOMES = ("pushed", "not_blessed", "failed", "unchanged")


@dataclasses.dataclass
class NotifyConfig:
    """Who hears how each run ended."""

    # A URL that receives a JSON POST at the end of every run (Slack-style
    # webhooks show its "text"); empty = no notification.
    webhook: str = ""
    # Which outcomes are posted: pushed, not_blessed, failed, unchanged (the
    # model was already serving, nothing new).
    on: list[str] = dataclasses.field(default_factory=lambda: ["failed", "not_blessed", "pushed"])
    # A webhook slower than this is given up (the run's outcome never changes).
    timeout_seconds: float = 5.0


@dataclasses.dataclass
class Config:
    """The whole configuration of a pipeline run."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    vertex: VertexConfig = dataclasses.field(default_factory=VertexConfig)
    notify: NotifyConfig = dataclasses.field(default_factory=NotifyConfig)

    # Derived locations, so every part of the code agrees on them.
    @property
    def work_dir(self) -> Path:
        return Path(self.run.work_dir).expanduser().absolute()

    @property
    def serving_dir(self) -> Path:
        if self.run.serving_dir:
            return Path(self.run.serving_dir).expanduser().absolute()
        return self.work_dir / "serving"

    @property
    def pipeline_root(self) -> Path:
        return self.work_dir / "pipeline"

    @property
    def metadata_path(self) -> Path:
        return self.work_dir / "metadata.sqlite"

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


# Values that must lie in a range: key -> (low, high, inclusive description).
VALUE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "data.synthetic_images": (10, None),
    "data.synthetic_shards": (1, None),
    "data.eval_fraction": (0.01, 0.99),
    "data.max_bad_fraction": (0.0, 1.0),
    "data.max_image_pixels": (1, 2**31 - 1),
    "data.spans": (1, 10_000),
    "model.image_size": (32, 1024),
    "model.epochs": (1, None),
    "model.batch_size": (1, None),
    "model.learning_rate": (0.0, None),
    "model.lr_decay": (0.0, 1.0),
    "model.warmup_epochs": (0, None),
    "model.lr_min": (0.0, None),
    "model.label_smoothing": (0.0, 0.99),
    "model.dropout": (0.0, 0.99),
    "model.weight_decay": (0.0, None),
    "model.early_stopping_patience": (0, None),
    "model.fine_tune_epochs": (0, None),
    "model.fine_tune_learning_rate": (0.0, None),
    "model.fine_tune_layers": (0, None),
    "model.cache_mb": (0, None),
    "vertex.dataflow_max_workers": (1, None),
    "vertex.gpu_count": (1, 16),
    "vertex.training_replicas": (1, 64),
    "vertex.canary_percent": (1, 100),
    "gate.min_accuracy": (0.0, 1.0),
    "gate.max_accuracy_drop": (0.0, 1.0),
    "gate.min_class_accuracy": (0.0, 1.0),
    "gate.max_class_accuracy_drop": (0.0, 1.0),
    "gate.max_class_drift": (0.0, 1.0),
    "gate.max_feature_drift": (0.0, 1.0),
    "notify.timeout_seconds": (0.1, 60.0),
}
# List settings whose every item must be one of these.
LIST_CHOICES: dict[str, tuple[str, ...]] = {"notify.on": RUN_OUTCOMES}
# Settings that name files by a glob (empty: unset): local, or on Cloud Storage.
GLOB_KEYS = ("run.batch_inference_source",)


def sections(config: Config) -> dict[str, Any]:
    """``{'data': config.data, 'model': config.model, ...}``."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def field_types(section: Any) -> dict[str, Any]:
    """Each field of a section with its declared type (for converting values)."""
    hints = typing.get_type_hints(type(section))
    return {f.name: hints[f.name] for f in dataclasses.fields(section)}


def valid_keys() -> list[str]:
    """Every ``section.key`` the configuration accepts."""
    config = Config()
    return [f"{name}.{key}" for name, section in sections(config).items() for key in field_types(section)]
