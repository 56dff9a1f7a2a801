"""The model zoo, its recipes, schedules and the distribution strategy choice."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components.trainer import learning_rate, models, recipes, strategy
from components.trainer import training as trainer
from pipeline.config import Config
from pipeline.dag import model_settings

SIZES = {"xception": 71}  # Xception's smallest input; 32 for the others
# Models whose one training step takes several seconds on a CPU: marked slow.
HEAVY_MODELS = {"mobilenetv2", "squeezenet", "xception"}


def one_training_step(name: str) -> float:
    size = SIZES.get(name, 32)
    model = models.build_model(name, size, 5, dropout=0.1, weights="none")
    trainer.compile_model(model, recipes.resolve({**Config().model.__dict__, "name": name}), 0.01, 5)
    images = np.random.default_rng(0).normal(size=(4, size, size, 3)).astype("float32")
    loss = model.train_on_batch(images, np.array([0, 1, 2, 3]))
    return float(loss[0] if isinstance(loss, list) else loss)


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY_MODELS else name for name in sorted(models.BUILDERS)],
)
def test_every_model_trains_a_step_under_the_default_strategy(name):
    assert np.isfinite(one_training_step(name))


@pytest.mark.slow
def test_every_model_trains_a_step_under_mirrored_strategy_on_two_cpus():
    # Logical devices must be set before TensorFlow starts, so in a new process.
    script = textwrap.dedent(
        """
        import os, json
        from components.shared import tf_environment
        tf_environment.configure()
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import numpy as np
        from components.trainer import models, recipes, strategy, training as trainer
        from pipeline.config import Config
        mirrored = strategy.choose_strategy("mirrored")
        results = {"replicas": mirrored.num_replicas_in_sync}
        # Xception is left out: its build alone takes a minute here, and it has
        # no layer the others lack (its default-strategy test builds it).
        for name in [name for name in models.BUILDERS if name != "xception"]:
            size = 32
            with mirrored.scope():
                model = models.build_model(name, size, 5, weights="none")
                trainer.compile_model(model, recipes.resolve({**Config().model.__dict__, "name": name}), 0.01, 5)
            images = np.random.default_rng(0).normal(size=(4, size, size, 3)).astype("float32")
            history = model.fit(images, np.array([0, 1, 2, 3]), batch_size=4, epochs=1, verbose=0)
            results[name] = history.history["loss"][0]
        print(json.dumps(results))
        """
    )
    project = Path(__file__).resolve().parents[1]  # the script imports components
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=project)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results.pop("replicas") == 2
    assert sorted(results) == sorted(name for name in models.BUILDERS if name != "xception")
    assert all(np.isfinite(loss) for loss in results.values())


class FakeResolver:
    """Stands for a TPU cluster resolver."""


def test_auto_strategy_uses_a_tpu_when_one_resolves(monkeypatch):
    made = {}
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: made.setdefault("connected", r))
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: made.setdefault("initialized", r))

    class FakeTPUStrategy:
        num_replicas_in_sync = 8

        def __init__(self, resolver):
            made["strategy"] = resolver

    monkeypatch.setattr(tf.distribute, "TPUStrategy", FakeTPUStrategy)
    resolver = FakeResolver()
    chosen = strategy.choose_strategy("auto", resolve_tpu=lambda: resolver, gpu_count=lambda: 4)
    assert isinstance(chosen, FakeTPUStrategy)
    assert made == {"connected": resolver, "initialized": resolver, "strategy": resolver}
    assert strategy.set_precision("auto", chosen) == "mixed_bfloat16"
    keras.mixed_precision.set_global_policy("float32")


def test_auto_strategy_mirrors_several_gpus_and_else_uses_the_default(monkeypatch):
    class FakeMirroredStrategy:
        num_replicas_in_sync = 2

    monkeypatch.setattr(tf.distribute, "MirroredStrategy", FakeMirroredStrategy)
    mirrored = strategy.choose_strategy("auto", resolve_tpu=lambda: None, gpu_count=lambda: 2)
    assert isinstance(mirrored, FakeMirroredStrategy)
    default = strategy.choose_strategy("auto", resolve_tpu=lambda: None, gpu_count=lambda: 1)
    assert default is tf.distribute.get_strategy()
    assert strategy.choose_strategy("default", resolve_tpu=lambda: FakeResolver()) is tf.distribute.get_strategy()
    assert strategy.set_precision("auto", default) == "float32"


def test_forcing_a_tpu_without_one_is_a_clear_error():
    with pytest.raises(RuntimeError, match="model.strategy is 'tpu' but no TPU resolved"):
        strategy.choose_strategy("tpu", resolve_tpu=lambda: None)


def test_mixed_precision_keeps_the_softmax_in_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.build_model("convnet", 32, 5, weights="none")
        assert model.layers[0].compute_dtype == "bfloat16"
        assert model.output.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_ramp_schedule_rises_linearly_then_decays():
    rate = learning_rate.schedule("ramp", peak=5e-5, epochs=12, decay=0.8, warmup_epochs=5, minimum=1e-5)
    assert rate(0) == pytest.approx(1e-5)
    assert rate(2) == pytest.approx(1e-5 + 4e-5 * 2 / 5)
    assert rate(5) == pytest.approx(5e-5)
    assert rate(7) == pytest.approx(1e-5 + 4e-5 * 0.8**2)
    assert all(rate(e) > rate(e + 1) for e in range(5, 11))


def test_other_schedules():
    assert learning_rate.schedule("constant", 0.1, 5)(4) == 0.1
    exponential = learning_rate.schedule("exponential", 0.01, 30, decay=0.5, minimum=1e-4)
    assert exponential(1) == pytest.approx(0.005) and exponential(29) == 1e-4
    cosine = learning_rate.schedule("cosine", 0.1, 10, minimum=0.0)
    assert cosine(0) == pytest.approx(0.1) and cosine(5) == pytest.approx(0.05) and cosine(10) == pytest.approx(0)
    with pytest.raises(ValueError, match="choose one of: constant, exponential, ramp, cosine"):
        learning_rate.schedule("linear", 0.1, 5)


def test_recipes_fill_auto_settings_and_keep_explicit_ones():
    config = Config()
    config.model.name = "xception"
    config.model.epochs = 3
    settings = model_settings(config)
    assert settings["epochs"] == 3
    assert settings["lr_schedule"] == "ramp" and settings["warmup_epochs"] == 5
    assert None not in settings.values()


def test_label_smoothing_loss_matches_keras_on_one_hot_labels():
    probabilities = tf.constant([[0.7, 0.1, 0.1, 0.05, 0.05], [0.2, 0.2, 0.2, 0.2, 0.2]])
    labels = tf.constant([0, 3])
    smoothed = trainer.make_loss(0.1, 5)(labels, probabilities)
    expected = keras.losses.categorical_crossentropy(tf.one_hot(labels, 5), probabilities, label_smoothing=0.1)
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "name, kind, momentum, nesterov",
    [
        ("adam", "Adam", None, None),
        ("adamw", "AdamW", None, None),
        ("sgd", "SGD", 0.0, False),
        ("momentum", "SGD", 0.9, False),
        ("nesterov", "SGD", 0.9, True),
    ],
)
def test_optimizers(name, kind, momentum, nesterov):
    optimizer = trainer.make_optimizer(name, 0.01, 0.0)
    assert type(optimizer).__name__ == kind
    if momentum is not None:
        assert (optimizer.momentum, optimizer.nesterov) == (momentum, nesterov)


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(models.PretrainedWeightsError, match=r"nothere.h5: weights file for MobileNetV2 not found"):
        models.build_model("mobilenetv2", 96, 5, weights=str(tmp_path / "nothere.h5"))


def test_a_failed_download_says_how_to_pass_a_file(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("tf_keras.src.utils.data_utils.get_file", offline, raising=False)
    with pytest.raises(models.PretrainedWeightsError, match=r"--set model.weights=/path/to/"):
        models.build_model("mobilenetv2", 96, 5, weights="imagenet")


def test_local_mobilenetv2_weights_load(shared_data_dir):
    weights = shared_data_dir.parent / "weights" / "mobilenet_v2_1.0_224_no_top.h5"
    if not weights.is_file():
        pytest.skip(f"{weights} is absent")
    model = models.build_model("mobilenetv2", 96, 5, weights=str(weights))
    base = model.get_layer(models.PRETRAINED_BASE)
    assert not base.trainable
    random_base = models.build_model("mobilenetv2", 96, 5, weights="none").get_layer(models.PRETRAINED_BASE)
    assert not np.allclose(base.get_weights()[0], random_base.get_weights()[0])


def test_augmentation_flips_and_changes_saturation_on_pixel_values():
    from components.trainer.input_pipeline import augment

    rng = np.random.default_rng(1)
    pixels = rng.uniform(0.2, 0.8, size=(64, 8, 8, 3)).astype("float32")
    mean = np.full((64, 3), 0.5, "float32")
    std = np.full((64, 3), 0.25, "float32")
    standardized = (pixels - 0.5) / 0.25
    augmented = augment(tf.constant(standardized), tf.constant(mean), tf.constant(std), seed=3).numpy()
    back = augmented * 0.25 + 0.5
    assert back.min() >= -1e-6 and back.max() <= 1 + 1e-6  # still valid pixels
    grey = lambda x: x @ np.array([0.2989, 0.587, 0.114], "float32")  # noqa: E731
    # Saturation blends with grey, flips mirror: the grey image stays, possibly mirrored.
    for original, result in zip(pixels, back, strict=True):
        assert np.allclose(grey(result), grey(original), atol=0.02) or np.allclose(
            grey(result), grey(original)[:, ::-1], atol=0.02
        )
    assert not np.allclose(back, pixels, atol=1e-3)


def test_pretrained_models_see_pixels_in_minus_one_to_one():
    mean, std = np.array([0.4, 0.5, 0.3], "float32"), np.array([0.2, 0.25, 0.3], "float32")
    pixels = np.random.default_rng(2).uniform(0, 1, size=(2, 4, 4, 3)).astype("float32")
    layer = models.imagenet_inputs((mean, std))
    np.testing.assert_allclose(layer((pixels - mean) / std), 2 * pixels - 1, atol=1e-5)


def test_fine_tuning_the_top_layers_leaves_the_rest_of_the_base_frozen():
    model = models.build_model("mobilenetv2", 32, 5, weights="none")
    models.unfreeze_base(model, 38)  # from block_13_expand up
    base = model.get_layer(models.PRETRAINED_BASE)
    assert [layer.trainable for layer in base.layers].index(True) == len(base.layers) - 38
    top_weights = len(base.trainable_weights)
    trained = {weight.name.split("/")[0] for weight in base.trainable_weights}
    assert all(name.startswith(("block_13", "block_14", "block_15", "block_16", "Conv_1")) for name in trained), trained
    assert any(name.startswith("block_13") for name in trained)
    models.unfreeze_base(model)  # 0: the whole base, as the codelab fine-tunes
    assert all(layer.trainable for layer in base.layers)
    assert len(base.trainable_weights) > 3 * top_weights


def test_tracing_a_training_step_converts_none_of_tf_keras_with_autograph(monkeypatch):
    """AutoGraph skips tf_keras's internals (components/trainer/keras_autograph.py):
    they made two thirds of a small run's Trainer time. Our own functions are
    still converted."""
    from tensorflow.python.autograph.pyct import transpiler

    converted = []
    original = transpiler.PyToPy.transform_function

    def recording(self, fn, *args, **kwargs):
        converted.append(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}")
        return original(self, fn, *args, **kwargs)

    monkeypatch.setattr(transpiler.PyToPy, "transform_function", recording)
    model = models.build_model("dense", 32, 5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    images, labels = np.zeros((4, 32, 32, 3), np.float32), np.arange(4) % 5
    model.fit(images, labels, epochs=1, verbose=0)

    @tf.function
    def ours(x):
        return x * 2 if x.shape[0] else x  # Python control flow: AutoGraph converts this function

    ours(tf.ones([2]))
    assert converted, "nothing was converted: the recorder is not in AutoGraph's path"
    assert any(name.endswith("<locals>.ours") for name in converted)
    # Only the step function Keras hands to tf.function itself; before, some 150 of the functions it calls.
    assert {name for name in converted if name.startswith("tf_keras.")} == {
        "tf_keras.src.engine.training.Model.make_train_function.<locals>.train_function"
    }
