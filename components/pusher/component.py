"""The Pusher's executor: blessed models into ``<serving_dir>/<version>/``, safely.

Differences from TFX's own filesystem push, and why:

- A version appears whole or not at all. The model is copied into a hidden
  staging directory next to the versions and then renamed into place, so TF
  Serving (which watches the directory) never loads a half-written model.
- A model that is already being served is not pushed twice. After the first
  blessing, the next run compares the same model with itself as the new
  baseline; that must not create a second, identical version.
- Versions only go up, even for two pushes within one second.
- Several writers may push into one serving directory at once (two runs, a
  local run and a Vertex AI run on one gs:// folder): each claims its version
  number atomically before it copies, and checks "already serving?" under the
  directory's lock, against the versions served and the pushes in progress
  (``components/serving_claim.py``, which ``models promote`` uses too).
- Each version carries ``assets.extra/push.json``, which says which model
  artifact it came from; ``models list`` and the dedup above read it. The
  layout is described once, in ``components/shared/serving_layout.py``.
- Each version also carries its model card (``model_card.py``), written into
  the staged version before the rename; a card that fails is an error in the
  manifest, never a failed push.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

from tfx import types
from tfx.components.pusher import component as tfx_pusher_component
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

from components.pusher import card_facts, model_card
from components.shared import serving_claim, serving_layout
from components.shared.common import utc_timestamp
from components.training_data import data_lineage

PUSH_MANIFEST = serving_layout.MANIFEST_PATH
STAGING_PREFIX = ".staging-"
# The pushed model's properties that TFX's pusher executor writes (its
# private _PUSHED_KEY, ...), read by the steps after the Pusher.
PUSHED_KEY = "pushed"
PUSHED_DESTINATION_KEY = "pushed_destination"
PUSHED_VERSION_KEY = "pushed_version"
ALREADY_SERVING_KEY = "already_serving"
# The inputs the model card is made from, and the pixel budget it quotes (in custom_config).
EVALUATION_KEY = "model_evaluation"
MODEL_RUN_KEY = "model_run"
MAX_IMAGE_PIXELS_KEY = "max_image_pixels"


def serving_versions(base_directory: str) -> list[int]:
    """The integer version directories TF Serving would load, ascending."""
    return list(serving_layout.version_dirs(base_directory))


def version_serving(base_directory: str, model_uri: str) -> int | None:
    """The version already serving the model at ``model_uri``, if any."""
    for version, folder in serving_layout.version_dirs(base_directory).items():
        try:
            manifest = serving_layout.read_manifest(folder) or {}
        except serving_layout.ManifestError:  # a damaged manifest names no model
            manifest = {}
        if manifest.get("model_uri") == model_uri:
            return version
    return None


def next_version(base_directory: str, claimed=()) -> int:
    """The larger of now's epoch second and one above every version served or claimed."""
    existing = serving_versions(base_directory) + list(claimed)
    return max([int(time.time())] + [v + 1 for v in existing])


# How long a push waits for the serving directory's lock (held for moments
# by each writer), and for another writer's push of the same model to end.
LOCK_WAIT_SECONDS = 300
SAME_MODEL_WAIT_SECONDS = 1800


class ServingDirBusy(RuntimeError):
    """The serving directory's lock stayed held, or the same model stayed in another push."""


def _remove_dead_writers_work(base_directory: str) -> None:
    """Under the lock: the claims of writers that were killed, and on an
    object store their partial copies (local staging: publish_version)."""
    for version in serving_claim.remove_stale_claims(base_directory):
        folder = serving_layout.join(base_directory, str(version))
        # On an object store a killed copy is left in place, without saved_model.pb (copied last).
        if fileio.exists(folder) and not fileio.exists(serving_layout.join(folder, serving_layout.SAVED_MODEL_FILE)):
            fileio.rmtree(folder)
            logging.info("Removed %s, a copy cut short", folder)


