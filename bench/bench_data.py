"""How fast are the data tools? Images per second of synth and of the Beam conversion.

The conversion is compared with a plain single-process loop doing the same
work (decode, square, resize, encode, write one TFRecord) with the same
functions, so the ratio shows what Beam costs or gains on this machine.

    python -m bench.bench_data            # full run, about a minute on 2 cores
    python -m bench.bench_data --quick    # a few seconds

``run(quick)`` returns the rows for a harness: name, images, seconds,
images_per_s, baseline_images_per_s, ratio (None where there is no baseline).
"""

from __future__ import annotations

import argparse
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

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "flower_photos_sample"
MULTI_PROCESS_ARGS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def _row(name: str, images: int, seconds: float, baseline_images_per_s: float | None = None) -> dict:
    images_per_s = images / seconds if seconds > 0 else float("inf")
    ratio = images_per_s / baseline_images_per_s if baseline_images_per_s else None
    return {
        "name": name,
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": round(images_per_s, 1),
        "baseline_images_per_s": None if baseline_images_per_s is None else round(baseline_images_per_s, 1),
        "ratio": None if ratio is None else round(ratio, 2),
    }


def time_synth(out_dir: str, images: int, size: int = 192) -> float:
    """Seconds to draw and write ``images`` synthetic records."""
    from pipeline.data.synth import write_synthetic_shards

    start = time.perf_counter()
    write_synthetic_shards(out_dir, images, shards=4, seed=0, size=size)
    return time.perf_counter() - start


def write_mixed_size_photos(root: Path, per_class: int) -> Path:
    """A CLASS/*.jpg tree of synthetic photos in assorted sizes and aspect ratios, like downloads."""
    from pipeline.data.synth import draw_flower_picture, image_rng
    from schema import LABELS

    shapes = [(320, 240), (500, 333), (240, 320), (500, 375), (640, 427), (240, 240)]
    for class_id, label in enumerate(LABELS):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            width, height = shapes[i % len(shapes)]
            picture = draw_flower_picture(class_id, image_rng(1, class_id * per_class + i), max(width, height))
            picture.crop((0, 0, width, height)).save(root / label / f"photo{i:04d}.jpg", quality=90)
    return root


def time_beam_convert(source: Path, out_dir: str, beam_args: list[str] | None = None) -> tuple[int, float]:
    """(images written, seconds) of ``convert_folder`` with the given Beam options."""
    from pipeline.data.convert import convert_folder

    start = time.perf_counter()
    result = convert_folder(str(source), out_dir, size=192, shards=4, beam_args=beam_args)
    return result.written, time.perf_counter() - start


def time_plain_convert(source: Path, out_path: str) -> tuple[int, float]:
    """(images written, seconds) of the same conversion as a plain loop into one TFRecord file."""
    from pipeline.data.convert import list_source_images
    from pipeline.data.shards import example_bytes, write_shard
    from pipeline.data.square_photos import ImageDecodeError, square_jpeg

    start = time.perf_counter()
    photos, _ = list_source_images(str(source))

    def records():
        for path, class_id in photos:
            try:
                jpeg = square_jpeg(Path(path).read_bytes(), 192, "crop")
            except ImageDecodeError:
                continue
            yield example_bytes(jpeg, class_id, 192, 192)

    written = write_shard(out_path, records())
    return written, time.perf_counter() - start


def _convert_rows(label: str, source: Path, work: Path, multi_process: bool) -> list[dict]:
    images, plain_seconds = time_plain_convert(source, str(work / f"{label}-plain.tfrec"))
    baseline = images / plain_seconds
    rows = [_row(f"convert {label}: plain loop (baseline)", images, plain_seconds)]
    images, seconds = time_beam_convert(source, str(work / f"{label}-beam"))
    rows.append(_row(f"convert {label}: Beam DirectRunner", images, seconds, baseline))
    if multi_process:
        images, seconds = time_beam_convert(source, str(work / f"{label}-beam-mp"), MULTI_PROCESS_ARGS)
        rows.append(_row(f"convert {label}: Beam DirectRunner 2 processes", images, seconds, baseline))
    return rows


def run(quick: bool) -> list[dict]:
    """Time synth and convert; ``quick`` uses fewer images and skips the multi-process runs."""
    import apache_beam  # noqa: F401
    import tensorflow as tf  # noqa: F401  (imported up front so no timing includes it)

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_data_") as temp:
        work = Path(temp)
        synth_images = 200 if quick else 1000
        seconds = time_synth(str(work / "synth-1"), synth_images)
        rows.append(_row("synth 192x192: 1 process", synth_images, seconds))

        if SAMPLE_DIR.is_dir():
            rows += _convert_rows("real sample", SAMPLE_DIR, work, multi_process=not quick)
        if not quick or not SAMPLE_DIR.is_dir():  # a bigger, mixed-size set (or a stand-in for the sample)
            mixed = write_mixed_size_photos(work / "mixed", per_class=20 if quick else 120)
            rows += _convert_rows("mixed sizes", mixed, work, multi_process=not quick)
    return rows


def format_rows(rows: list[dict]) -> str:
    """The rows as a small text table."""
    headers = ("benchmark", "images", "seconds", "images/s", "baseline/s", "ratio")
    keys = ("name", "images", "seconds", "images_per_s", "baseline_images_per_s", "ratio")
    cells = [headers] + [tuple("-" if row[key] is None else str(row[key]) for key in keys) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=False))
        )
        for line in cells
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer images, no multi-process runs")
    args = parser.parse_args(argv)
    print(format_rows(run(args.quick)))
    print("ratio: images/s divided by the baseline's images/s (above 1: faster than the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
