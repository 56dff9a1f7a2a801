"""Runs the pipeline on this machine: LocalDagRunner, Beam's DirectRunner,
an sqlite metadata store, everything under one work directory:

    <work_dir>/
      data/synthetic-.../   the embedded default data set, when no data is given
      metadata.sqlite       ML Metadata: every execution and artifact
      pipeline/             the components' artifacts (examples, statistics, models, ...)
      serving/<version>/    blessed models, as TF Serving reads them
      runs/<run id>/        one run's log, configuration, summary and report
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, TextIO

from components.shared.common import exclusive_lock, utc_timestamp
from pipeline.config import Config
from pipeline.config_loading import to_toml
from pipeline.data import source as data_source
from pipeline.errors import FlowersError
from pipeline.reporting import mlmd, run_outputs
from pipeline.runners import progress

if TYPE_CHECKING:
    from pipeline.reporting import outcome as outcome_lib
    from pipeline.reporting import summary as summary_lib

# TFX, TensorFlow and Beam (about 12 s of CPU) are imported by run_local only
# after the lock, the metadata store and the data are checked, so that a
# mistake a user can fix is named at once.


class WorkDirLocked(FlowersError):
    """Another run is using the same work directory."""


@dataclass
class RunResult:
    succeeded: bool
    run_dir: Path
    summary: summary_lib.RunSummary
    report_path: Path | None
    state: str = "failed"  # the outcome's: pushed, not_blessed, unchanged or failed


@contextmanager
def work_dir_lock(work_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on the work directory for the whole run.

    Two runs on one work directory would race on the metadata store and the
    serving directory; the second one fails at once instead.
    """
    work_dir.mkdir(parents=True, exist_ok=True)

    def busy(holder: str) -> WorkDirLocked:
        return WorkDirLocked(
            f"{work_dir} is in use by another run ({holder}); wait for it to finish or use another --work-dir"
        )

    with exclusive_lock(work_dir / ".lock", busy):
        yield


@contextmanager
def logs_to_file(log_path: Path, tracker: progress.ProgressTracker) -> Iterator[None]:
    """Sends every log record to ``log_path`` and only progress to the terminal."""
    from absl import logging as absl_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, absl_logging.get_verbosity())
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [file_handler, tracker]
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    tf_logger = logging.getLogger("tensorflow")
    tf_saved = (list(tf_logger.handlers), tf_logger.propagate)
    tf_logger.handlers, tf_logger.propagate = [], True
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        tf_logger.handlers, tf_logger.propagate = tf_saved
        root.handlers, root.level = saved[0], saved[1]
        absl_logging.set_verbosity(saved[2])
        file_handler.close()


