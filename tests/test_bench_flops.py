"""The FLOPs counts behind the training benchmark's "how close to the
machine": a model small enough to count by hand, a step's gradients only
where the weights are trainable, and the matmul peak they are compared with."""

import tf_keras as keras

from bench import flops

SIZE, CHANNELS, FILTERS, CLASSES = 8, 3, 4, 5
PIXELS = SIZE * SIZE
CONV = 2 * PIXELS * FILTERS * 3 * 3 * CHANNELS  # multiply-adds x 2
DEPTHWISE = 2 * PIXELS * FILTERS * 3 * 3
POOLING = PIXELS * FILTERS  # the mean's additions
DENSE = 2 * FILTERS * CLASSES


def small_model():
    """A conv, a depthwise conv (whose backward ops TensorFlow registers no
    FLOPs for), global pooling and a dense layer, without biases."""
    inputs = keras.Input((SIZE, SIZE, CHANNELS))
    x = keras.layers.Conv2D(FILTERS, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, use_bias=False)(x))


def test_forward_flops_are_the_layers_multiply_adds():
    assert flops.forward_flops(small_model(), SIZE) == CONV + DEPTHWISE + POOLING + DENSE


def test_training_flops_count_only_the_gradients_a_step_needs():
    model = small_model()
    every_layer = flops.training_flops(model, SIZE)
    # Forward, then each layer's weight gradient and the activation gradients
    # down to the conv; not the conv's input gradient (the model's input).
    assert every_layer >= flops.forward_flops(model, SIZE) + DENSE * 2 + DEPTHWISE * 2 + CONV
    assert every_layer < 3 * flops.forward_flops(model, SIZE)

    model.layers[1].trainable = False  # the conv frozen
    conv_frozen = flops.training_flops(model, SIZE)
    # Its weight gradient goes, and so does the depthwise conv's input gradient,
    # which only the conv's weight gradient needed.
    assert every_layer - conv_frozen == CONV + DEPTHWISE


def test_matmul_peak_reports_a_rate():
    peak = flops.matmul_peak(n=128, repeats=2)
    assert peak["gflops"] >= peak["median_gflops"] > 0
    assert peak["best_seconds"] > 0
