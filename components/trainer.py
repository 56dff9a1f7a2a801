"""The Trainer's ``run_fn``: read, train, export.

TFX calls :func:`run_fn` with ``fn_args`` that name the example files, the
transform graph and the output directories; ``fn_args.custom_config`` holds
the ``[model]`` section of the pipeline configuration and the labels.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components import input_pipeline, models, signatures, strategy

HISTORY_FILE = "history.json"
# One log line per epoch; the local runner's progress display shows these.
EPOCH_LOG_FORMAT = "Epoch %d/%d: %s"


class EpochLogger(keras.callbacks.Callback):
    """Logs each epoch's metrics in one line, instead of Keras' progress bar."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        metrics = ", ".join(f"{name} {value:.4f}" for name, value in (logs or {}).items())
        logging.info(EPOCH_LOG_FORMAT, epoch + 1, self.epochs, metrics)


def run_fn(fn_args) -> None:
    """Trains the configured model and exports it with its serving signatures."""
    settings = fn_args.custom_config["model"]
    labels = fn_args.custom_config["labels"]
    keras.utils.set_random_seed(int(settings["seed"]))

    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    distribution = strategy.choose_strategy()
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
        settings["name"], train_count, steps_per_epoch, global_batch, eval_count, replicas,
    )

    train_dataset = input_pipeline.make_dataset(
        train_files, tf_transform_output, global_batch, training=True, seed=int(settings["seed"])
    )
    eval_dataset = input_pipeline.make_dataset(
        eval_files, tf_transform_output, global_batch, training=False
    )

    with distribution.scope():
        model = models.build_model(settings["name"], int(settings["image_size"]), len(labels))
        model.compile(
            optimizer=keras.optimizers.Adam(float(settings["learning_rate"])),
            loss="sparse_categorical_crossentropy",
            metrics=["sparse_categorical_accuracy"],
        )

    history = model.fit(
        train_dataset,
        epochs=int(settings["epochs"]),
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_dataset,
        validation_steps=validation_steps,
        callbacks=[
            EpochLogger(int(settings["epochs"])),
            keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        ],
        verbose=0,
    )
    write_history(fn_args.model_run_dir, history.history, settings, train_count, eval_count)
    signatures.export_serving_model(model, tf_transform_output, labels, fn_args.serving_model_dir)


def write_history(run_dir: str, history: dict, settings: dict, train_count: int, eval_count: int) -> None:
    """Saves the per-epoch curves where the run summary and report find them."""
    record = {
        "model": settings["name"],
        "train_examples": train_count,
        "eval_examples": eval_count,
        "epochs": {key: [float(v) for v in values] for key, values in history.items()},
    }
    tf.io.gfile.makedirs(run_dir)
    with tf.io.gfile.GFile(os.path.join(run_dir, HISTORY_FILE), "w") as f:
        f.write(json.dumps(record, indent=2))
