"""The Trainer's ``run_fn``: read, train, export.

TFX calls :func:`run_fn` with ``fn_args`` that name the example files, the
transform graph and the output directories; ``fn_args.custom_config`` holds
the ``[model]`` settings (every ``auto`` already replaced by the model's
recipe, see ``recipes.py``) and the class names.

Training survives restarts: Keras' BackupAndRestore checkpoints every epoch
into a directory keyed by the Trainer's inputs and settings, which a
re-run Trainer (a new execution after a killed run, or a preempted Vertex
job) finds again and resumes from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

# absl's logger, as TFX's own: its INFO lines reach a Vertex AI job's log, where
# TFX's entry points set absl's verbosity and leave Python's root logger at WARNING.
from absl import logging

from components.trainer import choices, frozen_features, input_pipeline, learning_rate, models, signatures, strategy
from components.trainer import cluster as clusters
from components.trainer.outputs import EPOCH_LOG_FORMAT, HISTORY_FILE
from components.training_data import data_lineage, data_profile

# Real eval photos written as TF Serving warmup requests into the export.
WARMUP_REQUESTS = 3


class EpochLogger(keras.callbacks.Callback):
    """Logs each epoch's metrics in one line, instead of Keras' progress bar."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        logs["lr"] = float(keras.backend.get_value(self.model.optimizer.learning_rate))
        metrics = ", ".join(f"{name} {value:.4g}" for name, value in logs.items())
        logging.info(EPOCH_LOG_FORMAT, epoch + 1, self.epochs, metrics)


def make_optimizer(name: str, rate: float, weight_decay: float) -> keras.optimizers.Optimizer:
    """Adam, AdamW, plain SGD, or SGD with momentum (optionally Nesterov's)."""
    decay = weight_decay or None
    if name == "adam":
        return keras.optimizers.Adam(rate, weight_decay=decay)
    if name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=weight_decay)  # 0 is no decay; auto: recipes
    if name in ("sgd", "momentum", "nesterov"):
        momentum = 0.0 if name == "sgd" else 0.9
        return keras.optimizers.SGD(rate, momentum=momentum, nesterov=name == "nesterov", weight_decay=decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(choices.OPTIMIZERS)}")


def make_loss(label_smoothing: float, num_classes: int):
    """Cross-entropy on integer labels, with optional label smoothing
    (Keras' sparse loss has no smoothing, so labels become one-hot for it)."""
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy()

    def smoothed_cross_entropy(labels, probabilities):
        one_hot = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), num_classes)
        return keras.losses.categorical_crossentropy(one_hot, probabilities, label_smoothing=label_smoothing)

    return smoothed_cross_entropy


def compile_model(model: keras.Model, settings: dict, rate: float, num_classes: int) -> None:
    model.compile(
        optimizer=make_optimizer(settings["optimizer"], rate, settings["weight_decay"]),
        loss=make_loss(settings["label_smoothing"], num_classes),
        metrics=["sparse_categorical_accuracy"],
        jit_compile=bool(settings.get("jit_compile")),
    )


def backup_dir(fn_args, settings: dict) -> str:
    """Where epochs are checkpointed: the same for a re-run with the same
    inputs and settings, different for anything else.

    The folder is under the pipeline root (``checkpoint_root``, given by the
    DAG), not next to this run's artifacts: on Vertex AI those are under
    ``<root>/<project number>/<job>/Trainer_<id>/``, new for every pipeline
    run, so a re-run would never find the checkpoints of the run it resumes.
    Without ``checkpoint_root`` (an older compiled spec) the folder is the
    one two levels above ``model_run``: ``<root>/Trainer`` locally.
    """
    key = json.dumps(
        {"train": sorted(fn_args.train_files), "transform": fn_args.transform_output, "settings": settings},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    root = fn_args.custom_config.get("checkpoint_root")
    if root:
        return "/".join([root.rstrip("/"), "Trainer", "checkpoints", digest])
    trainer_root = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
    return os.path.join(trainer_root, "checkpoints", digest)


def callbacks(settings: dict, schedule, epochs: int, backup: str, log_dir: str) -> list:
    result = [
        keras.callbacks.LearningRateScheduler(schedule),
        keras.callbacks.BackupAndRestore(backup),
        EpochLogger(epochs),
        keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"),
    ]
    if settings["early_stopping_patience"]:
        result.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=settings["early_stopping_patience"], restore_best_weights=True
            )
        )
    return result


