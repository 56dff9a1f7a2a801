"""Input pipeline: images per second the Trainer's tf.data pipeline delivers,
against the codelab's plain tf.data pipeline on the same shards.

The Trainer's pipeline (``components.trainer.input_pipeline.make_dataset``) reads the
records as ImportExampleGen writes them (GZIP) and applies the transform
graph (decode, centre crop, resize, standardize) to each batch; the plain one
(``bench.plain_keras.make_dataset``) reads the raw shards with parallel reads
and decodes, resizes and normalizes each image. Both at the default model's
image size and batch size. The transform graph is analysed once with tft_beam
beforehand, untimed; building each dataset is timed with its reading. Each
side runs in a process of its own; the two sides alternate and each keeps
its best run.

    python -m bench.bench_input            # 12 shards (2,760 real photos), best of 5
    python -m bench.bench_input --quick    # 2 shards, one run

Rows: one and three passes in evaluation mode (a new iterator a pass, as
each epoch's validation reads it); one and three epochs in training mode
(shuffled and augmented on both sides, as ``fit`` reads it). Each mode is
also measured with the Trainer's in-memory cache turned off, as the
pipeline was before it had one. Then each stage alone against its plain
counterpart (``stage_rates``): reading the GZIP records against the raw
shards, ``decode_image`` against a bare decode and resize, the Trainer's
batched transform against the plain per-record map, the last two on records
already in memory; they say where the first pass's time goes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.shared import tf_environment  # noqa: E402

tf_environment.configure()

from bench import common  # noqa: E402

ENTRY = "input"
TARGET = 0.8
# (row name, training mode, epochs): passes over the data as validation reads
# them, and epochs of training batches (shuffled, augmented) as fit reads them.
MODES = [
    ("evaluation mode, 1 pass", False, 1),
    ("evaluation mode, 3 passes", False, 3),
    ("training mode, 1 epoch", True, 1),
    ("training mode, 3 epochs", True, 3),
]

_transform_outputs: dict = {}


def _read(make_dataset, training: bool, epochs: int, steps_per_epoch: int) -> tuple[int, float]:
    """(images, seconds) from building the dataset to the last batch: a new
    iterator per pass in evaluation mode (as Keras validates), ``epochs`` x
    ``steps_per_epoch`` batches of one endless dataset in training mode."""
    started = time.perf_counter()
    dataset = make_dataset()
    images = 0
    if training:
        for batch_images, _ in dataset.take(epochs * steps_per_epoch):
            images += int(batch_images.shape[0])
    else:
        for _ in range(epochs):
            for batch_images, _ in dataset:
                images += int(batch_images.shape[0])
    return images, time.perf_counter() - started


def time_plain(shards: list[str], size: int, batch: int, training: bool, epochs: int, steps: int):
    """The codelab's plain pipeline over the raw shards."""
    from bench import plain_keras

    return _read(
        lambda: plain_keras.make_dataset(shards, size, batch, training, augment_images=training),
        training,
        epochs,
        steps,
    )


def time_trainer(
    files: list[str],
    transform_dir: str,
    batch: int,
    training: bool,
    epochs: int,
    steps: int,
    examples: int,
    cache: bool = True,
):
    """The Trainer's pipeline over ExampleGen's records; the transform graph is
    loaded once per process, as run_fn loads it once. ``examples`` is given,
    as run_fn gives the count it made for steps_per_epoch; without ``cache``
    every pass transforms the records anew (the pipeline before the cache)."""
    import tensorflow_transform as tft

    from components.trainer import input_pipeline

    if transform_dir not in _transform_outputs:
        _transform_outputs[transform_dir] = tft.TFTransformOutput(transform_dir)
    output = _transform_outputs[transform_dir]
    return _read(
        lambda: input_pipeline.make_dataset(
            files,
            output,
            batch,
            training=training,
            augment_images=training,
            examples=examples,
            cache_budget_bytes=input_pipeline.CACHE_BUDGET_BYTES if cache else 0,
        ),
        training,
        epochs,
        steps,
    )


def compare(plain, pipeline, args_plain, args_pipeline, passes: int) -> tuple[float, float, float]:
    """Best images per second of the plain pipeline, the Trainer's, and the
    Trainer's without its cache, over ``passes`` alternating runs."""
    best = [0.0, 0.0, 0.0]
    for _ in range(passes):
        runs = (
            plain.call(time_plain, *args_plain),
            pipeline.call(time_trainer, *args_pipeline, True),
            pipeline.call(time_trainer, *args_pipeline, False),
        )
        best = [max(old, images / seconds) for old, (images, seconds) in zip(best, runs, strict=True)]
    return tuple(best)


def _best_rate(make_dataset, runs: int = 3) -> float:
    """Best images per second of reading a dataset of batches to its end."""
    import tensorflow as tf

    best = 0.0
    for _ in range(runs):
        started, images = time.perf_counter(), 0
        for batch in make_dataset():
            images += int(tf.shape(batch[0] if isinstance(batch, tuple) else batch)[0])
        best = max(best, images / (time.perf_counter() - started))
    return best


