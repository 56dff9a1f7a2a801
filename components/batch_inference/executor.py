"""BatchInference's executor: the batch prediction job on the pushed model, or a recorded skip.

The Pusher marks its output ``pushed`` (and names the version folder in
``pushed_destination``) only for a blessed model; the model already serving
counts, as the Pusher reports that version. Anything else skips the step:
the output records why (``skipped``) and nothing is read. A run writes the
job's JSON Lines and ``tally.json`` into the output folder and puts the
tally on the output artifact (``tally``: images, per_class, refused,
model_version), where the run's summary reads it.
"""

from __future__ import annotations

import io
import json
import logging

from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from components.batch_inference import job
from components.pusher.component import PUSHED_DESTINATION_KEY, PUSHED_KEY

PUSHED_MODEL_KEY = "pushed_model"
INFERENCE_RESULT_KEY = "inference_result"
INPUT_GLOB_KEY = "input_glob"
TOP_K_KEY = "top_k"
BATCH_SIZE_KEY = "batch_size"
MAX_IMAGE_PIXELS_KEY = "max_image_pixels"
# This step's output properties.
TALLY_KEY = "tally"
SKIPPED_KEY = "skipped"
NOT_PUSHED = "the model was not blessed, so nothing was pushed to run on"


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed = artifact_utils.get_single_instance(input_dict[PUSHED_MODEL_KEY])
        result = artifact_utils.get_single_instance(output_dict[INFERENCE_RESULT_KEY])
        if not pushed.get_int_custom_property(PUSHED_KEY):
            logging.info("BatchInference skipped: %s.", NOT_PUSHED)
            result.set_string_custom_property(SKIPPED_KEY, NOT_PUSHED)
            return
        progress = io.StringIO()
        tally = job.batch_predict(
            pushed.get_string_custom_property(PUSHED_DESTINATION_KEY),
            exec_properties[INPUT_GLOB_KEY],
            result.uri,
            self._make_beam_pipeline(),
            top_k=exec_properties[TOP_K_KEY],
            batch_size=exec_properties[BATCH_SIZE_KEY],
            max_pixels=exec_properties[MAX_IMAGE_PIXELS_KEY],
            progress=progress,
        )
        logging.info("%s%s", progress.getvalue(), tally.format())
        counted = {"images": tally.images, "per_class": tally.per_class, "refused": tally.refused}
        counted["model_version"] = job.model_version(tally.model_dir)
        result.set_string_custom_property(TALLY_KEY, json.dumps(counted))
