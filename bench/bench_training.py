"""Training: images per second of the Trainer's ``run_fn`` against a plain
Keras ``fit`` of the same model on the same data.

``run_fn`` is called as TFX calls it (``fn_args`` naming ExampleGen-style
GZIP records, a transform graph analysed beforehand, untimed, and the default
model's settings): it counts the records, builds and fits the model with its
callbacks and exports the SavedModel with its signatures. The baseline
(``bench.plain_keras.train``) builds the same model, fits it for the same
epochs with the same batch size, augmentation and validation on the raw
shards through the codelab's plain tf.data pipeline, and saves a SavedModel.
Each runs in a process of its own, one after the other.

    python -m bench.bench_training            # 4 shards to train, 1 to validate, 3 epochs
    python -m bench.bench_training --quick    # 1 shard each, 1 epoch; fewer timed epochs

The figure is images trained (steps x batch x epochs) per second of the
whole call.

How close to the machine (FLOP/s against a matmul's peak) is measured in the
same run: see ``bench/training_flops.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.shared import tf_environment  # noqa: E402

tf_environment.configure()

from bench import common  # noqa: E402
from bench.training_calls import first_records, time_plain_fit, time_run_fn  # noqa: E402
from bench.training_flops import EVAL_RECORDS, THREADS, configure_threads, how_close_to_the_machine  # noqa: E402

ENTRY = "training"
TARGET = 0.9


def run(quick: bool) -> list[dict]:
    overrides = {"model.epochs": 1} if quick else {"model.epochs": 3}
    settings = common.default_model_settings(overrides)
    size, batch, epochs = int(settings["image_size"]), int(settings["batch_size"]), int(settings["epochs"])
    train_count = 1 if quick else 4
    # The workers start first, while this process is small (see common.Worker).
    with (
        common.Worker() as plain_side,
        common.Worker() as trainer_side,
        common.Worker() as defaults_side,
        common.Worker() as threads_side,
    ):
        threads_side.call(configure_threads, THREADS["intra"], THREADS["inter"])
        with tempfile.TemporaryDirectory(prefix="bench_training_") as temp:
            work = Path(temp)
            shards, source = common.flower_shards(work, train_count + 1)
            train_shards, eval_shards = shards[:train_count], shards[train_count:]
            train_files = common.as_examplegen_output(train_shards, work / "examples" / "train")
            eval_files = common.as_examplegen_output(eval_shards, work / "examples" / "eval")
            transform_dir = common.write_transform_graph(train_files, size, work)
            plain = plain_side.call(time_plain_fit, train_shards, eval_shards, settings, str(work / "plain"))
            seconds = trainer_side.call(
                time_run_fn, train_files, eval_files, transform_dir, settings, str(work / "trainer")
            )
            plain_peak, trainer_peak = plain_side.peak_mb(), trainer_side.peak_mb()
            machine_rows = how_close_to_the_machine(
                quick,
                work,
                train_files,
                first_records(eval_files[0], EVAL_RECORDS, work / "eval_subset.gz"),
                {size: transform_dir},
                defaults_side,
                threads_side,
                source,
            )
    # The same steps on both sides: a whole number of batches of the same records.
    images = plain["images_trained"]
    return [
        common.row(
            ENTRY,
            f"Trainer run_fn ({settings['name']}, {epochs} epochs)",
            images / seconds,
            "images/s",
            images / plain["seconds"],
            target=TARGET,
            peak_mb=trainer_peak,
            baseline_peak_mb=plain_peak,
            note=(
                f"{source}: {plain['train_examples']} to train, {plain['eval_examples']} to validate; "
                f"{size}x{size}, batch {batch}; run_fn {seconds:.1f} s, plain {plain['seconds']:.1f} s "
                f"(fit {plain['fit_seconds']:.1f} s, save {plain['save_seconds']:.1f} s)"
            ),
            images=images,
            seconds=round(seconds, 2),
            baseline_seconds=plain["seconds"],
        )
    ] + machine_rows


def main(argv: list[str] | None = None) -> int:
    return common.entry_main(run, __doc__, "1 shard to train, 1 epoch", argv)


if __name__ == "__main__":
    sys.exit(main())