def run_fn(fn_args) -> None:
    """Trains the configured model and exports it with its serving signatures."""
    settings = fn_args.custom_config["model"]
    labels = fn_args.custom_config["labels"]
    keras.utils.set_random_seed(int(settings["seed"]))

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    distribution = strategy.choose_strategy(settings["strategy"])
    job = clusters.from_environment()  # None on one machine
    strategy.set_precision(settings["mixed_precision"], distribution)
    replicas = distribution.num_replicas_in_sync
    global_batch = int(settings["batch_size"]) * replicas

    train_files = input_pipeline.list_files(fn_args.train_files)
    eval_files = input_pipeline.list_files(fn_args.eval_files)
    train_count = input_pipeline.count_records(train_files)
    eval_count = input_pipeline.count_records(eval_files)
    steps_per_epoch = train_count // global_batch
    validation_steps = eval_count // global_batch
    if steps_per_epoch == 0 or validation_steps == 0:
        raise ValueError(
            f"too few examples for a global batch of {global_batch}: "
            f"{train_count} for training, {eval_count} for evaluation; "
            "lower model.batch_size or give more data"
        )
    logging.info(
        "Training %s on %d examples (%d steps of %d), validating on %d, %d replica(s)",
        settings["name"],
        train_count,
        steps_per_epoch,
        global_batch,
        eval_count,
        replicas,
    )
    cache_bytes = int(settings["cache_mb"]) << 20
    train_dataset = input_pipeline.make_dataset(
        train_files,
        tf_transform_output,
        global_batch,
        training=True,
        seed=int(settings["seed"]),
        augment_images=bool(settings["augment"]),
        examples=train_count,
        cache_budget_bytes=cache_bytes,
    )
    eval_dataset = input_pipeline.make_dataset(
        eval_files,
        tf_transform_output,
        global_batch,
        training=False,
        examples=eval_count,
        cache_budget_bytes=cache_bytes,
    )
    if job is not None:  # each worker reads its share
        train_dataset = clusters.sharded(train_dataset, len(train_files), job.workers, evaluation=False)
        eval_dataset = clusters.sharded(eval_dataset, len(eval_files), job.workers, evaluation=True)
    # No validation_steps: the evaluation data is finite and read to its end
    # each epoch, which lets its in-memory cache complete (see make_dataset).
    fit = dict(x=train_dataset, steps_per_epoch=steps_per_epoch, validation_data=eval_dataset, verbose=0)

    # The learning rate is for one replica's batch; with N replicas the global
    # batch is N times larger and so is the rate (the codelabs' scaling rule).
    epochs = int(settings["epochs"])
    schedule = learning_rate.from_settings(
        settings, settings["lr_schedule"], settings["learning_rate"] * replicas, epochs
    )
    backup = backup_dir(fn_args, settings)  # shared by the workers of a job, as BackupAndRestore wants
    # In a multi-worker job only the chief writes the outputs (see cluster.py).
    chief_args, fn_args = fn_args, clusters.outputs_of_this_worker(fn_args, job)
    with distribution.scope():
        model = models.build_model(
            settings["name"],
            int(settings["image_size"]),
            len(labels),
            dropout=settings["dropout"],
            weights=settings["weights"],
            pixel_stats=input_pipeline.pixel_statistics(train_files, tf_transform_output),
        )
        compile_model(model, settings, schedule(0), len(labels))
    fine_tune_epochs = int(settings["fine_tune_epochs"])
    fine_tune = fine_tune_epochs > 0 and any(layer.name == models.PRETRAINED_BASE for layer in model.layers)
    # BackupAndRestore deletes its checkpoint when a fit ends; when a second
    # phase follows, the first phase's result is kept so a restart in the
    # second phase does not train the first again.
    first_phase = os.path.join(backup, "first_phase")
    frozen_phase = frozen_features.Phase(
        name="train",
        fit=fit,
        epochs=epochs,
        callbacks=lambda folder: callbacks(settings, schedule, epochs, f"{backup}/{folder}", fn_args.model_run_dir),
        compile=lambda head: compile_model(head, settings, schedule(0), len(labels)),
        distribution=distribution,
        train_files=train_files,
        eval_files=eval_files,
        tf_transform_output=tf_transform_output,
        batch_size=global_batch,
        train_count=train_count,
        eval_count=eval_count,
        augment=bool(settings["augment"]),
        seed=int(settings["seed"]),
        budget_bytes=cache_bytes,
    )
    if fine_tune and tf.io.gfile.exists(first_phase + ".json"):
        model.load_weights(first_phase)
        history = json.loads(tf.io.gfile.GFile(first_phase + ".json").read())
        logging.info("First training phase restored from %s", first_phase)
    else:
        # A frozen pretrained base runs once: its head trains on cached features.
        history = frozen_features.fit_phase(model, frozen_phase)
        if fine_tune:
            keep_first_phase(model, history, first_phase, fn_args, chief_args)
            clusters.wait_for_every_worker(distribution, job)  # nobody goes on before the chief has written it

    if fine_tune:
        # Second phase: unfreeze the pretrained base (or its top layers), train
        # slowly; the frozen layers below them run once (frozen_features.py).
        fine_tune_schedule = learning_rate.from_settings(
            settings,
            settings["fine_tune_lr_schedule"],
            settings["fine_tune_learning_rate"] * replicas,
            fine_tune_epochs,
        )
        total = epochs + fine_tune_epochs

        def rate(epoch: int) -> float:  # epochs count from the first phase's start
            return fine_tune_schedule(epoch - epochs)

        with distribution.scope():
            models.unfreeze_base(model, int(settings["fine_tune_layers"]))
            compile_model(model, settings, rate(epochs), len(labels))
        fine_tuned = frozen_features.fit_phase(
            model,
            dataclasses.replace(
                frozen_phase,
                name="fine_tune",
                epochs=total,
                initial_epoch=epochs,
                callbacks=lambda folder: callbacks(settings, rate, total, f"{backup}/{folder}", fn_args.model_run_dir),
                compile=lambda head: compile_model(head, settings, rate(epochs), len(labels)),
            ),
        )
        history = {key: history.get(key, []) + fine_tuned.get(key, []) for key in fine_tuned}

    write_history(fn_args.model_run_dir, history, settings, train_count, eval_count)
    clusters.wait_for_every_worker(distribution, job)  # their last checkpoints are written
    if fn_args is chief_args and tf.io.gfile.exists(backup):
        tf.io.gfile.rmtree(backup)
    signatures.export_serving_model(
        model,
        tf_transform_output,
        labels,
        fn_args.serving_model_dir,
        warmup_images=input_pipeline.first_images(eval_files, WARMUP_REQUESTS),
    )
    write_data_record(fn_args, train_files, len(labels))
    clusters.finish_worker(chief_args, fn_args)


