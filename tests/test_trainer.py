"""The Trainer on a tiny data set: run_fn (export, signatures, resume) and its input pipeline.

A transform graph is made with tft_beam exactly as Transform makes it, and
``run_fn`` is called with the arguments TFX would give it.
"""

import logging

import numpy as np
import pytest
import tensorflow as tf
from trainer_inputs import SIZE, fn_args, make_trainer_data

from components.trainer import training as trainer
from pipeline.data.synth import synthetic_jpeg


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_trainer_data(tmp_path_factory.mktemp("trainer"), 40, 20)


@pytest.fixture(scope="module")
def exported(data):
    """One trained and exported model, shared by the export tests."""
    args = fn_args(data, 1, epochs=1)
    trainer.run_fn(args)
    return args


@pytest.mark.slow  # trains a model
def test_run_fn_exports_both_signatures(exported):
    model = tf.saved_model.load(exported.serving_model_dir)
    jpegs = [synthetic_jpeg(5, i, i % 5, 60) for i in range(3)]
    by_bytes = model.signatures["serving_default"](image_bytes=tf.constant(jpegs))
    examples = []
    for jpeg in jpegs:
        example = tf.train.Example()
        example.features.feature["image"].bytes_list.value.append(jpeg)
        examples.append(example.SerializeToString())
    by_examples = model.signatures["from_examples"](examples=tf.constant(examples))
    np.testing.assert_allclose(by_bytes["probabilities"], by_examples["probabilities"], rtol=1e-5)
    assert by_bytes["probabilities"].shape == (3, 5)
    assert set(by_bytes) == {"probabilities", "class_id", "class_name"}


@pytest.mark.slow  # trains a model
def test_export_holds_warmup_requests_that_the_model_answers(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    from components.trainer import signatures

    model = tf.saved_model.load(exported.serving_model_dir)
    path = f"{exported.serving_model_dir}/{signatures.WARMUP_FILE}"
    requests = [
        prediction_log_pb2.PredictionLog.FromString(r.numpy()).predict_log.request
        for r in tf.data.TFRecordDataset(path)
    ]
    assert len(requests) == trainer.WARMUP_REQUESTS
    for request in requests:
        signature = model.signatures[request.model_spec.signature_name]
        inputs = {name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()}
        assert list(inputs) == ["image_bytes"]
        outputs = signature(**{name: tf.constant(value) for name, value in inputs.items()})
        assert outputs["probabilities"].shape == (1, 5)


@pytest.mark.slow  # trains a model
def test_a_restarted_trainer_resumes_from_its_last_epoch(data, monkeypatch, caplog):
    original = trainer.EpochLogger.on_epoch_end

    def killed_in_epoch_two(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(trainer.EpochLogger, "on_epoch_end", killed_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        trainer.run_fn(fn_args(data, 2, seed=7))
    monkeypatch.setattr(trainer.EpochLogger, "on_epoch_end", original)

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="absl")  # the Trainer logs through absl
    caplog.clear()  # the killed run's epochs
    retry = fn_args(data, 3, seed=7)  # a new execution, as TFX makes for a re-run
    trainer.run_fn(retry)
    epochs = [r.getMessage() for r in caplog.records if r.msg == trainer.EPOCH_LOG_FORMAT]
    assert [line.split(":")[0] for line in epochs] == ["Epoch 3/3"]
    assert tf.io.gfile.exists(retry.serving_model_dir)
    # The checkpoints are gone once training has finished.
    assert not tf.io.gfile.exists(trainer.backup_dir(retry, retry.custom_config["model"]))


# --------------------------------------------------------------------- the input pipeline


def dataset_contents(dataset) -> list[tuple[int, float]]:
    """Every (label, pixel sum) a dataset delivers, sorted: its examples as a multiset."""
    return sorted(
        (int(label), round(float(np.sum(image)), 2))
        for images, labels in dataset
        for image, label in zip(images.numpy(), labels.numpy().reshape(-1), strict=True)
    )


@pytest.fixture(scope="module")
def transform_output(data):
    import tensorflow_transform as tft

    return tft.TFTransformOutput(str(data / "transform"))


def test_the_in_memory_cache_changes_nothing_a_pass_delivers(data, transform_output):
    from components.trainer import input_pipeline

    files = input_pipeline.list_files([str(data / "eval" / "*")])
    cached = input_pipeline.make_dataset(files, transform_output, 4, training=False)
    uncached = input_pipeline.make_dataset(files, transform_output, 4, training=False, cache_budget_bytes=0)
    first, second = dataset_contents(cached), dataset_contents(cached)
    assert len(first) == 20
    assert first == second == dataset_contents(uncached)


def test_a_cached_training_epoch_holds_every_example_once(data, transform_output):
    from components.trainer import input_pipeline

    files = input_pipeline.list_files([str(data / "train" / "*")])
    every = dataset_contents(input_pipeline.make_dataset(files, transform_output, 8, training=False))
    training = input_pipeline.make_dataset(files, transform_output, 8, training=True, augment_images=False)
    epochs = iter(training)
    first = dataset_contents([next(epochs) for _ in range(5)])  # 40 examples, batches of 8
    second_batches = [next(epochs) for _ in range(5)]
    assert first == dataset_contents(second_batches) == every
    # ...shuffled anew each epoch.
    first_order = [int(label) for _, labels in training.take(5) for label in labels.numpy().reshape(-1)]
    second_order = [int(label) for _, labels in second_batches for label in labels.numpy().reshape(-1)]
    assert first_order != second_order


def test_the_cache_is_used_only_when_the_examples_fit(transform_output):
    from components.trainer import input_pipeline

    one = input_pipeline.example_bytes(transform_output)
    assert one == SIZE * SIZE * 3 * 4 + 8 + 2 * 3 * 4  # float pixels, int64 label, mean and std
    assert input_pipeline.fits_in_memory(10, transform_output, 10 * one)
    assert not input_pipeline.fits_in_memory(11, transform_output, 10 * one)


def test_later_passes_read_the_cache_not_the_files(data, transform_output, tmp_path):
    import shutil

    from components.trainer import input_pipeline

    files = [str(shutil.copy(data / "eval" / "data.gz", tmp_path / "data.gz"))]
    cached = input_pipeline.make_dataset(files, transform_output, 4, training=False)
    uncached = input_pipeline.make_dataset(files, transform_output, 4, training=False, cache_budget_bytes=0)
    first = dataset_contents(cached)
    dataset_contents(uncached)
    (tmp_path / "data.gz").unlink()
    assert dataset_contents(cached) == first
    with pytest.raises(tf.errors.NotFoundError):
        dataset_contents(uncached)


@pytest.mark.slow  # trains a model
def test_model_cache_mb_zero_turns_the_cache_off(data, monkeypatch):
    from components.trainer import input_pipeline

    budgets = []
    original = input_pipeline.make_dataset

    def recording(*args, **kwargs):
        budgets.append(kwargs["cache_budget_bytes"])
        return original(*args, **kwargs)

    monkeypatch.setattr(input_pipeline, "make_dataset", recording)
    trainer.run_fn(fn_args(data, 4, epochs=1, cache_mb=0))
    assert budgets == [0, 0]
