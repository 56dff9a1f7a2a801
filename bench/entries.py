"""The table of benchmark entries that ``python -m bench`` runs, in order.

Each entry names a module with ``run(quick) -> list[dict]`` (rows as
``bench/common.py`` makes them), its section title in BENCHMARKS.md, and
what it measures against what. Add an entry here to add a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    module: str
    title: str
    what: str
    optional: bool = False


ENTRIES = [
    Entry(
        "input",
        "bench.bench_input",
        "Input pipeline",
        "Images per second that the Trainer's tf.data pipeline (ExampleGen's GZIP records through the "
        "transform graph, batched) delivers, against the codelab's plain tf.data pipeline (TFRecordDataset "
        "with parallel reads, decode, resize, normalize) on the same shards. Target: at least 0.8.",
    ),
    Entry(
        "training",
        "bench.bench_training",
        "Training",
        "Images per second of the Trainer's `run_fn` (count, build, fit with its callbacks, export with "
        "signatures) against a plain Keras `fit` of the same model on the same data (then a SavedModel). "
        "Target: at least 0.9.",
    ),
    Entry(
        "end_to_end",
        "bench.bench_end_to_end",
        "End to end",
        "Wall time of `flowers-tfx run` on the default data set (fresh work directory) with its per-component "
        "breakdown, against a plain Keras script training the same model for the same epochs on the same "
        "shards and saving a SavedModel. Target: at most 2x; goal 1.25x.",
    ),
    Entry(
        "storage",
        "bench.bench_storage",
        "Storage",
        "Bytes of everything the end-to-end run wrote (artifacts, metadata, pushed model, run report) "
        "against the raw shards it read. Target: at most 2x.",
    ),
    Entry(
        "data",
        "bench.bench_data",
        "Conversion",
        "Images per second of `data convert` (Apache Beam) against a single-process loop doing the same "
        "work; and of `data synth`.",
    ),
    Entry(
        "accuracy",
        "bench.bench_accuracy",
        "Time to accuracy",
        "Held-out accuracy (shards 08-09 of the real photos, never used to choose a recipe, through the "
        "serving signature on JPEG bytes) and wall time of a whole pipeline run training mobilenetv2 on "
        "shards 00-07 and 10-11, against the same recipe in a plain Keras notebook. Goal: at least 0.95 "
        "within 10 minutes on 2 cores.",
    ),
    Entry(
        "scale",
        "bench.bench_scale",
        "Scale",
        "Wall time per 1,000 photos of `flowers-tfx run` and of each component on 1,000, 4,000 and 16,000 "
        "synthetic 64x64 photos (2 epochs), against the same figure at 1,000 photos: the ratio is the growth "
        "of the cost per photo (1.0: linear). Peak memory of the largest process.",
    ),
    Entry(
        "serving",
        "bench.bench_serving",
        "Serving",
        "Latency and throughput of the exported model's serving signature on JPEG bytes, against the bare "
        "Keras model on images preprocessed beforehand (`bench/bench_serving.py`).",
        optional=True,
    ),
    Entry(
        "batch_predict",
        "bench.bench_batch_predict",
        "Batch prediction",
        "Images per second of `flowers-tfx batch-predict` (Beam RunInference over the serving signature, "
        "with 1 and 2 DirectRunner worker processes; listing, screening, writing JSON Lines and the tally "
        "included) against the same model called in a plain loop over the same JPEG files (read, batches of "
        "32 through the signature). Goal: at least 0.8 with one worker, more with two.",
    ),
]
BY_NAME = {entry.name: entry for entry in ENTRIES}
