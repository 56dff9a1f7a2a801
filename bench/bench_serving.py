"""What does the serving signature cost on top of the model itself?

``serving_default`` takes encoded JPEG bytes and runs the whole transform
graph (decode, centre crop, resize, standardize) before the Keras model. The
baseline calls the same Keras model (``loaded.model``) on images that were
preprocessed beforehand, outside the timing. Two measures:

- latency of one 192x192 JPEG per call (median and 95th percentile);
- throughput of batches of 64.

The overhead is the signature's time over the baseline's, minus one (the
goal for batches of 64 is at most 10%). That baseline does not decode
anything, so two more rows split the overhead: the transform layer alone on
the JPEG bytes (decoding, cropping, resizing, standardizing: the work a
model taking JPEG bytes cannot skip), and a second baseline, the plain
TensorFlow way of serving JPEG bytes (``tf.io.decode_jpeg``, ``resize``,
standardize, the model, in one ``tf.function``) that the signature is
compared with as well.

    python -m bench.bench_serving              # trains a small model first (a few minutes on 2 cores)
    python -m bench.bench_serving --quick      # fewer images and calls
    python -m bench.bench_serving --model flowers-work/serving    # an existing model instead

``run(quick)`` returns the rows for a harness: name, batch, calls,
median_ms, p95_ms, images_per_s, baseline_median_ms, overhead (None where
there is no baseline).
"""

from __future__ import annotations

import argparse
import io
import statistics
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
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")  # client-library version notices

IMAGE_SIZE = 192  # the photos: 192x192 JPEGs, as in the public TFRecords
BATCH = 64


def train_small_model(work_dir: Path, images: int) -> Path:
    """Runs the pipeline on synthetic 192px photos (default convnet settings, one
    epoch, no accuracy floor) and returns the pushed version folder."""
    from pipeline.config_loading import load_config
    from pipeline.data.synth import write_synthetic_shards
    from pipeline.runners.local import run_local
    from pipeline.serving.versions import find_saved_model

    shards = work_dir / "shards"
    write_synthetic_shards(str(shards), images=images, shards=2, seed=3, size=IMAGE_SIZE)
    overrides = {
        "data.source": f"{shards}/*.tfrec",
        "run.work_dir": str(work_dir / "work"),
        "model.epochs": 1,
        "gate.min_accuracy": 0,
    }
    log = io.StringIO()
    result = run_local(load_config(overrides=overrides, environ={}), log)
    if not result.succeeded:
        raise RuntimeError(f"training the benchmark model failed:\n{log.getvalue()}")
    return find_saved_model(work_dir / "work" / "serving")


def sample_jpegs(count: int) -> list[bytes]:
    """``count`` synthetic 192x192 flower photos, JPEG-encoded."""
    from pipeline.data.synth import synthetic_jpeg

    return [synthetic_jpeg(seed=9, index=i, class_id=i % 5, size=IMAGE_SIZE) for i in range(count)]


