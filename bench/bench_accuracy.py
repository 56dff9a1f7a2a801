"""Time to accuracy: MobileNetV2 transfer learning through the whole pipeline,
against the same recipe in a plain Keras notebook.

The pipeline side runs ``flowers-tfx run`` in-process (``run_local``) on
../shared/data/flowers-192 shards 00-07 and 10-11 (split 80/20 by the
pipeline into train and eval) with the mobilenetv2 recipe and the local
ImageNet weights, then classifies the held-out shards 08-09 (460 photos,
never used to choose a recipe: see bench_models) with the exported
model's ``serving_default`` signature on the raw JPEG bytes; its time is the
whole run's wall time (every component, from a fresh work directory). The
goal: at least 0.95 held out within 10 minutes on 2 cores.

The plain side is what a notebook user writes: the codelab's tf.data
pipeline on the same shards (80/20 by record hash), the same model
(``components.trainer.models``), the frozen epochs on the full network and
then the fine-tuning epochs, with the same rates, dropout, label smoothing
and flip-and-saturation augmentation, scored on the same held-out photos
(decoded beforehand: it has no serving signature). Each side runs in a
process of its own, one after the other.

    python -m bench --only accuracy
    python -m bench.bench_accuracy [--quick] [--set model.epochs=12 ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.shared import tf_environment  # noqa: E402

tf_environment.configure()

from bench import common  # noqa: E402

ENTRY = "accuracy"
MODEL = "mobilenetv2"
GOAL_ACCURACY = 0.95  # issue 29: the Xception codelab's figure, with a model a user can load offline
GOAL_SECONDS = 600
QUICK_SETTINGS = {"model.epochs": 1, "model.fine_tune_epochs": 0}
EVAL_BUCKETS = 20  # of plain_keras.HASH_BUCKETS: the pipeline's 80/20 split


def pipeline_side(settings: dict) -> dict:
    """Held-out accuracy and wall time of one whole pipeline run."""
    from bench import bench_models

    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as work_dir:
        return bench_models.train_one(MODEL, Path(work_dir), settings)


def resolved_settings(overrides: dict) -> dict:
    """The [model] settings the pipeline side trains with."""
    from bench import bench_models

    return common.default_model_settings(
        {"model.name": MODEL, "model.weights": str(bench_models.MOBILENET_WEIGHTS), **overrides}
    )


def plain_side(settings: dict) -> dict:
    """The same recipe as a notebook would train it: plain tf.data, the full
    network every epoch, two ``fit`` calls."""
    started = time.perf_counter()
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras

    from bench import bench_models, plain_keras
    from components.trainer import learning_rate, models

    keras.utils.set_random_seed(int(settings["seed"]))
    size, batch = int(settings["image_size"]), int(settings["batch_size"])
    files = sorted(str(path) for path in bench_models.FLOWERS.glob(bench_models.TRAIN_SHARDS))
    held_out = sorted(str(path) for path in bench_models.FLOWERS.glob(bench_models.HELD_OUT_SHARDS))
    train_split, eval_split = (EVAL_BUCKETS, False), (EVAL_BUCKETS, True)
    steps = plain_keras.count(files, train_split) // batch
    classes, smoothing = 5, float(settings["label_smoothing"])

    def one_hot(images, labels):
        return images, tf.one_hot(labels, classes)

    train = plain_keras.make_dataset(
        files,
        size,
        batch,
        training=True,
        augment_images=bool(settings["augment"]),
        seed=int(settings["seed"]),
        split=train_split,
    ).map(one_hot)
    validation = plain_keras.make_dataset(files, size, batch, training=False, split=eval_split).map(one_hot)
    # Pixels in [0, 1]: mean 0 and deviation 1 make the input layer map them to [-1, 1].
    model = models.build_model(
        MODEL,
        size,
        classes,
        dropout=settings["dropout"],
        weights=settings["weights"],
        pixel_stats=(np.zeros(3), np.ones(3)),
    )

    def compile_at(rate):
        model.compile(
            optimizer=keras.optimizers.Adam(rate),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
            metrics=["categorical_accuracy"],
        )

    compile_at(settings["learning_rate"])
    epochs, fine_tune_epochs = int(settings["epochs"]), int(settings["fine_tune_epochs"])
    fit_started = time.perf_counter()
    model.fit(train, steps_per_epoch=steps, epochs=epochs, validation_data=validation, verbose=0)
    frozen_seconds = time.perf_counter() - fit_started
    if fine_tune_epochs:
        models.unfreeze_base(model, int(settings["fine_tune_layers"]))
        fine_tune_rate = learning_rate.from_settings(
            settings, settings["fine_tune_lr_schedule"], settings["fine_tune_learning_rate"], fine_tune_epochs
        )
        compile_at(fine_tune_rate(0))
        model.fit(
            train,
            steps_per_epoch=steps,
            initial_epoch=epochs,
            epochs=epochs + fine_tune_epochs,
            validation_data=validation,
            callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch: fine_tune_rate(epoch - epochs))],
            verbose=0,
        )
    seconds = time.perf_counter() - started
    right = total = 0
    for images, labels in plain_keras.make_dataset(held_out, size, 1, training=False).unbatch().batch(64):
        predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
        right += int(np.sum(predicted == labels.numpy()))
        total += len(predicted)
    return {
        "held_out_accuracy": round(right / total, 4),
        "held_out_images": total,
        "seconds": round(seconds, 1),
        "frozen_seconds": round(frozen_seconds, 1),
    }


def run(quick: bool, overrides: dict | None = None) -> list[dict]:
    from bench import bench_models

    if not bench_models.FLOWERS.is_dir() or not bench_models.MOBILENET_WEIGHTS.is_file():
        print(
            f"skipped: real photos ({bench_models.FLOWERS}) and MobileNetV2 weights "
            f"({bench_models.MOBILENET_WEIGHTS}) are both needed for accuracy",
            file=sys.stderr,
        )
        return []
    overrides = {**(QUICK_SETTINGS if quick else {}), **(overrides or {})}
    settings = resolved_settings(overrides)
    # The workers start first, while this process is small (see common.Worker).
    with common.Worker() as plain_worker, common.Worker() as pipeline_worker:
        pipeline = pipeline_worker.call(pipeline_side, overrides)
        pipeline_peak = pipeline_worker.peak_mb()
        plain = plain_worker.call(plain_side, settings)
        plain_peak = plain_worker.peak_mb()
    recipe = (
        f"{settings['image_size']} px, {settings['epochs']} frozen + {settings['fine_tune_epochs']} fine-tuning "
        f"epochs (top {settings['fine_tune_layers'] or 'all'} layers), rates {settings['learning_rate']:g} / "
        f"{settings['fine_tune_learning_rate']:g} ({settings['fine_tune_lr_schedule']}), dropout "
        f"{settings['dropout']:g}, label smoothing {settings['label_smoothing']:g}, augment {settings['augment']}"
    )
    met = pipeline["held_out_accuracy"] >= GOAL_ACCURACY and pipeline["seconds"] <= GOAL_SECONDS
    accuracy_row = common.row(
        ENTRY,
        f"{MODEL} held-out accuracy",
        pipeline["held_out_accuracy"],
        "",
        plain["held_out_accuracy"],
        peak_mb=pipeline_peak,
        baseline_peak_mb=plain_peak,
        note=(
            f"{recipe}; on {pipeline['held_out_images']} held-out photos ({bench_models.HELD_OUT_NAME}), "
            f"pipeline through its serving signature on JPEG bytes; goal >= {GOAL_ACCURACY} within {GOAL_SECONDS} s: "
            f"{'met' if met else 'not met'}"
        ),
    )
    accuracy_row["met"] = met
    time_row = common.row(
        ENTRY,
        f"{MODEL} wall time",
        pipeline["seconds"],
        "s",
        plain["seconds"],
        higher_is_better=False,
        note=(
            f"pipeline: the whole run (Trainer {pipeline['trainer_seconds']} s); plain: data, model, both fits "
            f"(frozen {plain['frozen_seconds']} s), imports not counted"
        ),
    )
    return [accuracy_row, time_row]


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import format_console

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one frozen epoch, no fine-tuning: a smoke test")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    print(format_console(run(args.quick, dict(text.split("=", 1) for text in args.assignments))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
