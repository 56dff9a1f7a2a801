"""Storage: bytes of everything a pipeline run writes, against the raw shards it read.

Counts the work directory of one ``flowers-tfx run`` on the default data set,
less the shards themselves: every component's artifacts (``pipeline/``), the
metadata store, the pushed model (``serving/``) and the run's log and report
(``runs/``), with one row per part.

The end-to-end benchmark measures its own run's work directory with
:func:`measure`, so the harness does not run the pipeline twice; run alone,
this entry runs the pipeline itself:

    python -m bench.bench_storage [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.shared import tf_environment  # noqa: E402

tf_environment.configure()

from bench import common  # noqa: E402

ENTRY = "storage"
TARGET = 2.0
MB = 1024 * 1024


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file below a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(work_dir: Path, shards_glob: str) -> list[dict]:
    """Rows for the run in ``work_dir`` that read the shards ``shards_glob``."""
    import glob

    raw = sum(os.path.getsize(path) for path in glob.glob(shards_glob))
    parts = {
        f"pipeline/{component.name}": component
        for component in sorted((work_dir / "pipeline").iterdir())
        if component.is_dir()
    }
    parts.update({name: work_dir / name for name in ("metadata.sqlite", "serving", "runs")})
    sizes = {name: size_of(path) for name, path in parts.items() if path.exists()}
    rows = [
        common.row(
            ENTRY,
            "all a run writes (pipeline/, metadata, serving/, runs/)",
            sum(sizes.values()) / MB,
            "MB",
            raw / MB,
            higher_is_better=False,
            target=TARGET,
            note="baseline: the raw shards",
        )
    ]
    for name, size in sorted(sizes.items(), key=lambda item: -item[1]):
        rows.append(common.row(ENTRY, f"  {name}", size / MB, "MB", raw / MB, higher_is_better=False))
    return rows


def run(quick: bool) -> list[dict]:
    from bench import pipeline_run

    with tempfile.TemporaryDirectory(prefix="bench_storage_") as temp:
        work_dir = Path(temp) / "work"
        with common.Worker() as worker:  # keeps TensorFlow out of this process (see run_command)
            overrides, _, data, _ = worker.call(pipeline_run.prepare, work_dir, quick)
        return measure(pipeline_run.run_pipeline(overrides).work_dir, data)


def main(argv: list[str] | None = None) -> int:
    return common.entry_main(run, __doc__, "300 images, 2 epochs", argv)


if __name__ == "__main__":
    sys.exit(main())
