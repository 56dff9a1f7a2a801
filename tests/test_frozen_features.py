"""The frozen base run once: a head trained on cached features is the head
the full network would have trained, and run_fn still exports the whole
network and resumes where it was killed."""

import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from trainer_inputs import SIZE, make_trainer_data
from trainer_inputs import fn_args as trainer_fn_args

import schema
from components.trainer import frozen_features, input_pipeline, models, recipes
from components.trainer import training as trainer
from pipeline.config import Config
from pipeline.data.synth import synthetic_jpeg

# Real ImageNet weights on development machines only (see conftest.SHARED_DATA_DIR).
MOBILENET_WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / "mobilenet_v2_1.0_224_no_top.h5"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """16 training and 8 evaluation records, and their transform graph."""
    return make_trainer_data(tmp_path_factory.mktemp("frozen_features"), 16, 8)


@pytest.fixture(scope="module")
def transform_output(data):
    return tft.TFTransformOutput(str(data / "transform"))


def train_files(data):
    return input_pipeline.list_files([str(data / "train" / "*")])


def mobilenetv2(weights="none", seed=3, dropout=0.0):
    keras.utils.set_random_seed(seed)
    return models.build_model("mobilenetv2", SIZE, 5, dropout=dropout, weights=weights)


def outputs(model, inputs) -> np.ndarray:
    """The model's inference outputs, computed eagerly: the reference values
    the tests compare with need no traced predict function (a MobileNetV2's
    takes seconds to trace, its eager call on a few 32-pixel images does not)."""
    return model(inputs, training=False).numpy()


def compile_for_test(model):
    settings = recipes.resolve({**Config().model.__dict__, "name": "mobilenetv2"})
    trainer.compile_model(model, settings, 0.01, 5)


# --------------------------------------------------------------------- the split


def test_only_a_frozen_base_followed_by_global_pooling_is_split():
    model = mobilenetv2()
    split = frozen_features.split_frozen_part(model)
    assert split is not None and split.feature_shape == (1280,)
    assert [type(layer) for layer in split.head.layers[1:]] == [keras.layers.Dropout, keras.layers.Dense]
    model.get_layer(models.PRETRAINED_BASE).trainable = True  # the fine-tuning phase
    assert frozen_features.split_frozen_part(model) is None
    assert frozen_features.split_frozen_part(models.build_model("convnet", SIZE, 5)) is None


@pytest.mark.slow  # builds an Xception
def test_xception_is_fully_trainable_so_not_split():
    assert frozen_features.split_frozen_part(models.build_model("xception", 71, 5, weights="none")) is None


def test_the_head_is_made_of_the_models_own_layers():
    model = mobilenetv2()
    split = frozen_features.split_frozen_part(model)
    assert split.head.get_layer("probabilities") is model.get_layer("probabilities")
    # A second split of the same model (a restarted phase) still works.
    assert frozen_features.split_frozen_part(model) is not None


def top_layers_from(model, first: str) -> int:
    """How many of the base's top layers start at the layer named ``first``
    (the count ``unfreeze_base`` and ``model.fine_tune_layers`` take)."""
    base = model.get_layer(models.PRETRAINED_BASE)
    return len(base.layers) - [layer.name for layer in base.layers].index(first)


def test_a_base_with_its_top_unfrozen_is_cut_below_its_lowest_trainable_layer():
    """Block 6 starts a new width, so no skip connection crosses below it:
    the cut is the output of block 5, and the head is the base's top, the
    pooling and the model's own head layers."""
    model = mobilenetv2()
    models.unfreeze_base(model, top_layers_from(model, "block_6_expand"))
    split = frozen_features.split_frozen_part(model)
    assert split is not None and split.feature_shape == (SIZE // 8, SIZE // 8, 32)
    assert split.head.get_layer("probabilities") is model.get_layer("probabilities")
    base = model.get_layer(models.PRETRAINED_BASE)
    trained_there = {weight.ref() for weight in split.head.trainable_weights}
    assert trained_there == {weight.ref() for weight in model.trainable_weights}
    assert base.get_layer("block_6_expand").kernel.ref() in trained_there
    assert base.get_layer("block_5_expand").kernel.ref() not in trained_there


def test_a_cut_that_a_skip_connection_reaches_around_is_refused():
    """Inside block 5, whose sum adds block 4's output back, the layers above
    the cut need more than the cut's tensor; just above the sum, the lowest
    trainable layer takes two inputs. Either way the full network trains."""
    model = mobilenetv2()
    for first in ("block_5_depthwise", "block_5_add"):
        models.unfreeze_base(model, top_layers_from(model, first))  # (freezes what is below anew)
        assert frozen_features.split_frozen_part(model) is None, first


# --------------------------------------------------------------------- the features


@pytest.mark.slow  # runs MobileNetV2 on images (about 30 s)
def test_features_come_once_per_record_with_their_labels_and_flips(data, transform_output):
    """The frozen base runs once over every training record, in order: each
    record's pooled features, those of its left-right flip and its label; and
    the head on those features answers as the full network on the images."""
    model = mobilenetv2()
    split = frozen_features.split_frozen_part(model)
    batches = frozen_features.transformed_batches(train_files(data), transform_output, 5)  # 5, 5, 5, 1
    cached = frozen_features.compute_features(split, batches, with_flipped=True)
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches]).reshape(-1, 1)
    assert cached.plain.shape == cached.flipped.shape == (16, 1280)
    np.testing.assert_array_equal(cached.labels, labels)
    np.testing.assert_allclose(cached.plain, outputs(split.extractor, images), rtol=1e-5, atol=1e-6)
    flipped = outputs(split.extractor, images[:, :, ::-1, :])
    np.testing.assert_allclose(cached.flipped, flipped, rtol=1e-5, atol=1e-6)
    # The head on pooled features is the full network.
    np.testing.assert_allclose(outputs(split.head, cached.plain), outputs(model, images), rtol=1e-5, atol=1e-6)


