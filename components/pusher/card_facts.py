"""What a model card says, gathered from what the pipeline already wrote.

The Pusher has the model, the Evaluator's blessing and evaluation, and the
Trainer's ``model_run`` (its settings and curves); the serving directory
names the versions pushed before. Each fact is plain JSON, so the card's
Markdown, its JSON and the Model Registry description are made from one
record. A fact that cannot be read is left out and named under ``missing``:
a card with a gap is more useful than no card.
"""

from __future__ import annotations

import json
import logging
import os

import schema
from components.shared import eval_results, serving_layout
from components.trainer import signatures
from components.trainer.outputs import HISTORY_FILE
from components.training_data import data_lineage

# The blessing's custom property naming the baseline model (TFX's Evaluator sets it).
BASELINE_MODEL_KEY = "baseline_model"

INTENDED_USE = (
    "Sorting photos of single flowers into five classes (daisy, dandelion, roses, sunflowers, tulips), "
    "for demonstrations and as a template of a production pipeline."
)
KNOWN_LIMITS = [
    "It knows only these five classes: any other picture still gets one of them, often with high probability.",
    "Figures are on the eval split of the same data the model was trained from; photos taken elsewhere "
    "(other cameras, light, framing) may score lower.",
    "Images are resized to a small square; fine detail and flowers far from the centre may be lost.",
    "Not for identifying plants for safety (edibility, toxicity) or any decision about people.",
]


def _rounded(values: dict | None, digits: int = 4) -> dict | None:
    if values is None:
        return None
    return {name: (round(value, digits) if value is not None else None) for name, value in values.items()}


def model_facts(model_run_uri: str | None) -> dict:
    """The model's name, its recipe (every setting the Trainer used) and its last epoch's figures."""
    import tensorflow as tf

    path = os.path.join(model_run_uri, HISTORY_FILE)
    history = json.loads(tf.io.gfile.GFile(path).read())
    # Four significant digits, not decimals: a learning rate at the end of a cosine is about 1e-5.
    last_epoch = {key: float(f"{values[-1]:.4g}") for key, values in history.get("epochs", {}).items() if values}
    return {
        "name": history.get("model"),
        "recipe": history.get("settings", {}),
        "train_examples": history.get("train_examples"),
        "eval_examples": history.get("eval_examples"),
        "epochs_trained": len(history.get("epochs", {}).get("loss", [])),
        "last_epoch": last_epoch,
    }


def evaluation_facts(found: eval_results.EvalResults) -> dict:
    return {
        "examples": found.example_count,
        "accuracy": round(found.accuracy, 4),
        "per_class_accuracy": _rounded(found.per_class_accuracy),
        "confusion_matrix": found.confusion,
        "labels": list(schema.LABELS),
    }


def gate_facts(found: eval_results.EvalResults, blessed: bool) -> dict:
    """The thresholds and, for a blessed model, why it passed them."""
    limits = found.thresholds
    reasons = list(found.failures)
    if blessed:
        reasons = [f"accuracy {found.accuracy:.3f} is at least the floor {limits.min_accuracy:.3f}"]
        if found.baseline_accuracy is not None:
            reasons.append(
                f"it is within {limits.max_accuracy_drop:.3f} of the previous blessed model's "
                f"{found.baseline_accuracy:.3f}"
            )
        else:
            reasons.append("there was no blessed model before it to compare with")
        if limits.min_class_accuracy > 0:
            reasons.append(f"every class's accuracy is at least {limits.min_class_accuracy:.3f}")
        if limits.max_class_accuracy_drop < 1 and found.baseline_accuracy is not None:
            reasons.append(f"no class is more than {limits.max_class_accuracy_drop:.3f} below the previous model's")
    # Without a baseline TFMA applies, and records, no change thresholds: None says so.
    compared = found.baseline_accuracy is not None
    return {
        "thresholds": {
            "min_accuracy": limits.min_accuracy,
            "max_accuracy_drop": limits.max_accuracy_drop if compared else None,
            "min_class_accuracy": limits.min_class_accuracy,
            "max_class_accuracy_drop": limits.max_class_accuracy_drop if compared else None,
        },
        "verdict": "BLESSED" if blessed else "NOT BLESSED",
        "reasons": reasons,
    }


