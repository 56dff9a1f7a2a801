"""End to end: wall time of ``flowers-tfx run`` on the default data set, with
its per-component breakdown, against a plain Keras script that trains the
same model for the same epochs on the same data and saves a SavedModel.

Both are timed as a user would run them, as commands, imports included: the
pipeline in a fresh work directory (nothing cached), the plain script
(``python -m bench.plain_keras``) reading the same shards with an 80/20 hash
split. The synthetic data set is generated into the work directory first,
untimed, so that neither side pays for drawing it; the pipeline would do it
once on a user's first run.

    python -m bench.bench_end_to_end            # the defaults: 1,000 images, 24 epochs; best of 2
    python -m bench.bench_end_to_end --quick    # 300 images, 2 epochs; once

The two commands alternate, each run of the pipeline in a new work directory.

The same run's work directory also gives the storage rows (bench_storage).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.shared import tf_environment  # noqa: E402

tf_environment.configure()

from bench import common  # noqa: E402
from bench.pipeline_run import PipelineRun, clean_environment, prepare, run_pipeline  # noqa: E402

ENTRY = "end_to_end"
TARGET = 2.0
GOAL = 1.25  # issue 29


def run_plain(data: str, settings: dict, eval_fraction: float, out_dir: str) -> tuple[common.CommandResult, dict]:
    """The plain Keras script: how it ran, and the timings it printed."""
    args = [
        sys.executable,
        "-m",
        "bench.plain_keras",
        "--data",
        data,
        "--out",
        out_dir,
        "--model",
        settings["name"],
        "--image-size",
        str(settings["image_size"]),
        "--batch-size",
        str(settings["batch_size"]),
        "--epochs",
        str(settings["epochs"]),
        "--learning-rate",
        str(settings["learning_rate"]),
        "--dropout",
        str(settings["dropout"]),
        "--weights",
        str(settings["weights"]),
        "--seed",
        str(settings["seed"]),
        "--eval-fraction",
        str(eval_fraction),
        "--augment" if settings["augment"] else "--no-augment",
    ]
    project = str(Path(__file__).resolve().parents[1])
    command = common.run_command(args, env=clean_environment(), cwd=project)
    if command.status != 0:
        raise RuntimeError(f"the plain Keras script failed (exit status {command.status}):\n{command.output[-4000:]}")
    printed_at, line = command.lines[-1]
    return command, {**json.loads(line), "printed_at": printed_at}


def breakdown(pipeline: PipelineRun, plain: common.CommandResult, timings: dict) -> list[dict]:
    """Where each side's wall time went."""
    rows = [common.row(ENTRY, "  imports and set-up, to the first component", pipeline.first_component, "s")]
    for name, how, seconds in pipeline.components:
        rows.append(common.row(ENTRY, f"  {name}", seconds, "s", note="" if how == "done" else how))
    between = pipeline.finished - pipeline.first_component - sum(s for _, _, s in pipeline.components)
    rows.append(common.row(ENTRY, "  between components (orchestration)", between, "s"))
    rows.append(common.row(ENTRY, "  summary, report and exit", pipeline.command.seconds - pipeline.finished, "s"))
    started = timings["printed_at"] - timings["seconds"]
    for name, seconds in [
        ("plain script: interpreter start-up and imports", started),
        ("plain script: count the split, build the model", timings["setup_seconds"]),
        ("plain script: fit", timings["fit_seconds"]),
        ("plain script: save the SavedModel", timings["save_seconds"]),
        ("plain script: exit", plain.seconds - timings["printed_at"]),
    ]:
        rows.append(common.row(ENTRY, f"  {name}", seconds, "s"))
    return rows


def fresh_work_dir(template: Path, run: int) -> dict:
    """The overrides of a run in a new work directory holding only a copy of the data."""
    work_dir = template.with_name(f"{template.name}-{run}")
    shutil.copytree(template / "data", work_dir / "data")
    return {"run.work_dir": str(work_dir)}


def run(quick: bool) -> list[dict]:
    from dataclasses import asdict

    from bench import bench_storage
    from components.trainer import recipes

    repeats = 1 if quick else 2
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as temp:
        template = Path(temp) / "work"
        # Generating the data imports TensorFlow: in a process of its own, so that
        # this one stays small and the commands' peak memory is their own.
        with common.Worker() as worker:
            overrides, config, data, generate_seconds = worker.call(prepare, template, quick)
        settings = recipes.resolve(asdict(config.model))
        plains, pipelines = [], []
        for repeat in range(repeats):  # alternating, so both see the same load
            plains.append(run_plain(data, settings, config.data.eval_fraction, f"{temp}/plain-model-{repeat}"))
            pipelines.append(run_pipeline({**overrides, **fresh_work_dir(template, repeat)}))
        plain, timings = min(plains, key=lambda result: result[0].seconds)
        pipeline = min(pipelines, key=lambda result: result.command.seconds)
        rows = [
            common.row(
                ENTRY,
                "flowers-tfx run, wall time",
                pipeline.command.seconds,
                "s",
                plain.seconds,
                higher_is_better=False,
                target=TARGET,
                goal=GOAL,
                peak_mb=pipeline.command.peak_mb,
                baseline_peak_mb=plain.peak_mb,
                note=(
                    f"{settings['name']} {settings['image_size']}x{settings['image_size']}, "
                    f"{settings['epochs']} epochs, batch {settings['batch_size']}; best of {repeats}; CPU time "
                    f"{pipeline.command.cpu_seconds:.0f} s against {plain.cpu_seconds:.0f} s; plain val accuracy "
                    f"{timings['val_accuracy']:.2f}"
                ),
            )
        ]
        rows += breakdown(pipeline, plain, timings)
        rows.append(
            common.row(
                ENTRY,
                "(not timed) generating the synthetic data",
                generate_seconds,
                "s",
                note="once per work directory, before both runs",
            )
        )
        rows += bench_storage.measure(pipeline.work_dir, data)
    return rows


def main(argv: list[str] | None = None) -> int:
    return common.entry_main(run, __doc__, "300 images, 2 epochs", argv)


if __name__ == "__main__":
    sys.exit(main())