def test_each_epoch_holds_every_example_once_plain_or_flipped():
    plain = np.arange(8, dtype=np.float32).reshape(8, 1)
    cached = frozen_features.CachedFeatures(plain=plain, flipped=-plain - 100, labels=np.arange(8).reshape(8, 1))
    batches = iter(frozen_features.training_dataset(cached, batch_size=4, seed=1))
    seen = []
    for _ in range(10):  # 10 epochs of 2 batches
        epoch = [next(batches) for _ in range(2)]
        values = np.concatenate([features.numpy() for features, _ in epoch]).reshape(-1)
        labels = np.concatenate([labels.numpy() for _, labels in epoch]).reshape(-1)
        restored = np.where(values < 0, -values - 100, values)
        assert sorted(restored) == list(range(8))
        np.testing.assert_array_equal(restored, labels)  # labels stay with their features
        seen.extend(values < 0)
    assert 0.3 < np.mean(seen) < 0.7  # about half are flipped


def test_a_feature_map_is_flipped_or_not_as_a_whole():
    """Activations below a fine-tuning cut are maps, not vectors: each
    example takes all of its plain map or all of its flipped one."""
    plain = np.repeat(np.arange(8, dtype=np.float32), 12).reshape(8, 2, 2, 3)
    cached = frozen_features.CachedFeatures(plain=plain, flipped=-plain - 100, labels=np.arange(8).reshape(8, 1))
    batches = iter(frozen_features.training_dataset(cached, batch_size=4, seed=1))
    for _ in range(6):
        features, labels = (values.numpy() for values in next(batches))
        values = features.reshape(4, -1)
        assert np.all(values == values[:, :1])  # one choice per example
        restored = np.where(values[:, 0] < 0, -values[:, 0] - 100, values[:, 0])
        np.testing.assert_array_equal(restored, labels.reshape(-1))


# --------------------------------------------------------------------- training


def real_or_random_weights():
    real = pytest.param(
        str(MOBILENET_WEIGHTS),
        id="imagenet-weights",
        marks=pytest.mark.skipif(
            not MOBILENET_WEIGHTS.is_file(),
            reason=f"real MobileNetV2 weights not available: {MOBILENET_WEIGHTS} does not exist",
        ),
    )
    return [pytest.param("none", id="random-weights"), real]


def train_both_ways(full, cached_model, batches, epochs: int) -> None:
    """``full`` on the images of the first batch, ``cached_model`` on its
    cached features, for the same epochs in the same order."""
    images, labels = (values.numpy() for values in next(iter(batches)))
    compile_for_test(full)
    full.fit(images, labels, batch_size=4, epochs=epochs, shuffle=False, verbose=0)
    split = frozen_features.split_frozen_part(cached_model)
    compile_for_test(split.head)
    cached = frozen_features.compute_features(split, batches.take(1))
    split.head.fit(cached.plain, cached.labels, batch_size=4, epochs=epochs, shuffle=False, verbose=0)


