"""The Trainer on a tiny data set: run_fn (export, signatures, resume) and its input pipeline.

A transform graph is made with tft_beam exactly as Transform makes it, and
``run_fn`` is called with the arguments TFX would give it.
"""

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from trainer_inputs import SIZE, copy_of, fn_args

from components.trainer import training as trainer
from pipeline.data.synth import synthetic_jpeg


@pytest.fixture(scope="module")
def data(trainer_inputs, tmp_path_factory):
    """The session's tiny shards and transform graph, copied for this module's runs."""
    return copy_of(trainer_inputs, tmp_path_factory.mktemp("trainer"))


class EpochLines(logging.Handler):
    """Keeps the Trainer's one-line epoch summaries ("Epoch 3/3: loss ...")."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        if record.msg == trainer.EPOCH_LOG_FORMAT:
            self.lines.append(record.getMessage().split(":")[0])


@pytest.fixture(scope="module")
def resumed(data):
    """One model trained as a re-run Trainer trains it, shared by the tests
    that read it: a run_fn killed after its second of three epochs, then a
    new execution that resumes it, finishes and exports. Both run with
    ``model.cache_mb = 0``. Returns the retry's fn_args, the epochs the retry
    logged, and the cache budget of every dataset either run made."""
    from components.trainer import input_pipeline

    original_epoch_end, original_make_dataset = trainer.EpochLogger.on_epoch_end, input_pipeline.make_dataset
    budgets = []

    def killed_in_epoch_two(self, epoch, logs=None):
        original_epoch_end(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt("killed")

    def recording(*args, **kwargs):
        budgets.append(kwargs["cache_budget_bytes"])
        return original_make_dataset(*args, **kwargs)

    absl_logger, epochs = logging.getLogger("absl"), EpochLines()  # the Trainer logs through absl
    level = absl_logger.level
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(input_pipeline, "make_dataset", recording)
        patch.setattr(trainer.EpochLogger, "on_epoch_end", killed_in_epoch_two)
        with pytest.raises(KeyboardInterrupt):
            trainer.run_fn(fn_args(data, 2, seed=7, cache_mb=0))
        patch.setattr(trainer.EpochLogger, "on_epoch_end", original_epoch_end)
        retry = fn_args(data, 3, seed=7, cache_mb=0)  # a new execution, as TFX makes for a re-run
        absl_logger.setLevel(logging.INFO)
        absl_logger.addHandler(epochs)
        try:
            trainer.run_fn(retry)
        finally:
            absl_logger.removeHandler(epochs)
            absl_logger.setLevel(level)
    return SimpleNamespace(args=retry, epoch_lines=epochs.lines, budgets=budgets)


@pytest.fixture(scope="module")
def exported(resumed):
    """The resumed run's fn_args: its export, shared by the export tests."""
    return resumed.args


@pytest.mark.slow  # trains a model
def test_run_fn_exports_both_signatures(exported):
    """The export answers encoded images (serving_default) and serialized
    tf.Examples (from_examples) alike, with probabilities, class ids and names."""
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
    """The export carries TF Serving warmup requests, each one the model answers."""
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
def test_a_restarted_trainer_resumes_from_its_last_epoch(resumed):
    """The retry of a run killed after its second epoch trains only the third,
    exports, and removes the checkpoints it resumed from."""
    assert resumed.epoch_lines == ["Epoch 3/3"]
    assert tf.io.gfile.exists(resumed.args.serving_model_dir)
    assert not tf.io.gfile.exists(trainer.backup_dir(resumed.args, resumed.args.custom_config["model"]))


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
def test_model_cache_mb_zero_turns_the_cache_off(resumed):
    """With model.cache_mb = 0 every dataset run_fn makes (training and
    evaluation, in the killed run and in its retry) gets no cache budget."""
    assert resumed.budgets == [0, 0, 0, 0]
