"""The run report: a Markdown page with PNG plots, in the run's directory.

Plots: loss and accuracy per epoch, the confusion matrix on the eval split,
and a grid of sample eval photos with the trained model's predictions (made
through the exported serving signature on the raw JPEG bytes, as a client
would call it).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import schema  # noqa: E402
from components.records import features  # noqa: E402
from components.trainer import signatures
from pipeline.reporting.summary import RunSummary, format_summary  # noqa: E402

SAMPLE_COUNT = 16


def plot_history(history: dict, path: Path) -> None:
    epochs = history["epochs"]
    x = np.arange(1, len(epochs.get("loss", [])) + 1)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "eval")):
        if key in epochs:
            loss_axis.plot(x, epochs[key], marker="o", label=label)
    for key, label in (("sparse_categorical_accuracy", "train"), ("val_sparse_categorical_accuracy", "eval")):
        if key in epochs:
            accuracy_axis.plot(x, epochs[key], marker="o", label=label)
    loss_axis.set(title="Loss", xlabel="epoch")
    accuracy_axis.set(title="Accuracy", xlabel="epoch", ylim=(0, 1))
    for axis in (loss_axis, accuracy_axis):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_confusion(confusion: list[list[int]], path: Path) -> None:
    matrix = np.array(confusion)
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.imshow(matrix, cmap="Blues")
    names = list(schema.LABELS)
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(names)), names)
    axis.set(xlabel="predicted", ylabel="actual", title="Confusion matrix (eval split)")
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axis.text(column, row, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def read_eval_samples(examples_uri: str, count: int) -> list[tuple[bytes, int]]:
    """The first ``count`` (JPEG bytes, class) pairs of the eval split."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, "Split-eval", "*")))
    samples = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(count):
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature
        samples.append((feature[features.IMAGE].bytes_list.value[0], feature[features.LABEL].int64_list.value[0]))
    return samples


def thumbnail(jpeg: bytes, side: int) -> np.ndarray:
    """The photo scaled to fit a ``side`` x ``side`` white square, centred."""
    photo = ImageOps.contain(Image.open(io.BytesIO(jpeg)).convert("RGB"), (side, side))
    cell = Image.new("RGB", (side, side), "white")
    cell.paste(photo, ((side - photo.width) // 2, (side - photo.height) // 2))
    return np.asarray(cell)


def plot_predictions(model_path: str, examples_uri: str, path: Path) -> None:
    """The photos in a grid, each captioned with the predicted class and its
    probability (green when right). One axes holds the whole grid as one
    image: sixteen axes cost seconds per run to lay out and draw."""
    samples = read_eval_samples(examples_uri, SAMPLE_COUNT)
    if not samples:
        return
    serve = tf.saved_model.load(model_path).signatures["serving_default"]
    outputs = serve(**{signatures.SERVING_INPUT: tf.constant([jpeg for jpeg, _ in samples])})
    probabilities = outputs[signatures.PROBABILITIES].numpy()
    columns = min(4, len(samples))
    rows = (len(samples) + columns - 1) // columns
    side, caption, gap = 160, 44, 12  # pixels: a photo, its two caption lines, the space between columns
    cell_width, cell_height = side + gap, side + caption
    grid = np.full((rows * cell_height, columns * cell_width, 3), 255, np.uint8)
    dpi = 80  # the figure is the grid's size in pixels, so each photo is drawn as it is
    figure = plt.figure(figsize=(columns * cell_width / dpi, rows * cell_height / dpi), dpi=dpi)
    axis = figure.add_axes([0, 0, 1, 1])
    axis.axis("off")
    for index, ((jpeg, actual), probs) in enumerate(zip(samples, probabilities, strict=False)):
        top, left = (index // columns) * cell_height + caption, (index % columns) * cell_width + gap // 2
        grid[top : top + side, left : left + side] = thumbnail(jpeg, side)
        predicted = int(np.argmax(probs))
        axis.text(
            left + side / 2,
            top - 4,
            f"{schema.LABELS[predicted]} {probs[predicted]:.0%}\n(true: {schema.LABELS[actual]})",
            color="green" if predicted == actual else "red",
            fontsize=9,
            ha="center",
            va="bottom",
        )
    axis.imshow(grid, interpolation="nearest")
    figure.savefig(path, dpi=dpi)
    plt.close(figure)


def write_report(summary: RunSummary, run_dir: Path, title: str) -> Path:
    """Writes ``report.md`` and its PNGs into ``run_dir``; returns the report's path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", ""]
    if summary.failed:
        parts += [f"**The run failed:** {summary.failed}", ""]
    if summary.timings:
        parts += ["## Components", "", "| component | how | seconds |", "| --- | --- | ---: |"]
        parts += [f"| {node} | {how} | {seconds:.1f} |" for node, how, seconds in summary.timings]
        parts.append("")
    parts += ["## Summary", "", "```", format_summary(summary), "```", ""]
    if summary.history:
        plot_history(summary.history, run_dir / "training_curves.png")
        parts += ["## Training", "", "![loss and accuracy per epoch](training_curves.png)", ""]
    if summary.evaluation:
        plot_confusion(summary.evaluation.confusion, run_dir / "confusion_matrix.png")
        parts += ["## Evaluation", "", "![confusion matrix](confusion_matrix.png)", ""]
    if summary.model_path and summary.examples_uri:
        plot_predictions(summary.model_path, summary.examples_uri, run_dir / "sample_predictions.png")
        parts += [
            "## Sample predictions",
            "",
            "Eval photos classified by the exported model from their JPEG bytes (green: right, red: wrong).",
            "",
            "![sample predictions](sample_predictions.png)",
            "",
        ]
    report = run_dir / "report.md"
    report.write_text("\n".join(parts), encoding="utf-8")
    return report
