"""The model card: the facts of ``card_facts.py`` as Markdown, JSON and a picture.

Written into ``assets.extra/`` of every pushed version, so the card travels
with the model (promotion copies it, TF Serving ignores it) and anyone
holding a version can tell what it is, what it learned from, how good it is
and what it accepts. The Model Registry upload reuses ``summary_lines``.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re

from tfx.dsl.io import fileio

from components.pusher import confusion_picture
from components.shared import serving_layout

CARD_MD, CARD_JSON, CARD_PNG = serving_layout.CARD_MD, serving_layout.CARD_JSON, serving_layout.CARD_PNG
# The card's summary lines and registry labels, as custom properties of the
# Pusher's pushed_model artifact: the Model Registry step reads them there.
SUMMARY_KEY = "model_card_summary"
LABELS_KEY = "model_card_labels"
# Vertex AI caps a model version's description; the summary stays well within it.
DESCRIPTION_LIMIT = 1000


def registry_description(first_line: str, summary: str, card_path: str) -> str:
    """The registry version's description: a first line, the card's summary, and
    where the whole card is; cut at a line, never mid-word, to DESCRIPTION_LIMIT."""
    tail = f"\nmodel card: {card_path}"
    lines, kept = [first_line, *summary.splitlines()], []
    for line in lines:
        if len("\n".join([*kept, line])) + len(tail) > DESCRIPTION_LIMIT:
            kept.append("...")
            break
        kept.append(line)
    return ("\n".join(kept) + tail)[:DESCRIPTION_LIMIT]


def _percent(value: float | None) -> str:
    return f"{100 * value:.1f}%" if value is not None else "-"


def _signed(value: float | None) -> str:
    return f"{100 * value:+.1f} points" if value is not None else "-"


def summary_lines(facts: dict) -> list[str]:
    """A few lines that say the most: model, data, accuracy and its change, verdict."""
    lines = []
    model = facts.get("model") or {}
    if model.get("name"):
        recipe = model.get("recipe") or {}
        lines.append(f"model {model['name']}, {recipe.get('image_size', '?')} px, {model.get('epochs_trained')} epochs")
    data = facts.get("data") or {}
    spans = [str(span.get("span")) for span in data.get("spans", [])]
    if spans:
        lines.append(f"trained on span(s) {', '.join(spans)}")
    evaluation = facts.get("evaluation")
    if evaluation:
        lines.append(f"eval accuracy {_percent(evaluation['accuracy'])} on {evaluation['examples']} examples")
    previous = facts.get("previous")
    if previous:
        name = f"version {previous['version']}" if previous.get("version") else "the previous blessed model"
        lines.append(f"{_signed(previous['change']['accuracy'])} against {name} ({_percent(previous['accuracy'])})")
    lines.append(facts.get("gate", {}).get("verdict", ""))
    return [line for line in lines if line]


def _label_value(text: str) -> str:
    """Vertex AI's rule for label values: lowercase letters, digits, - and _, at most 63."""
    return re.sub(r"[^a-z0-9_-]", "-", str(text).lower())[:63]


def registry_labels(facts: dict) -> dict[str, str]:
    """Labels for the Model Registry version: what one filters versions by."""
    labels = {}
    model = facts.get("model") or {}
    if model.get("name"):
        labels["model"] = _label_value(model["name"])
    evaluation = facts.get("evaluation")
    if evaluation:
        labels["accuracy_permille"] = str(round(1000 * evaluation["accuracy"]))
    spans = [str(span.get("span")) for span in (facts.get("data") or {}).get("spans", [])]
    if spans:
        labels["spans"] = _label_value("-".join(spans))
    return labels


def _data_section(data: dict | None, labels: list[str]) -> list[str]:
    if not data:
        return ["Not recorded for this model."]
    lines = ["| span | examples | " + " | ".join(labels) + " |", "| --- " * (len(labels) + 2) + "|"]
    for span in data.get("spans", []):
        classes = " | ".join(str(count) for count in span.get("classes", []))
        lines.append(f"| {span.get('span')} | {span.get('examples')} | {classes} |")
    for split, profile in (data.get("splits") or {}).items():
        classes = " | ".join(str(count) for count in profile.get("classes", []))
        lines.append(f"| split {split} | {profile.get('examples')} | {classes} |")
    return lines


def _evaluation_section(facts: dict, labels: list[str]) -> list[str]:
    evaluation, previous = facts.get("evaluation"), facts.get("previous")
    if not evaluation:
        return ["Unknown: the evaluation could not be read."]
    lines = [f"Accuracy **{_percent(evaluation['accuracy'])}** on {evaluation['examples']} eval examples.", ""]
    if previous:
        version = f"version {previous['version']}" if previous.get("version") else previous.get("model_uri")
        lines += [
            f"The previous blessed model ({version}): {_percent(previous['accuracy'])}; "
            f"change {_signed(previous['change']['accuracy'])}.",
            "",
        ]
        lines += ["| class | accuracy | previous | change |", "| --- | ---: | ---: | ---: |"]
        for name in labels:
            lines.append(
                f"| {name} | {_percent(evaluation['per_class_accuracy'].get(name))} "
                f"| {_percent(previous['per_class_accuracy'].get(name))} "
                f"| {_signed(previous['change']['per_class_accuracy'].get(name))} |"
            )
    else:
        lines += ["No blessed model before it to compare with.", "", "| class | accuracy |", "| --- | ---: |"]
        lines += [f"| {name} | {_percent(evaluation['per_class_accuracy'].get(name))} |" for name in labels]
    lines += ["", "![confusion matrix](confusion_matrix.png)"]
    return lines