def stage_rates(shards: list[str], files: list[str], transform_dir: str, size: int, batch: int) -> dict:
    """Images per second of each stage alone, both pipelines' stages side by
    side: reading (the raw shards with parallel reads; ExampleGen's GZIP
    records as the Trainer interleaves them), and turning the encoded photos
    into images (the codelab's decode and resize; the transform graph's
    ``decode_image`` with its header checks, scaled decode and crop; the
    Trainer's whole batched transform) on records already in memory."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from bench import plain_keras
    from components.records import features
    from components.trainer import input_pipeline
    from components.transform import preprocessing

    autotune = tf.data.AUTOTUNE
    raw_read = lambda: tf.data.TFRecordDataset(shards, num_parallel_reads=autotune).batch(batch)  # noqa: E731
    gzip_read = lambda: input_pipeline.read_records(  # noqa: E731
        tf.data.Dataset.from_tensor_slices(files), len(files)
    ).batch(batch)
    raw_records = tf.data.TFRecordDataset(shards, num_parallel_reads=autotune).cache()
    records = gzip_read().unbatch().cache()
    for _ in raw_records:  # fill both caches, untimed
        pass
    for _ in records:
        pass
    encoded = (
        records.batch(256)
        .map(
            lambda serialized: tf.reshape(
                tf.io.parse_example(serialized, input_pipeline._RAW_SPEC)[features.IMAGE], [-1]
            )
        )
        .unbatch()
        .cache()
    )
    for _ in encoded:
        pass
    layer = tft.TFTransformOutput(transform_dir).transform_features_layer()

    def per_photo(function):
        return lambda: encoded.map(function, num_parallel_calls=autotune).batch(batch)

    return {
        "raw_read": _best_rate(raw_read),
        "gzip_read": _best_rate(gzip_read),
        "plain_decode": _best_rate(
            lambda: raw_records.map(
                lambda record: plain_keras.read_example(record, size), num_parallel_calls=autotune
            ).batch(batch)
        ),
        "plain_decode_resize": _best_rate(per_photo(lambda one: plain_keras.decode_and_resize(one, size))),
        "decode_image": _best_rate(per_photo(lambda one: preprocessing.decode_image(one, size))),
        "batched_transform": _best_rate(
            lambda: records.batch(batch).map(
                lambda serialized: layer(tf.io.parse_example(serialized, input_pipeline._RAW_SPEC))[features.IMAGE],
                num_parallel_calls=autotune,
            )
        ),
    }


def stage_rows(rates: dict) -> list[dict]:
    """The stages as rows, each against its counterpart in the plain pipeline."""

    def row(name, key, baseline_key, note):
        return common.row(ENTRY, f"stage alone: {name}", rates[key], "images/s", rates[baseline_key], note=note)

    return [
        row(
            "reading ExampleGen's GZIP records",
            "gzip_read",
            "raw_read",
            "baseline: reading the raw shards; TFX's ExampleGen writes only GZIP TFRecords (or Parquet)",
        ),
        row(
            "decode_image on each photo, from memory",
            "decode_image",
            "plain_decode_resize",
            "header check for the pixel budget, scaled JPEG decode, centre crop, resize; baseline: decode_jpeg "
            "and resize only",
        ),
        row(
            "the Trainer's batched transform (parse, transform layer), from memory",
            "batched_transform",
            "plain_decode",
            "baseline: the plain pipeline's parse, decode and resize of each record, from memory",
        ),
    ]


def run(quick: bool) -> list[dict]:
    settings = common.default_model_settings()
    size, batch = int(settings["image_size"]), int(settings["batch_size"])
    passes = 1 if quick else 5
    rows = []
    # The workers start first, while this process is small (see common.Worker).
    with common.Worker() as plain, common.Worker() as pipeline, common.Worker() as stages:
        from bench import plain_keras

        with tempfile.TemporaryDirectory(prefix="bench_input_") as temp:
            work = Path(temp)
            shards, source = common.flower_shards(work, 2 if quick else 12)
            files = common.as_examplegen_output(shards, work / "examples")
            transform_dir = common.write_transform_graph(files, size, work)
            examples = plain_keras.count(shards)
            steps = examples // batch
            for name, training, epochs in MODES:
                baseline, figure, uncached = compare(
                    plain,
                    pipeline,
                    (shards, size, batch, training, epochs, steps),
                    (files, transform_dir, batch, training, epochs, steps, examples),
                    passes,
                )
                rows.append(
                    common.row(ENTRY, f"Trainer tf.data pipeline, {name}", figure, "images/s", baseline, target=TARGET)
                )
                rows.append(
                    common.row(
                        ENTRY,
                        f"the same without its in-memory cache, {name}",
                        uncached,
                        "images/s",
                        baseline,
                        target=TARGET,
                    )
                )
            # Where the first pass's time goes, stage by stage.
            rates = stages.call(stage_rates, shards, files, transform_dir, size, batch)
        plain_peak, pipeline_peak = plain.peak_mb(), pipeline.peak_mb()
    for entry_row in rows:
        entry_row.update(
            peak_mb=pipeline_peak,
            baseline_peak_mb=plain_peak,
            note=f"{source}; {size}x{size}, batch {batch}; best of {passes} runs, set-up included",
        )
    return rows + stage_rows(rates)


def main(argv: list[str] | None = None) -> int:
    return common.entry_main(run, __doc__, "2 shards, one pass", argv)


if __name__ == "__main__":
    sys.exit(main())
