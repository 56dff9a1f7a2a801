"""Scale: the default pipeline on 1,000, 4,000 and 16,000 synthetic photos.

Each size is one ``flowers-tfx run`` (a command, imports included) in a
fresh work directory, on synthetic 64x64 photos generated beforehand
(untimed), with a fixed number of epochs so that training work grows with
the photos alone. Each row is a component's wall time per 1,000 photos at
one size; its baseline is the same figure at the smallest size, so the
ratio is the growth of the cost per photo (1.0: the component scales
linearly; below 1: fixed costs are spread over more photos). Peak memory is
the largest process's resident set (the pipeline, or one of its Beam
workers).

    python -m bench.bench_scale            # 1,000, 4,000 and 16,000 photos, 2 epochs
    python -m bench.bench_scale --quick    # 200 and 400 photos, 1 epoch
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
from bench.pipeline_run import run_pipeline  # noqa: E402

ENTRY = "scale"
SIZES = (1_000, 4_000, 16_000)
QUICK_SIZES = (200, 400)
EPOCHS, QUICK_EPOCHS = 2, 1
IMAGE_SIZE = 64
PHOTOS_PER_SHARD = 250
# Components whose time is a few tenths of a second at every size are left out of the table.
NOTABLE_SECONDS = 1.0


def write_photos(folder: Path, photos: int) -> str:
    """Synthetic 64x64 photos in shards of about 250: the glob of the shards."""
    from pipeline.data.synth import write_synthetic_shards

    write_synthetic_shards(
        str(folder), images=photos, shards=max(2, photos // PHOTOS_PER_SHARD), seed=42, size=IMAGE_SIZE
    )
    return f"{folder}/*.tfrec"


def measure(temp: Path, photos: int, epochs: int):
    with common.Worker() as worker:  # TensorFlow for the drawing, in a process of its own
        data = worker.call(write_photos, temp / f"photos-{photos}", photos)
    overrides = {
        "data.source": data,
        "run.work_dir": str(temp / f"work-{photos}"),
        "model.epochs": epochs,
        "model.image_size": IMAGE_SIZE,
        # Push whatever the accuracy: the Pusher's time is part of the run.
        "gate.min_accuracy": 0,
    }
    return run_pipeline(overrides)


def per_thousand(seconds: float, photos: int) -> float:
    return seconds * 1000 / photos


def rows_for(runs: dict) -> list[dict]:
    """The table: whole run and each notable component, per 1,000 photos at each size."""
    sizes = sorted(runs)
    smallest = sizes[0]
    rows = []
    for photos in sizes:
        run = runs[photos]
        rows.append(
            common.row(
                ENTRY,
                f"whole run, {photos:,} photos: s per 1,000 photos",
                per_thousand(run.command.seconds, photos),
                "s",
                per_thousand(runs[smallest].command.seconds, smallest),
                higher_is_better=False,
                peak_mb=run.command.peak_mb,
                baseline_peak_mb=runs[smallest].command.peak_mb,
                note=f"{run.command.seconds:.0f} s wall, {run.command.cpu_seconds:.0f} s CPU",
            )
        )
    base = {name: seconds for name, _, seconds in runs[smallest].components}
    notable = [name for name, _, seconds in runs[sizes[-1]].components if seconds >= NOTABLE_SECONDS]
    for name in notable:
        for photos in sizes:
            seconds = {n: s for n, _, s in runs[photos].components}.get(name)
            if seconds is None:
                continue
            rows.append(
                common.row(
                    ENTRY,
                    f"  {name}, {photos:,} photos: s per 1,000 photos",
                    per_thousand(seconds, photos),
                    "s",
                    per_thousand(base[name], smallest) if base.get(name) else None,
                    higher_is_better=False,
                    note=f"{seconds:.1f} s",
                )
            )
    return rows


def run(quick: bool) -> list[dict]:
    sizes, epochs = (QUICK_SIZES, QUICK_EPOCHS) if quick else (SIZES, EPOCHS)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as temp:
        runs = {}
        for photos in sizes:
            print(f"scale: {photos:,} photos, {epochs} epoch(s) ...", flush=True)
            runs[photos] = measure(Path(temp), photos, epochs)
            print(f"scale: {photos:,} photos took {runs[photos].command.seconds:.0f} s", flush=True)
        return rows_for(runs)


def main(argv: list[str] | None = None) -> int:
    return common.entry_main(run, __doc__, "200 and 400 photos, 1 epoch", argv)


if __name__ == "__main__":
    sys.exit(main())