def keep_first_phase(model: keras.Model, history: dict, first_phase: str, fn_args, chief_args) -> str:
    """Saves the first phase's weights and curves so a restart in the second
    phase does not train it again; returns where.

    ``first_phase`` is in the checkpoint folder every worker of a job shares:
    only the chief writes there. Another worker saves as the chief does (a
    save may take part in collective operations) into its own temporary
    folder, which ``clusters.finish_worker`` removes.
    """
    if fn_args is not chief_args:
        first_phase = os.path.join(os.path.dirname(fn_args.model_run_dir.rstrip("/")), "first_phase")
    model.save_weights(first_phase)
    with tf.io.gfile.GFile(first_phase + ".json", "w") as f:
        f.write(json.dumps({k: [float(v) for v in values] for k, values in history.items()}))
    return first_phase


def write_data_record(fn_args, train_files: list[str], num_classes: int) -> None:
    """What the model learned from travels with it: the profile of its training
    data (a later run's drift gate compares its data with the last blessed
    model's) and the data lineage (spans, examples per class and split).

    Both come from what ExampleGen counted (``data_lineage.json`` in the
    Examples artifact, found from the training files' folder); examples made
    before it was recorded are profiled here instead.
    """
    extra = os.path.join(fn_args.serving_model_dir, "assets.extra")
    examples_dir = data_lineage.examples_dir(fn_args.train_files[0])
    lineage = data_lineage.read(examples_dir)
    profile = data_lineage.split_profile(lineage, "train") or data_profile.profile_files(train_files, num_classes)
    data_profile.write_profile(profile, os.path.join(extra, data_profile.PROFILE_FILE))
    if lineage:
        data_lineage.write(data_lineage.short(lineage), extra)


def write_history(run_dir: str, history: dict, settings: dict, train_count: int, eval_count: int) -> None:
    """Saves the per-epoch curves where the run summary and report find them."""
    record = {
        "model": settings["name"],
        "settings": settings,
        "train_examples": train_count,
        "eval_examples": eval_count,
        "epochs": {key: [float(v) for v in values] for key, values in history.items()},
    }
    tf.io.gfile.makedirs(run_dir)
    with tf.io.gfile.GFile(os.path.join(run_dir, HISTORY_FILE), "w") as f:
        f.write(json.dumps(record, indent=2))