def claim_push(
    base_directory: str, model_uri: str, wait_seconds: float = SAME_MODEL_WAIT_SECONDS, poll_seconds: float = 1.0
) -> tuple[int | None, int | None]:
    """``(claimed version, None)`` for a model to push, or ``(None, version)``
    when the model is already serving as ``version``.

    Decided under the serving directory's lock, so two writers never claim
    one number nor push one model twice; a push of the same model by another
    writer that is still copying is waited for.
    """

    def busy(holder: str) -> ServingDirBusy:
        return ServingDirBusy(f"{base_directory}: its lock stayed held by {holder} for {LOCK_WAIT_SECONDS} s")

    deadline = time.monotonic() + wait_seconds
    while True:
        with serving_claim.locked(base_directory, busy, wait_seconds=LOCK_WAIT_SECONDS):
            _remove_dead_writers_work(base_directory)
            already = version_serving(base_directory, model_uri)
            if already is not None:
                return None, already
            claims = serving_claim.version_claims(base_directory)
            copying = [v for v, claim in claims.items() if claim.get("model_uri") == model_uri]
            if not copying:
                return serving_claim.claim_version(
                    base_directory, next_version(base_directory, claims), model_uri
                ), None
        if time.monotonic() > deadline:
            raise ServingDirBusy(
                f"{base_directory}: version {copying[0]} of {model_uri} is still being pushed "
                f"by another writer after {wait_seconds:.0f} s"
            )
        logging.info("Model %s is being pushed as version %d by another writer; waiting", model_uri, copying[0])
        time.sleep(poll_seconds)


# A staging folder without a live owner and older than this was left by an
# older release's killed push (its name carries no process id).
_UNOWNED_STAGING_SECONDS = 3600


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_staging(base_directory: str) -> list[str]:
    """Deletes the staging folders of pushes that were killed part-way (their
    process is gone); a push in progress keeps its own. Returns what it removed."""
    removed = []
    for name in os.listdir(base_directory):
        if not name.startswith(STAGING_PREFIX):
            continue
        path = os.path.join(base_directory, name)
        parts = name[len(STAGING_PREFIX) :].split("-")
        if len(parts) == 3 and parts[1].isdigit():
            abandoned = not _process_alive(int(parts[1]))
        else:
            abandoned = time.time() - os.path.getmtime(path) > _UNOWNED_STAGING_SECONDS
        if abandoned:
            fileio.rmtree(path)
            logging.info("Removed %s, left by a push that was cut short", path)
            removed.append(path)
    return removed


def publish_version(
    model_path: str, base_directory: str, version: int, manifest: dict, card: dict[str, bytes] | None = None
) -> str:
    """Copies a SavedModel to ``base_directory/version`` so it appears at once,
    with its model card (``card``: path inside the version -> bytes).

    On a local filesystem the copy is staged and renamed into place. Object
    stores (gs://) have no atomic rename; there ``saved_model.pb`` is copied
    last, as TF Serving treats a version without it as not there yet. The
    manifest is written after the copy, because TFX's ``copy_dir`` deletes
    its destination first (it would take an earlier manifest with it).
    """
    fileio.makedirs(base_directory)
    final = serving_layout.join(base_directory, str(version))
    if serving_layout.is_remote(base_directory):
        io_utils.copy_dir(model_path, final, deny_regex_patterns=[r"saved_model\.pb$"])
        model_card.write(card, final, manifest)
        io_utils.write_string_file(serving_layout.join(final, PUSH_MANIFEST), json.dumps(manifest, indent=2))
        io_utils.copy_file(os.path.join(model_path, "saved_model.pb"), serving_layout.join(final, "saved_model.pb"))
        return final
    remove_abandoned_staging(base_directory)
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        io_utils.copy_dir(model_path, staging)
        model_card.write(card, staging, manifest)
        io_utils.write_string_file(os.path.join(staging, PUSH_MANIFEST), json.dumps(manifest, indent=2))
        fileio.rename(staging, final)
    finally:
        if fileio.exists(staging):
            fileio.rmtree(staging)
    return final


