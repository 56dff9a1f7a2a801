"""The baseline every benchmark compares with: the codelab's way, no pipeline.

A plain tf.data pipeline (TFRecordDataset with parallel reads, decode,
resize, normalize, batch) and a plain Keras ``fit`` of the same model the
pipeline trains (built by the same ``components.trainer.models``), then a SavedModel.
Run as a script it is the notebook user's whole job, which the end-to-end
benchmark times against ``flowers-tfx run``:

    python -m bench.plain_keras --data 'shards/*.tfrec' --out /tmp/model \
        --image-size 64 --batch-size 32 --epochs 12

It prints one JSON line with its timings and final accuracy.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.shared import tf_environment  # noqa: E402

tf_environment.configure()

import tensorflow as tf  # noqa: E402

AUTOTUNE = tf.data.AUTOTUNE
_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "class": tf.io.FixedLenFeature([], tf.int64),
}
HASH_BUCKETS = 100


def decode_and_resize(encoded, image_size: int):
    """One JPEG -> float image in [0, 1], image_size x image_size, as in the codelab."""
    image = tf.io.decode_jpeg(encoded, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)
    return tf.image.resize(image, [image_size, image_size])


def read_example(record, image_size: int):
    """One record -> (float image in [0, 1], integer label), as in the codelab."""
    example = tf.io.parse_single_example(record, _FEATURES)
    return decode_and_resize(example["image"], image_size), example["class"]


def augment(image, label, seed: int):
    """The codelab's augmentation: random flips and saturation changes."""
    image = tf.image.random_flip_left_right(image, seed=seed)
    image = tf.image.random_saturation(image, 0.6, 1.4, seed=seed)
    return image, label


def in_split(record, eval_buckets: int, eval_split: bool):
    """A deterministic split by a hash of the record, like ExampleGen's hash buckets."""
    bucket = tf.strings.to_hash_bucket_fast(record, HASH_BUCKETS)
    return bucket < eval_buckets if eval_split else bucket >= eval_buckets


def make_dataset(
    files: list[str],
    image_size: int,
    batch_size: int,
    training: bool,
    augment_images: bool = False,
    seed: int = 42,
    split: tuple[int, bool] | None = None,
) -> tf.data.Dataset:
    """Batches of (images, labels): training data shuffled, repeated and
    optionally augmented; evaluation data read once. ``split`` is
    ``(eval_buckets, eval_split)`` to take one split of the records."""
    options = tf.data.Options()
    options.deterministic = False  # the codelab's ignore_order
    dataset = tf.data.TFRecordDataset(files, num_parallel_reads=AUTOTUNE).with_options(options)
    if split is not None:
        dataset = dataset.filter(lambda record: in_split(record, *split))
    dataset = dataset.map(lambda record: read_example(record, image_size), num_parallel_calls=AUTOTUNE)
    if training:
        dataset = dataset.shuffle(2048, seed=seed).repeat()
        if augment_images:
            dataset = dataset.map(lambda image, label: augment(image, label, seed), num_parallel_calls=AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


def count(files: list[str], split: tuple[int, bool] | None = None) -> int:
    """Records in the shards, or in one split of them (see ``make_dataset``)."""
    dataset = tf.data.TFRecordDataset(files)
    if split is not None:
        dataset = dataset.filter(lambda record: in_split(record, *split))
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda total, _: total + 1))


def train(
    train_files: list[str],
    eval_files: list[str],
    settings: dict,
    out_dir: str | None,
    eval_buckets: int | None = None,
    train_count: int | None = None,
    eval_count: int | None = None,
) -> dict:
    """Builds, fits and (if ``out_dir``) saves the model; returns timings.

    With ``eval_buckets``, both file lists are the same shards, divided by
    record hash into ``eval_buckets`` of 100 for evaluation and the rest for training.
    """
    import tf_keras as keras

    from components.trainer import models

    started = time.perf_counter()
    keras.utils.set_random_seed(int(settings["seed"]))
    size, batch = int(settings["image_size"]), int(settings["batch_size"])
    train_split = eval_split = None
    if eval_buckets is not None:
        train_split, eval_split = (eval_buckets, False), (eval_buckets, True)
    if train_count is None:
        train_count = count(train_files, train_split)
    if eval_count is None:
        eval_count = count(eval_files, eval_split)
    steps, validation_steps = train_count // batch, eval_count // batch
    train_data = make_dataset(
        train_files,
        size,
        batch,
        training=True,
        augment_images=bool(settings["augment"]),
        seed=int(settings["seed"]),
        split=train_split,
    )
    eval_data = make_dataset(eval_files, size, batch, training=False, split=eval_split)
    model = models.build_model(settings["name"], size, 5, dropout=settings["dropout"], weights=settings["weights"])
    model.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["sparse_categorical_accuracy"],
    )
    fit_started = time.perf_counter()
    history = model.fit(
        train_data,
        steps_per_epoch=steps,
        epochs=int(settings["epochs"]),
        validation_data=eval_data,
        validation_steps=validation_steps,
        verbose=0,
    ).history
    saved = time.perf_counter()
    if out_dir:
        model.save(out_dir, save_format="tf")
    done = time.perf_counter()
    return {
        "train_examples": train_count,
        "eval_examples": eval_count,
        "images_trained": steps * batch * int(settings["epochs"]),
        "setup_seconds": round(fit_started - started, 2),
        "fit_seconds": round(saved - fit_started, 2),
        "save_seconds": round(done - saved, 2),
        "seconds": round(done - started, 2),
        "val_accuracy": round(float(history["val_sparse_categorical_accuracy"][-1]), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="glob of the shards")
    parser.add_argument("--out", required=True, help="SavedModel directory")
    parser.add_argument("--model", default="convnet")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--weights", default="imagenet", help="pretrained weights (transfer-learning models)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--eval-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    settings = {
        "name": args.model,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "dropout": args.dropout,
        "augment": args.augment,
        "seed": args.seed,
        "weights": args.weights,
    }
    files = sorted(tf.io.gfile.glob(args.data))
    if not files:
        parser.error(f"no files match {args.data}")
    eval_buckets = max(1, round(HASH_BUCKETS * args.eval_fraction))
    result = train(files, files, settings, args.out, eval_buckets=eval_buckets)
    result["imports_seconds"] = round(time.perf_counter() - STARTED - result["seconds"], 2)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
