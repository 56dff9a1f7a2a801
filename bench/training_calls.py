"""What the training benchmark runs inside its worker processes: the Trainer's
``run_fn`` called as TFX calls it, the plain Keras baseline, and ``run_fn``
with a timer of each epoch's training steps."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace


def time_run_fn(train_files: list[str], eval_files: list[str], transform_dir: str, settings: dict, out: str) -> float:
    """Seconds of one ``run_fn`` call with the arguments TFX would give it."""
    import schema
    from components.trainer import training as trainer

    fn_args = SimpleNamespace(
        train_files=train_files,
        eval_files=eval_files,
        transform_output=transform_dir,
        model_run_dir=f"{out}/model_run/1",
        serving_model_dir=f"{out}/model/1/Format-Serving",
        custom_config={"model": settings, "labels": list(schema.LABELS)},
    )
    started = time.perf_counter()
    trainer.run_fn(fn_args)
    return time.perf_counter() - started


def time_plain_fit(train_shards: list[str], eval_shards: list[str], settings: dict, out: str) -> dict:
    from bench import plain_keras

    return plain_keras.train(train_shards, eval_shards, settings, out)


def time_trainer_epochs(
    train_files: list[str], eval_files: list[str], transform_dir: str, settings: dict, out: str
) -> dict:
    """One ``run_fn`` call with a timer among its callbacks: the seconds of
    each epoch's training steps (epoch start to validation start) and of the
    whole epoch, for each ``fit`` it makes. An error (XLA failing to compile,
    say) is returned, not raised, so that the other cases still run."""
    import tf_keras as keras

    from components.trainer import training as trainer

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: list[dict] = []

        def on_epoch_begin(self, epoch, logs=None):
            self._started = self._trained = time.perf_counter()

        def on_test_begin(self, logs=None):
            self._trained = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.epochs.append(
                {
                    "epoch": epoch + 1,
                    "steps": self.params.get("steps"),
                    "train_seconds": self._trained - self._started,
                    "epoch_seconds": now - self._started,
                }
            )

    timers: list[EpochTimer] = []
    original = trainer.callbacks  # run_fn makes each fit's callbacks with it

    def callbacks_with_timer(*args, **kwargs):
        timers.append(EpochTimer())
        return original(*args, **kwargs) + [timers[-1]]

    trainer.callbacks = callbacks_with_timer
    started = time.perf_counter()
    try:
        time_run_fn(train_files, eval_files, transform_dir, settings, out)
    except Exception as error:  # noqa: BLE001 (reported in the row)
        message = str(error).strip().splitlines()
        return {"error": f"{type(error).__name__}: {message[0] if message else ''}"[:300]}
    finally:
        trainer.callbacks = original
    return {"fits": [timer.epochs for timer in timers], "seconds": time.perf_counter() - started}


def first_records(source: str, count: int, path: Path) -> list[str]:
    """The first ``count`` records of a GZIP TFRecord file, in a file of their own."""
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for record in tf.data.TFRecordDataset(source, compression_type="GZIP").take(count):
            writer.write(record.numpy())
    return [str(path)]