class Executor(tfx_pusher.Executor):
    """TFX's Pusher, with staged, de-duplicated, monotonic filesystem pushes."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError("only filesystem push destinations are supported")
        base_directory = destination.filesystem.base_directory

        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        version, already = claim_push(base_directory, model.uri)
        if already is not None:
            logging.info("Model %s is already serving as version %d; not pushed again.", model.uri, already)
            model_push.set_int_custom_property(ALREADY_SERVING_KEY, 1)
            self._MarkPushed(model_push, serving_layout.join(base_directory, str(already)), str(already))
            return
        try:
            self._push(input_dict, exec_properties, model_push, model, base_directory, version)
        finally:
            serving_claim.release_version(base_directory, version)

    def _push(self, input_dict, exec_properties, model_push, model, base_directory: str, version: int) -> None:
        """Copies the model as ``version``, which this writer has claimed."""
        blessing = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_BLESSING_KEY])
        manifest = {
            "version": version,
            "model_uri": model.uri,
            "model_artifact_id": model.id,
            "blessing_uri": blessing.uri,
            "pushed_at": utc_timestamp(),
        }
        model_path = self.GetModelPath(input_dict)
        # The spans and examples per class the model learned from (data_lineage.py).
        lineage = data_lineage.read(os.path.join(model_path, "assets.extra"))
        if lineage:
            manifest["data"] = lineage
        facts = self._card_facts(input_dict, exec_properties, manifest, model_path, blessing, base_directory)
        card = self._card_files(facts, manifest)
        final = publish_version(model_path, base_directory, version, manifest, card)
        io_utils.write_string_file(os.path.join(model_push.uri, "push.json"), json.dumps(manifest, indent=2))
        self._MarkPushed(model_push, final, str(version))
        if card and "error" not in manifest.get("model_card", {}):  # for the Model Registry upload
            model_push.set_string_custom_property(model_card.SUMMARY_KEY, "\n".join(model_card.summary_lines(facts)))
            model_push.set_string_custom_property(model_card.LABELS_KEY, json.dumps(model_card.registry_labels(facts)))
        logging.info("Model pushed to %s.", final)

    @staticmethod
    def _card_facts(input_dict, exec_properties, manifest, model_path, blessing, base_directory) -> dict | None:
        """What the model card says (card_facts.py), or None with the reason in the manifest."""

        def uri(key: str) -> str | None:
            artifacts = input_dict.get(key) or []
            return artifacts[0].uri if artifacts else None

        try:
            custom_config = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null")
            return card_facts.gather(
                manifest,
                model_path,
                blessing,
                uri(EVALUATION_KEY),
                uri(MODEL_RUN_KEY),
                base_directory,
                (custom_config or {}).get(MAX_IMAGE_PIXELS_KEY),
            )
        except Exception as error:  # noqa: BLE001 - the push goes on without a card
            logging.warning("The model card could not be made: %s", error)
            manifest["model_card"] = {"error": f"not made: {error}"}
            return None

    @staticmethod
    def _card_files(facts: dict | None, manifest: dict) -> dict | None:
        """The card's files (Markdown, JSON, picture), or None with the reason in the manifest."""
        if facts is None:
            return None
        try:
            return model_card.files(facts)
        except Exception as error:  # noqa: BLE001 - the push goes on without a card
            logging.warning("The model card could not be made: %s", error)
            manifest["model_card"] = {"error": f"not made: {error}"}
            return None


class PusherSpec(standard_component_specs.PusherSpec):
    """TFX's Pusher inputs, and what the model card is made from: the
    Evaluator's evaluation and the Trainer's model_run (settings, curves)."""

    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EVALUATION_KEY: component_spec.ChannelParameter(type=standard_artifacts.ModelEvaluation, optional=True),
        MODEL_RUN_KEY: component_spec.ChannelParameter(type=standard_artifacts.ModelRun, optional=True),
    }


class Pusher(tfx_pusher_component.Pusher):
    """TFX's Pusher component, running the executor above, with the card's inputs."""

    SPEC_CLASS = PusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        model,
        model_blessing,
        push_destination: pusher_pb2.PushDestination,
        model_evaluation=None,
        model_run=None,
        max_image_pixels: int | None = None,
    ):
        spec = PusherSpec(
            model=model,
            model_blessing=model_blessing,
            push_destination=push_destination,
            custom_config=json_utils.dumps({MAX_IMAGE_PIXELS_KEY: max_image_pixels}),
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
            **{EVALUATION_KEY: model_evaluation, MODEL_RUN_KEY: model_run},
        )
        base_component.BaseComponent.__init__(self, spec=spec)