def _gate_section(gate: dict) -> list[str]:
    lines = [f"**{gate.get('verdict')}**"]
    limits = gate.get("thresholds")
    if limits:
        drop, class_drop = limits["max_accuracy_drop"], limits["max_class_accuracy_drop"]
        overall = f"- accuracy at least {limits['min_accuracy']:.3f}"
        if drop is None:
            overall += " (no blessed model before it to compare with)"
        else:
            overall += f", and at most {drop:.3f} below the previous blessed model's"
        lines += ["", overall]
        per_class = []
        if limits["min_class_accuracy"] > 0:
            per_class.append(f"at least {limits['min_class_accuracy']:.3f}")
        if class_drop is not None and class_drop < 1:
            per_class.append(f"at most {class_drop:.3f} below the previous model's")
        lines.append("- each class's accuracy " + (", and ".join(per_class) if per_class else "not gated"))
    lines += [""] + [f"- {reason}" for reason in gate.get("reasons", [])]
    return lines


def markdown(facts: dict) -> str:
    """The card a person reads."""
    labels = (facts.get("evaluation") or {}).get("labels") or ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    model = facts.get("model") or {}
    contract = facts["input_contract"]
    budget = f"{contract['max_image_pixels']:,}" if contract.get("max_image_pixels") else "unknown"
    lines = [f"# Model card: flowers, version {facts.get('version')}", ""]
    lines += [f"Pushed {facts.get('pushed_at')} from `{facts.get('model_uri')}`.", ""]
    lines += ["## Summary", ""] + [f"- {line}" for line in summary_lines(facts)] + [""]
    lines += ["## Model and recipe", ""]
    if model:
        lines.append(
            f"`{model.get('name')}`, {model.get('epochs_trained')} epochs trained "
            f"on {model.get('train_examples')} examples; last epoch: "
            + ", ".join(f"{key} {value}" for key, value in model.get("last_epoch", {}).items())
        )
        lines += ["", "| setting | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in sorted((model.get("recipe") or {}).items())]
    else:
        lines.append("Unknown.")
    lines += ["", "## Training data", ""] + _data_section(facts.get("data"), labels)
    lines += ["", "## Evaluation", ""] + _evaluation_section(facts, labels)
    lines += ["", "## The gate", ""] + _gate_section(facts.get("gate", {}))
    lines += [
        "",
        "## Input contract",
        "",
        f"- signature `{contract['signature']}`, input `{contract['input']}`: {contract['format']}",
        f"- outputs: {', '.join(f'`{name}`' for name in contract['outputs'])}",
        f"- resized to {contract.get('image_size') or '?'} px square inside the model",
        f"- pixel budget {budget}: {contract['refused']}",
    ]
    lines += ["", "## Intended use", "", facts["intended_use"], "", "## Known limits", ""]
    lines += [f"- {limit}" for limit in facts["known_limits"]]
    if facts.get("missing"):
        lines += ["", "## Not known", ""] + [f"- {gap}" for gap in facts["missing"]]
    return "\n".join(lines) + "\n"


def files(facts: dict) -> dict[str, bytes]:
    """``{path inside the version: bytes}`` of the card."""
    written = {
        CARD_MD: markdown(facts).encode(),
        CARD_JSON: json.dumps(facts, indent=2).encode(),
    }
    evaluation = facts.get("evaluation")
    if evaluation:
        title = f"version {facts.get('version')}: rows actual, columns predicted"
        written[CARD_PNG] = confusion_picture.draw(evaluation["confusion_matrix"], evaluation["labels"], title)
    return written


def write(card: dict[str, bytes] | None, version_dir: str, manifest: dict) -> None:
    """Writes the model card's files into the version being published and says
    so in the manifest; a card that cannot be written is an error in the
    manifest, never a failed push."""
    if card is None:
        return
    try:
        for path, data in card.items():
            fileio.makedirs(serving_layout.join(version_dir, posixpath.dirname(path)))
            with fileio.open(serving_layout.join(version_dir, path), "wb") as handle:
                handle.write(data)
        manifest["model_card"] = {"path": CARD_MD, "files": sorted(card)}
    except Exception as error:  # noqa: BLE001 - a full disk or a refused write must not stop the push
        logging.warning("The model card could not be written: %s", error)
        manifest["model_card"] = {"error": f"not written: {error}"}
        for path in card:
            if fileio.exists(serving_layout.join(version_dir, path)):
                fileio.remove(serving_layout.join(version_dir, path))
