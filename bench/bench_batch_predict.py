"""Does batch prediction keep up with a plain loop? Images per second of
``flowers-tfx batch-predict`` against the same model called in a loop.

Both sides classify the same JPEG files (the real 192x192 photos of
../shared/data/flowers-192 written out as files, or synthetic ones when that
folder is absent) with the same SavedModel: the project's default model
(convnet at its recipe's image size, untrained: speed does not depend on
the weights) behind the serving contract, made by tests/tiny_model.py in a
second. The plain loop loads the model, reads each file and sends batches
of 32 through ``serving_default``; batch-predict does that inside Beam
(listing, screening every image, RunInference, JSON Lines, the tally) with
1 and 2 DirectRunner worker processes. Each side is timed whole, model
loading included, best of a few rounds taken in turn.

    python -m bench.bench_batch_predict            # about three minutes on 2 cores
    python -m bench.bench_batch_predict --quick    # 200 photos, one round, one worker
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.shared import tf_environment  # noqa: E402

tf_environment.configure()
warnings.filterwarnings("ignore", message="You are using a non-supported Python version", category=FutureWarning)

from bench.common import REAL_SHARDS, row  # noqa: E402

ENTRY = "batch_predict"
BATCH = 32


def write_photo_files(folder: Path, count: int) -> list[Path]:
    """``count`` JPEG files from the real shards (synthetic shards when absent)."""
    import tensorflow as tf

    shards = sorted(REAL_SHARDS.glob("*.tfrec"))
    if not shards:
        from pipeline.data.synth import write_synthetic_shards

        write_synthetic_shards(str(folder / "shards"), images=count, shards=2, seed=3, size=192)
        shards = sorted((folder / "shards").glob("*.tfrec"))
    files = []
    for record in tf.data.TFRecordDataset([str(shard) for shard in shards]).take(count):
        image = tf.train.Example.FromString(record.numpy()).features.feature["image"].bytes_list.value[0]
        files.append(folder / "photos" / f"{len(files):05d}.jpg")
        files[-1].parent.mkdir(parents=True, exist_ok=True)
        files[-1].write_bytes(image)
    return files


def time_plain_loop(model_dir: str, files: list[Path]) -> float:
    """Seconds to load the model and classify ``files`` in batches, in a loop."""
    from components.shared.classifier import ImageClassifier

    started = time.perf_counter()
    classifier = ImageClassifier(model_dir)
    for start in range(0, len(files), BATCH):
        classifier.classify([path.read_bytes() for path in files[start : start + BATCH]])
    return time.perf_counter() - started


def time_batch_predict(model_dir: str, glob: str, out_dir: Path, workers: int) -> float:
    """Seconds of a whole ``batch_predict`` call (listing to tally) with ``workers`` processes."""
    from pipeline.config_loading import load_config
    from pipeline.serving import batch_predict

    args = batch_predict.beam_args(load_config(environ={}), "DirectRunner", workers)
    started = time.perf_counter()
    tally = batch_predict.batch_predict(model_dir, glob, str(out_dir), args, batch_size=BATCH, progress=io.StringIO())
    seconds = time.perf_counter() - started
    if tally.refused:
        raise RuntimeError(f"{tally.refused} of the benchmark's photos were refused")
    return seconds


def run(quick: bool) -> list[dict]:
    import apache_beam  # noqa: F401  (imported up front so no timing includes it)

    from components.trainer import recipes
    from pipeline.config_loading import load_config

    # The tests' helper (tests/ is not a package: another "tests" is installed).
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny_model import export_tiny_model

    count, rounds, worker_counts = (200, 1, (1,)) if quick else (2760, 2, (1, 2))
    model = load_config(environ={}).model.name
    image_size = recipes.RECIPES[model]["image_size"]
    with tempfile.TemporaryDirectory(prefix="bench_batch_predict_") as temp:
        work = Path(temp)
        model_dir = export_tiny_model(work / "serving" / "1", image_size=image_size, model_name=model)
        files = write_photo_files(work, count)
        plain, jobs = [], {workers: [] for workers in worker_counts}
        for round_ in range(rounds):
            plain.append(len(files) / time_plain_loop(model_dir, files))
            for workers in worker_counts:
                out = work / f"out-{workers}-{round_}"
                jobs[workers].append(len(files) / time_batch_predict(model_dir, f"{work}/photos/*.jpg", out, workers))
                print(f"round {round_ + 1}: plain {plain[-1]:.0f}/s, {workers} worker(s) {jobs[workers][-1]:.0f}/s")
    baseline = max(plain)
    note = f"{len(files)} photos, {model} at {image_size}px, best of {rounds}"
    rows = [row(ENTRY, "plain loop (baseline)", baseline, "images/s", note=note)]
    for workers, figures in jobs.items():
        rows.append(
            row(
                ENTRY,
                f"batch-predict, {workers} DirectRunner worker{'s' if workers > 1 else ''}",
                max(figures),
                "images/s",
                baseline,
                target=0.8 if workers == 1 else None,
                note=note,
            )
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    for result in run(parser.parse_args().quick):
        print(result)