def previous_facts(found: eval_results.EvalResults, baseline_uri: str | None, base_directory: str) -> dict | None:
    """The last blessed model the Evaluator compared with: its version, figures and the change."""
    if found.baseline_accuracy is None:
        return None
    version = None
    for number, folder in serving_layout.version_dirs(base_directory).items():
        try:
            if baseline_uri and (serving_layout.read_manifest(folder) or {}).get("model_uri") == baseline_uri:
                version = number
        except serving_layout.ManifestError:
            continue
    before = found.baseline_per_class_accuracy or {}
    after = found.per_class_accuracy
    return {
        "model_uri": baseline_uri,
        "version": version,
        "accuracy": round(found.baseline_accuracy, 4),
        "per_class_accuracy": _rounded(before),
        "change": {
            "accuracy": round(found.accuracy - found.baseline_accuracy, 4),
            "per_class_accuracy": {
                name: (round(after[name] - before[name], 4) if None not in (after[name], before.get(name)) else None)
                for name in after
            },
        },
    }


def input_contract(max_image_pixels: int | None, image_size: int | None) -> dict:
    return {
        "signature": "serving_default",
        "input": signatures.SERVING_INPUT,
        "format": "a batch of encoded image files (JPEG, or PNG, GIF, BMP), any size, as raw bytes; "
        'over REST as {"instances": [{"image_bytes": {"b64": "..."}}]}',
        "max_image_pixels": max_image_pixels,
        "image_size": image_size,
        "outputs": [signatures.PROBABILITIES, signatures.CLASS_ID, signatures.CLASS_NAME],
        "refused": "an image whose header declares more than max_image_pixels pixels (width x height) "
        "is refused with InvalidArgumentError, never decoded",
    }


def gather(
    manifest: dict,
    model_path: str,
    blessing,
    evaluation_uri: str | None,
    model_run_uri: str | None,
    base_directory: str,
    max_image_pixels: int | None,
) -> dict:
    """Every fact of the card of the version the manifest describes."""
    facts = {key: manifest.get(key) for key in ("version", "pushed_at", "model_uri", "model_artifact_id")}
    missing = []

    def attempt(name: str, read):
        try:
            return read()
        except Exception as error:  # noqa: BLE001 - one unreadable source must not cost the whole card
            logging.warning("Model card: %s unreadable: %s", name, error)
            missing.append(f"{name}: {error}")
            return None

    facts["model"] = attempt("model and recipe", lambda: model_facts(model_run_uri)) if model_run_uri else None
    if model_run_uri is None:
        missing.append("model and recipe: the Pusher was given no model_run")
    facts["data"] = manifest.get("data") or data_lineage.read(os.path.join(model_path, "assets.extra"))
    if facts["data"] is None:
        missing.append("training data: the model carries no data lineage")
    found = attempt("evaluation", lambda: eval_results.read(evaluation_uri)) if evaluation_uri else None
    if evaluation_uri is None:
        missing.append("evaluation: the Pusher was given no evaluation")
    blessed = bool(blessing.get_int_custom_property("blessed"))
    facts["evaluation"] = evaluation_facts(found) if found else None
    facts["gate"] = gate_facts(found, blessed) if found else {"verdict": "BLESSED" if blessed else "NOT BLESSED"}
    baseline_uri = blessing.get_string_custom_property(BASELINE_MODEL_KEY) or None
    facts["previous"] = previous_facts(found, baseline_uri, base_directory) if found else None
    image_size = ((facts["model"] or {}).get("recipe") or {}).get("image_size")
    facts["input_contract"] = input_contract(max_image_pixels, image_size)
    facts["intended_use"] = INTENDED_USE
    facts["known_limits"] = KNOWN_LIMITS
    facts["missing"] = missing
    return facts
