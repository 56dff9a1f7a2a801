"""What the Trainer's tests hand to ``run_fn``: tiny GZIP shards of tf.Examples
with a transform graph made by tft_beam exactly as Transform makes it, and
the ``fn_args`` TFX would pass."""

import shutil
from pathlib import Path
from types import SimpleNamespace

import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

import schema
from components.trainer import recipes
from components.transform import preprocessing
from pipeline.config import Config
from pipeline.data.synth import synthetic_jpeg

SIZE = 32
RAW_SPEC = {"image": tf.io.FixedLenFeature([1], tf.string), "class": tf.io.FixedLenFeature([1], tf.int64)}


def write_examples(path, count, seed):
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for index in range(count):
            class_id = index % 5
            example = tf.train.Example()
            example.features.feature["image"].bytes_list.value.append(synthetic_jpeg(seed, index, class_id, 48))
            example.features.feature["class"].int64_list.value.append(class_id)
            writer.write(example.SerializeToString())


def make_trainer_data(root: Path, train_count: int, eval_count: int) -> Path:
    """``root/train``, ``root/eval`` and the transform graph of the training split in ``root/transform``."""
    (root / "train").mkdir()
    (root / "eval").mkdir()
    write_examples(root / "train" / "data.gz", train_count, seed=1)
    write_examples(root / "eval" / "data.gz", eval_count, seed=2)
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    instances = [
        {key: value.numpy() for key, value in tf.io.parse_single_example(record, RAW_SPEC).items()}
        for record in tf.data.TFRecordDataset(str(root / "train" / "data.gz"), compression_type="GZIP")
    ]
    with tft_beam.Context(temp_dir=str(root / "tmp"), force_tf_compat_v1=False):
        transform_fn = (instances, metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing.preprocessing_fn(inputs, {"image_size": SIZE})
        )
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    return root


def copy_of(inputs: Path, folder: Path) -> Path:
    """A copy of what ``make_trainer_data`` made, in ``folder/data``, to train in
    (run_fn writes next to its inputs)."""
    return Path(shutil.copytree(inputs, folder / "data", ignore=shutil.ignore_patterns("tmp")))


def fn_args(data: Path, execution: int, **settings):
    """The arguments TFX gives run_fn; ``settings`` override the [model] defaults
    (image size SIZE, batch 8, 3 epochs)."""
    model = {**Config().model.__dict__, "image_size": SIZE, "batch_size": 8, "epochs": 3, **settings}
    return SimpleNamespace(
        train_files=[str(data / "train" / "*")],
        eval_files=[str(data / "eval" / "*")],
        transform_output=str(data / "transform"),
        model_run_dir=str(data / "Trainer" / "model_run" / str(execution)),
        serving_model_dir=str(data / "Trainer" / "model" / str(execution) / "Format-Serving"),
        custom_config={"model": recipes.resolve(model), "labels": list(schema.LABELS)},
    )
