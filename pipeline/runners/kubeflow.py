"""Compiles the pipeline into a Kubeflow v2 spec that Vertex AI Pipelines runs.

The same ``create_pipeline`` as the local run, on ``platform="vertex"``,
through TFX's KubeflowV2DagRunner. Compiling is offline: the components find
their code by dotted path inside the container image (``vertex.image``), so
nothing is packaged or uploaded, and no Google Cloud credentials are needed.

Output: ``.json`` is the whole PipelineJob (the spec plus its runtime config:
the pipeline root); ``.yaml``/``.yml`` is the PipelineSpec alone, the format of
Vertex AI's template gallery and Artifact Registry (the pipeline root is then
given at submit time, which ``flowers-tfx submit`` does).

Determinism: compiling the same configuration twice gives byte-identical files.
TFX writes sorted keys; the spec holds no timestamp or random ID (TFX adds a
random suffix only to a component named ``tfx-dag`` when an exit handler is
set, and this pipeline has neither; the Vertex SDK picks the run's job ID at
submit time). The one value that depended on the compiling machine, the
schema file's absolute path, is its path inside the image instead
(``vertex_specs.CONTAINER_SCHEMA_FILE``). ``tests/test_kubeflow_compile.py``
checks both.
"""

from __future__ import annotations

import os
from pathlib import Path

from tfx import v1 as tfx

from pipeline import dag, vertex_specs
from pipeline.config import Config
from pipeline.data.source import split_glob


def vertex_pipeline(config: Config) -> tfx.dsl.Pipeline:
    """The DAG as it runs on Vertex AI, reading ``data.source`` from Cloud Storage.

    ``create_pipeline`` checks the configuration for Vertex AI first."""
    return dag.create_pipeline(
        config,
        split_glob(config.data.source),
        pipeline_root=config.vertex.pipeline_root,
        serving_dir=vertex_specs.serving_dir(config),
        platform="vertex",
    )


def compile_pipeline(config: Config, out: str | os.PathLike) -> Path:
    """Writes the Kubeflow v2 spec of the pipeline to ``out`` and returns its path.

    Raises ConfigError (naming the key) when the configuration cannot run on
    Vertex AI, and ValueError when ``out`` is neither .json nor .yaml.
    """
    out = Path(vertex_specs.check_spec_path(out)).absolute()
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            display_name=config.run.pipeline_name,
            default_image=config.vertex.image,
        ),
        output_dir=str(out.parent),
        output_filename=out.name,
    )
    notifier = dag.run_notifier(config)
    if notifier is not None:
        # Runs after every other task, failed ones included: a failed run still notifies.
        runner.set_exit_handler(notifier)
    runner.run(vertex_pipeline(config))
    return out
