"""What the benchmark entries share: the row format, peak memory, worker
processes for each side of a comparison, and the shards they read.

Every entry's ``run(quick)`` returns rows made by :func:`row`: one figure,
the plain baseline measured in the same run, their ratio and the target, so
the harness (``python -m bench``) can print and record any entry alike.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import resource
import subprocess
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_SHARDS = SHARED_DATA / "flowers-192"


def row(
    entry: str,
    name: str,
    figure: float | None,
    unit: str,
    baseline: float | None = None,
    *,
    higher_is_better: bool = True,
    target: float | None = None,
    goal: float | None = None,
    peak_mb: float | None = None,
    baseline_peak_mb: float | None = None,
    note: str = "",
    **details,
) -> dict:
    """One line of a benchmark table.

    ``ratio`` is figure / baseline in the figure's unit; ``target`` bounds
    the ratio from below when higher is better (throughput) and from above
    otherwise (time, bytes).
    """
    ratio = figure / baseline if figure is not None and baseline else None
    met = None
    if target is not None and ratio is not None:
        met = ratio >= target if higher_is_better else ratio <= target
    return {
        "entry": entry,
        "name": name,
        "figure": _round(figure),
        "baseline": _round(baseline),
        "unit": unit,
        "ratio": None if ratio is None else round(ratio, 3),
        "higher_is_better": higher_is_better,
        "target": target,
        "goal": goal,
        "met": met,
        "peak_mb": peak_mb,
        "baseline_peak_mb": baseline_peak_mb,
        "note": note,
        **details,
    }


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, 1) if abs(value) >= 10 else round(value, 3)


def peak_rss_mb(children: bool = True) -> float:
    """Peak resident memory of this process (and of its finished children), in MB."""
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if children:
        kilobytes = max(kilobytes, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return round(kilobytes / 1024, 1)


class Worker:
    """One side of a comparison in a fresh process of its own.

    Each side then pays its own imports and its peak memory is its own, while
    the caller can still alternate the two sides call by call, so that both
    see the same load on a shared machine.

    Start workers while the calling process is still small: Linux carries a
    process's peak memory over to the children it starts (``ru_maxrss``
    survives fork and exec), so a worker started after the caller imported
    TensorFlow would report at least the caller's peak.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context)
        self.call(os.getpid)  # start the process now

    def call(self, function, *args, **kwargs):
        return self._pool.submit(function, *args, **kwargs).result()

    def peak_mb(self) -> float:
        return self.call(peak_rss_mb, True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown()


@dataclasses.dataclass
class CommandResult:
    status: int
    seconds: float
    cpu_seconds: float
    peak_mb: float
    # Each line it printed, with the seconds since the start when it came.
    lines: list[tuple[float, str]]

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)


def run_command(args: list[str], env: dict | None = None, cwd: str | None = None) -> CommandResult:
    """Runs a command to its end and says how long it took, how much CPU time
    and memory it (and its children) used, and what it printed when.

    Call it from a small process (see :class:`Worker`): the command's peak
    memory is at least the caller's.
    """
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
    lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in process.stdout]
    process.stdout.close()
    # wait4 gives this child's own resource usage (its descendants included).
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return CommandResult(
        process.returncode, seconds, usage.ru_utime + usage.ru_stime, round(usage.ru_maxrss / 1024, 1), lines
    )


def flower_shards(work: Path, count: int, synthetic_per_shard: int = 230) -> tuple[list[str], str]:
    """``count`` shards of 192x192 flower photos: the real ones from
    ../shared/data when present, else synthetic ones of the same size."""
    real = sorted(str(path) for path in REAL_SHARDS.glob("flowers*.tfrec"))
    if len(real) >= count:
        return real[:count], f"{count} real shards ({REAL_SHARDS})"
    from pipeline.data.synth import write_synthetic_shards

    shards = write_synthetic_shards(
        str(work / "synthetic"), images=count * synthetic_per_shard, shards=count, seed=42, size=192
    )
    return sorted(shards), f"{count} synthetic shards (real photos absent: {REAL_SHARDS})"


def as_examplegen_output(shards: list[str], out_dir: Path) -> list[str]:
    """The same records as ImportExampleGen writes them (GZIP TFRecords), which
    is what the Trainer's input pipeline reads."""
    import tensorflow as tf

    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for shard in shards:
        path = str(out_dir / (Path(shard).stem + ".gz"))
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in tf.data.TFRecordDataset(shard):
                writer.write(record.numpy())
        files.append(path)
    return files


def write_transform_graph(files: list[str], image_size: int, out_dir: Path) -> str:
    """The transform graph of ``preprocessing_fn`` analysed over ``files`` with
    tft_beam, as the Transform component makes it (set-up, not timed)."""
    import tensorflow as tf
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from components.records import features
    from components.transform import preprocessing

    spec = {
        features.IMAGE: tf.io.FixedLenFeature([1], tf.string),
        features.LABEL: tf.io.FixedLenFeature([1], tf.int64),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    instances = [
        {key: value.numpy() for key, value in tf.io.parse_single_example(record, spec).items()}
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]
    with tft_beam.Context(temp_dir=str(out_dir / "tmp"), force_tf_compat_v1=False):
        transform_fn = (instances, metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"image_size": image_size})
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(out_dir / "transform"))
    return str(out_dir / "transform")


def default_model_settings(overrides: dict | None = None) -> dict:
    """The [model] settings of a default run (the recipe of the default model)."""
    from dataclasses import asdict

    from components.trainer import recipes
    from pipeline.config_loading import load_config

    return recipes.resolve(asdict(load_config(overrides=overrides or {}, environ={}).model))


def entry_main(run, description: str, quick_help: str, argv: list[str] | None = None) -> int:
    """The command line of an entry run as a script: ``[--quick]``, then its table."""
    import argparse

    from bench.console_table import format_console

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args(argv)
    print(format_console(run(args.quick)))
    return 0
