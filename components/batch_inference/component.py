"""The BatchInference step: its spec (what it reads, writes and takes) and the component.

Like TFX's BulkInferrer it runs a model over data after the pipeline has
judged the model, but it takes the Pusher's output, so it only ever sees a
blessed version that is in the serving directory, and it writes the same
JSON Lines and tally as ``flowers-tfx batch-predict``. A Beam component: its
job gets the pipeline's Beam options (the DirectRunner locally, Dataflow on
Vertex AI when configured), as the other Beam steps do.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.batch_inference.executor import (
    BATCH_SIZE_KEY,
    INFERENCE_RESULT_KEY,
    INPUT_GLOB_KEY,
    MAX_IMAGE_PIXELS_KEY,
    PUSHED_MODEL_KEY,
    TOP_K_KEY,
    Executor,
)


class BatchInferenceSpec(ComponentSpec):
    PARAMETERS = {
        INPUT_GLOB_KEY: ExecutionParameter(type=str),
        TOP_K_KEY: ExecutionParameter(type=int),
        BATCH_SIZE_KEY: ExecutionParameter(type=int),
        MAX_IMAGE_PIXELS_KEY: ExecutionParameter(type=int),
    }
    INPUTS = {PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel)}
    OUTPUTS = {INFERENCE_RESULT_KEY: ChannelParameter(type=standard_artifacts.InferenceResult)}


class BatchInference(base_beam_component.BaseBeamComponent):
    """Classifies every image of ``input_glob`` with the pushed model (nothing when none was pushed)."""

    SPEC_CLASS = BatchInferenceSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, pushed_model, input_glob: str, top_k: int, batch_size: int, max_image_pixels: int):
        output = types.Channel(type=standard_artifacts.InferenceResult)
        super().__init__(
            spec=BatchInferenceSpec(
                pushed_model=pushed_model,
                inference_result=output,
                input_glob=input_glob,
                top_k=top_k,
                batch_size=batch_size,
                max_image_pixels=max_image_pixels,
            )
        )