def new_run_dir(work_dir: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = work_dir / "runs" / stamp
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = work_dir / "runs" / f"{stamp}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def run_local(config: Config, out: TextIO | None = None) -> RunResult:
    """Runs the whole pipeline once and writes the run's summary and report."""
    out = out or sys.stdout
    work_dir = config.work_dir
    with work_dir_lock(work_dir):
        mlmd.check_store(config.metadata_path)  # a damaged store stops the run before any work
        run_dir = new_run_dir(work_dir)
        (run_dir / "config.toml").write_text(to_toml(config), encoding="utf-8")
        location = data_source.prepare(config, out)
        out.write(f"Data: {location.base}/{location.pattern}\n")
        out.write(f"Work directory: {work_dir}\nRun log: {run_dir / 'pipeline.log'}\n\n")
        out.flush()

        from pipeline import lean_tfx  # noqa: F401  (first: it makes TFX's imports lean)

        # isort: split

        from pipeline import lean_beam

        lean_beam.install()  # Beam does once what it did per transform (see lean_beam/)

        from tfx.orchestration import metadata
        from tfx.orchestration.local.local_dag_runner import LocalDagRunner

        from pipeline import dag
        from pipeline.reporting import notify
        from pipeline.reporting import outcome as outcome_lib
        from pipeline.reporting import summary as summary_lib

        connection = metadata.sqlite_metadata_connection_config(str(config.metadata_path))
        pipeline = dag.create_pipeline(
            config,
            location,
            pipeline_root=str(config.pipeline_root),
            serving_dir=str(config.serving_dir),
            metadata_connection_config=connection,
        )
        tracker = progress.ProgressTracker(out)
        error = None
        started = time.monotonic()
        started_ms = int(time.time() * 1000)
        with logs_to_file(run_dir / "pipeline.log", tracker):
            try:
                LocalDagRunner().run(pipeline)
            except Exception as raised:  # reported below, with the component's name
                error = raised
                logging.error("Pipeline failed:\n%s", traceback.format_exc())
        out.write(f"\nPipeline {'failed' if error else 'finished'} in {time.monotonic() - started:.0f} s\n\n")

        # What ran, from cache or not, and how long: ML Metadata's record of this
        # run. If even that cannot be read, the pipeline's own outcome still shows.
        component = None
        try:
            summary, component = summarize_run(config, connection, started_ms, pipeline, error)
        except Exception as reading_error:  # noqa: BLE001 - the run's outcome comes first
            logging.error("Reading the run's results failed:\n%s", traceback.format_exc())
            failure = describe_failure(error, None) if error is not None else None
            summary = summary_lib.RunSummary(failed=failure)
            out.write(f"warning: the run's results could not be read from {config.metadata_path}: {reading_error}\n")
        text = summary_lib.format_summary(summary)
        out.write(text + "\n")
        if summary.failed:
            out.write(f"\nerror: {summary.failed}\n")
        out.flush()
        outcome = outcome_lib.outcome_of(
            summary,
            config.run.pipeline_name,
            run_dir.name,
            utc_timestamp(started_ms / 1000),
            time.monotonic() - started,
            component,
            error_text(error) if error is not None else None,
        )
        notice = notify.notify(config.notify, outcome)
        if notice:
            out.write(f"\n{notice}\n")
        report_path = write_outputs(summary, text, run_dir, config, out, outcome)
        return RunResult(summary.failed is None and error is None, run_dir, summary, report_path, outcome.state)


def summarize_run(config: Config, connection, started_ms: int, pipeline, error: Exception | None):
    """The run's summary, from this run's executions and artifacts in ML
    Metadata, and the component it failed in (None when it did not fail)."""
    executions = run_outputs.read_run(connection, config.run.pipeline_name, started_ms)
    timings = [(run.node_id, run.how, run.seconds) for run in executions]
    from pipeline.reporting import summary as summary_lib

    execution_ids = {run.node_id: run.execution_id for run in executions if run.how in ("ran", "cached")}
    summary = summary_lib.summarize(run_outputs.read_artifacts(connection, execution_ids), timings, config.gate)
    component = None
    if error is not None:
        component = failed_component(executions, [node.id for node in pipeline.components])
        summary.failed = describe_failure(error, component)
    return summary, component


def write_outputs(
    summary, text: str, run_dir: Path, config: Config, out: TextIO, outcome: outcome_lib.RunOutcome | None = None
) -> Path | None:
    """Writes outcome.json, summary.txt and the report; a failure (a full disk,
    say) is one warning line, after the outcome is already on the terminal."""
    from pipeline.reporting import outcome as outcome_lib
    from pipeline.reporting import report

    try:
        if outcome is not None:
            outcome_lib.write_outcome(outcome, run_dir)
        (run_dir / "summary.txt").write_text(text + "\n", encoding="utf-8")
        report_path = report.write_report(summary, run_dir, f"Run {run_dir.name} of {config.run.pipeline_name}")
    except Exception as error:  # noqa: BLE001 - OSError mostly, but plotting can fail in many ways
        logging.error("Writing the report failed:\n%s", traceback.format_exc())
        reason = f"{error.filename}: {error.strerror}" if isinstance(error, OSError) and error.strerror else str(error)
        out.write(f"\nwarning: the report could not be written in {run_dir} ({reason})\n")
        return None
    out.write(f"\nReport: {report_path}\n")
    return report_path


def failed_component(executions: list[run_outputs.ComponentRun], node_order: list[str]) -> str | None:
    """The component a failed run stopped in: the one ML Metadata records as
    failed, or else (it failed before its execution was recorded, in its
    driver say) the first component, in the order they run, with no finished
    execution in this run."""
    for run in executions:
        if run.how in ("failed", "abandoned"):
            return run.node_id
    finished = {run.node_id for run in executions}
    return next((node for node in node_order if node not in finished), None)


def error_text(error: Exception) -> str:
    return str(error).strip() or type(error).__name__


def describe_failure(error: Exception, component: str | None) -> str:
    """One message that says which component failed and why."""
    where = f"{component} failed" if component else "the pipeline failed"
    return f"{where}: {error_text(error)}"