def time_calls(call, calls: int, warmup: int) -> list[float]:
    """Seconds of each of ``calls`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _row(name: str, batch: int, seconds: list[float], baseline: list[float] | None = None) -> dict:
    median = statistics.median(seconds)
    baseline_median = statistics.median(baseline) if baseline else None
    return {
        "name": name,
        "batch": batch,
        "calls": len(seconds),
        "median_ms": round(median * 1000, 2),
        "p95_ms": round(_percentile(seconds, 0.95) * 1000, 2),
        "images_per_s": round(batch / median, 1),
        "baseline_median_ms": None if baseline_median is None else round(baseline_median * 1000, 2),
        "overhead": None if baseline_median is None else round(median / baseline_median - 1, 3),
    }


# Issue 17: the signature's time on batches, at most 1.1 times its baseline's.
BATCH_GOAL = 1.1


def _with_goal(row: dict) -> dict:
    return {**row, "target": BATCH_GOAL, "met": row["overhead"] + 1 <= BATCH_GOAL}


def measure(model_dir: Path, quick: bool) -> list[dict]:
    """Latency and throughput of the signature against the bare Keras model."""
    import tensorflow as tf

    from components.records import features
    from components.trainer import signatures

    loaded = tf.saved_model.load(str(model_dir))
    serve = loaded.signatures["serving_default"]
    jpegs = sample_jpegs(BATCH)

    def preprocess(encoded: tf.Tensor) -> tf.Tensor:
        """The model's input for these JPEG bytes, by the model's own transform layer."""
        raw = {
            features.IMAGE: tf.reshape(encoded, [-1, 1]),
            features.LABEL: tf.zeros([tf.size(encoded), 1], tf.int64),  # the layer wants every raw feature
        }
        return loaded.transform_layer(raw)[features.IMAGE]

    one_jpeg = tf.constant(jpegs[:1])
    batch_jpegs = tf.constant(jpegs)
    one_image, batch_images = preprocess(one_jpeg), preprocess(batch_jpegs)
    calls, batch_calls = (30, 5) if quick else (200, 30)

    def signature(images):
        return lambda: serve(**{signatures.SERVING_INPUT: images})[signatures.PROBABILITIES].numpy()

    def keras_model(images):
        return lambda: loaded.model(images, training=False).numpy()

    # The transform layer in a graph of its own, as the signature runs it.
    transform_graph = tf.function(preprocess)

    def transform_layer(images):
        return lambda: transform_graph(images).numpy()

    plain = plain_jpeg_model(loaded.model, int(batch_images.shape[1]))

    single_model = time_calls(keras_model(one_image), calls, warmup=5)
    single_signature = time_calls(signature(one_jpeg), calls, warmup=5)
    batch_model = time_calls(keras_model(batch_images), batch_calls, warmup=2)
    batch_signature = time_calls(signature(batch_jpegs), batch_calls, warmup=2)
    batch_transform = time_calls(transform_layer(batch_jpegs), batch_calls, warmup=2)
    batch_plain = time_calls(lambda: plain(batch_jpegs).numpy(), batch_calls, warmup=2)
    ratio = scaled_decode_ratio(IMAGE_SIZE, int(batch_images.shape[1]))
    decode_only = libjpeg_decode(ratio)
    batch_decode = time_calls(lambda: decode_only(batch_jpegs).numpy(), batch_calls, warmup=2)
    median = {
        name: statistics.median(seconds)
        for name, seconds in (("model", batch_model), ("signature", batch_signature), ("transform", batch_transform))
    }
    overhead = median["signature"] - median["model"]
    return [
        _row("1 image: Keras model on preprocessed input (baseline)", 1, single_model),
        _row("1 image: serving_default on JPEG bytes", 1, single_signature, single_model),
        _row(f"batch of {BATCH}: Keras model on preprocessed input (baseline)", BATCH, batch_model),
        _with_goal(_row(f"batch of {BATCH}: serving_default on JPEG bytes", BATCH, batch_signature, batch_model)),
        # What the signature adds, split: the transform layer's own time, and the
        # rest (signature - model - transform layer; the ops around them).
        {
            **_row(
                f"batch of {BATCH}: the transform layer alone on JPEG bytes (the decoding the baseline skips)",
                BATCH,
                batch_transform,
            ),
            "share_of_overhead": round(median["transform"] / overhead, 2) if overhead > 0 else None,
            "rest_ms": round((overhead - median["transform"]) * 1000, 2),
        },
        _row(
            f"batch of {BATCH}: libjpeg's decode alone, at the transform's scale 1/{ratio} (no crop, resize or "
            "standardization)",
            BATCH,
            batch_decode,
        ),
        _row(
            f"batch of {BATCH}: plain TensorFlow on JPEG bytes (decode_jpeg, resize, model; baseline)",
            BATCH,
            batch_plain,
        ),
        _with_goal(
            _row(
                f"batch of {BATCH}: serving_default on JPEG bytes, against the plain TensorFlow way",
                BATCH,
                batch_signature,
                batch_plain,
            )
        ),
    ]


def scaled_decode_ratio(photo_size: int, image_size: int) -> int:
    """The scale-down libjpeg decodes a square photo with in the transform graph."""
    import tensorflow as tf

    from components.transform import preprocessing

    index = preprocessing.jpeg_scale_index(tf.constant([photo_size, photo_size]), image_size)
    return preprocessing.JPEG_SCALES[int(index)]


def libjpeg_decode(ratio: int):
    """Only the decoding of a batch of JPEGs, at 1/``ratio``, as the transform
    graph's map_fn runs it: the part of its time no graph can save."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def decode(encoded):
        return tf.map_fn(
            lambda one: tf.shape(tf.io.decode_jpeg(one, channels=3, ratio=ratio)),
            encoded,
            fn_output_signature=tf.TensorSpec([3], tf.int32),
            parallel_iterations=8,
        )

    return decode


def plain_jpeg_model(model, image_size: int):
    """JPEG bytes to probabilities the way a plain TensorFlow server would:
    decode each image whole, resize, standardize with fixed constants (the
    same arithmetic as the transform graph's), run the model."""
    import tensorflow as tf

    from bench import plain_keras

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(encoded):
        images = tf.map_fn(
            lambda one: plain_keras.decode_and_resize(one, image_size),
            encoded,
            fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
            parallel_iterations=8,
        )
        return model((images - 0.5) / 0.25, training=False)

    return classify


def run(quick: bool, model_dir: Path | None = None) -> list[dict]:
    """Times the serving signature; trains a small model first unless ``model_dir`` is given."""
    if model_dir is not None:
        from pipeline.serving.versions import find_saved_model

        return measure(find_saved_model(model_dir), quick)
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as temp:
        return measure(train_small_model(Path(temp), images=200 if quick else 400), quick)


def format_rows(rows: list[dict]) -> str:
    """The rows as a small text table."""
    headers = ("benchmark", "calls", "median ms", "p95 ms", "images/s", "baseline ms", "overhead")
    keys = ("name", "calls", "median_ms", "p95_ms", "images_per_s", "baseline_median_ms", "overhead")

    def cell(row: dict, key: str) -> str:
        if row[key] is None:
            return "-"
        return f"{row[key]:+.0%}" if key == "overhead" else str(row[key])

    cells = [headers] + [tuple(cell(row, key) for key in keys) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=False)))
        for line in cells
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller model run and fewer timed calls")
    parser.add_argument(
        "--model",
        metavar="DIR",
        type=Path,
        help="a model version or serving directory to time, instead of training one",
    )
    args = parser.parse_args(argv)
    rows = run(args.quick, args.model)
    print(format_rows(rows))
    print("overhead: the signature's median time over the baseline's, minus one (goal for batches of 64: at most +10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