@pytest.mark.slow  # trains MobileNetV2 twice, in two phases (about 40 s)
@pytest.mark.parametrize("weights", real_or_random_weights())
def test_both_phases_on_cached_features_train_the_full_network_as_the_full_network_would(
    data, transform_output, weights
):
    """Three epochs of the head on cached pooled features, then two of the
    base's top on the cached activations below it, leave the full model as
    the same epochs of the full network do (same predictions after each
    phase), and those predictions differ from the untrained model's."""
    batches = frozen_features.transformed_batches(train_files(data), transform_output, 16)
    images, labels = next(iter(batches))
    images, labels = images.numpy(), labels.numpy()

    full, cached_model = mobilenetv2(weights), mobilenetv2(weights)  # the same initial weights (same seed)
    untrained = outputs(full, images)
    train_both_ways(full, cached_model, batches, 3)
    trained = outputs(full, images)
    np.testing.assert_allclose(outputs(cached_model, images), trained, rtol=1e-4, atol=1e-6)
    # ...and training did change the predictions, in the full model itself.
    assert np.max(np.abs(untrained - trained)) > 1e-3

    # The fine-tuning phase: block_13 up trains, on the activations below it.
    for model in (full, cached_model):
        models.unfreeze_base(model, top_layers_from(model, "block_13_expand"))
    train_both_ways(full, cached_model, batches, 2)
    fine_tuned = outputs(full, images)
    np.testing.assert_allclose(outputs(cached_model, images), fine_tuned, rtol=1e-4, atol=1e-5)
    assert np.max(np.abs(fine_tuned - trained)) > 1e-3


# --------------------------------------------------------------------- run_fn


def fn_args(data, execution: int, **settings):
    mobilenet = {"name": "mobilenetv2", "weights": "none", "batch_size": 4, "epochs": 2, "fine_tune_epochs": 2}
    return trainer_fn_args(data, execution, **{**mobilenet, **settings})


def log_info(caplog) -> None:
    """INFO lines of the Trainer, which logs with absl (whose level is its own
    once a library has parsed absl's flags), and of Python's root logger."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="absl")


def epoch_lines(caplog) -> list[str]:
    return [r.getMessage().split(":")[0] for r in caplog.records if r.msg == trainer.EPOCH_LOG_FORMAT]


@pytest.mark.slow  # trains a model three times
def test_run_fn_trains_the_head_on_cached_features_resumes_where_killed_and_exports_the_full_network(
    data, monkeypatch, caplog
):
    """One run_fn killed in the head phase, again in fine-tuning, then let
    finish: each phase resumes, and the export is the whole network."""
    original = trainer.EpochLogger.on_epoch_end

    def killed_after(kill_epoch):
        def on_epoch_end(self, epoch, logs=None):
            original(self, epoch, logs)
            if epoch == kill_epoch:
                raise KeyboardInterrupt("killed")

        return on_epoch_end

    log_info(caplog)
    # Killed after the head's second of three epochs: the head resumes from its checkpoint.
    monkeypatch.setattr(trainer.EpochLogger, "on_epoch_end", killed_after(1))
    with pytest.raises(KeyboardInterrupt):
        trainer.run_fn(fn_args(data, 2, epochs=3, seed=7))
    assert "Frozen part run once (train phase): features 1280 of 16 training images and their flips" in caplog.text
    assert epoch_lines(caplog) == ["Epoch 1/3", "Epoch 2/3"]
    # Killed after the first fine-tuning epoch: the first phase is restored, not retrained.
    caplog.clear()
    monkeypatch.setattr(trainer.EpochLogger, "on_epoch_end", killed_after(3))
    with pytest.raises(KeyboardInterrupt):
        trainer.run_fn(fn_args(data, 3, epochs=3, seed=7))
    assert epoch_lines(caplog) == ["Epoch 3/3", "Epoch 4/5"]
    assert "Frozen part run once (fine_tune phase)" in caplog.text  # the base's top trains on cached activations

    caplog.clear()
    monkeypatch.setattr(trainer.EpochLogger, "on_epoch_end", original)
    retry = fn_args(data, 4, epochs=3, seed=7)
    trainer.run_fn(retry)
    assert "First training phase restored" in caplog.text
    assert epoch_lines(caplog) == ["Epoch 5/5"]
    assert tf.io.gfile.exists(retry.serving_model_dir)
    assert not tf.io.gfile.exists(trainer.backup_dir(retry, retry.custom_config["model"]))

    served = tf.saved_model.load(retry.serving_model_dir).signatures["serving_default"]
    jpegs = [synthetic_jpeg(5, i, i % 5, 60) for i in range(3)]
    outputs = served(image_bytes=tf.constant(jpegs))
    assert outputs["probabilities"].shape == (3, 5)
    np.testing.assert_allclose(np.sum(outputs["probabilities"], axis=1), 1.0, rtol=1e-5)
    assert set(outputs["class_name"].numpy()) <= {label.encode() for label in schema.LABELS}
