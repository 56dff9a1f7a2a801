"""Floating-point operations: what a model costs per image, and what the
machine can do at best.

FLOPs are each op's registered ``flops`` statistic (what TensorFlow's
profiler sums for ``float_operation``; 2 per multiply-add), over the ops
that a ``tf.function``'s outputs need, traced at batch 1:

* :func:`forward_flops`: the model's forward pass (inference mode);
* :func:`training_flops`: the loss and its gradients with respect to the
  model's *trainable* weights, which is the work of a training step: the
  forward pass, the gradients of the activations down to the lowest trainable
  layer (not through the first layer's input, nor through frozen layers) and
  of the weights. This counts the gradient graph itself rather than assuming
  the usual "backward = 2 x forward" (training = 3 x forward); both are
  reported. The optimizer's update (a few FLOPs per weight) is left out.

TensorFlow 2.16 registers no ``flops`` for the backward ops of depthwise
convolutions (MobileNetV2 has 17), which would count them as free; they are
registered here at the cost of the forward op (each is one pass over the
same multiply-adds), as the registry does for ``Conv2DBackpropInput`` and
``Conv2DBackpropFilter``. Element-wise ops without a statistic (ReLU,
pooling, batch norm) are not counted: a small under-count, the usual one.

:func:`matmul_peak` times a large float32 matrix product, the op a CPU runs
closest to its peak, as the reference for "how close to the machine".
"""

from __future__ import annotations

import time

import numpy as np


def _register_depthwise_backprop() -> None:
    from tensorflow.python.framework import ops, tensor_util

    def _shape(graph, node, index):
        from tensorflow.python.framework import graph_util

        return graph_util.tensor_shape_from_node_def_name(graph, node.input[index])

    def _flops(graph, node, filter_hw):
        out = _shape(graph, node, 2)
        out.assert_is_fully_defined()
        return ops.OpStats("flops", 2 * int(np.prod(out.as_list())) * filter_hw)

    def backprop_input(graph, node):
        kernel = _shape(graph, node, 1)
        kernel.assert_is_fully_defined()
        return _flops(graph, node, int(kernel[0]) * int(kernel[1]))

    def backprop_filter(graph, node):
        name = node.input[1]
        sizes = graph.as_graph_element(name if ":" in name else name + ":0")
        value = tensor_util.constant_value(sizes)
        if value is None:
            raise ValueError(f"{node.name}: filter sizes are not a constant")
        return _flops(graph, node, int(value[0]) * int(value[1]))

    for op_type, function in (
        ("DepthwiseConv2dNativeBackpropInput", backprop_input),
        ("DepthwiseConv2dNativeBackpropFilter", backprop_filter),
    ):
        try:
            ops.RegisterStatistics(op_type, "flops")(function)
        except KeyError:  # registered already (by a newer TensorFlow, or a second call)
            pass


def _count(concrete_function) -> int:
    """FLOPs of the ops that the function's outputs depend on, from each op's
    registered ``flops`` statistic (what the profiler's ``float_operation``
    sums). Only the ops the outputs need are counted: a gradient function
    builds every gradient of its op (``Conv2D``'s gives both the input's and
    the filter's), and those nobody asks for (the model input's, a frozen
    layer's weights') are pruned before the graph runs."""
    import tensorflow as tf
    from tensorflow.python.framework import ops

    graph = concrete_function.graph
    outputs = [tensor.op.name for tensor in concrete_function.outputs]
    needed = tf.compat.v1.graph_util.extract_sub_graph(graph.as_graph_def(), outputs)
    total = 0
    for node in needed.node:
        try:
            value = ops.get_stats_for_node_def(graph, node, "flops").value
        except ValueError:  # a shape not known at trace time: not counted
            value = None
        total += int(value or 0)
    return total


def forward_flops(model, image_size: int) -> int:
    """FLOPs of one image through the model in inference mode."""
    import tensorflow as tf

    spec = tf.TensorSpec([1, image_size, image_size, 3], tf.float32)
    return _count(tf.function(lambda images: model(images, training=False)).get_concrete_function(spec))


def training_flops(model, image_size: int) -> int:
    """FLOPs of one image's forward pass (training mode), loss and gradients
    with respect to the model's trainable weights."""
    import tensorflow as tf
    import tf_keras as keras

    _register_depthwise_backprop()
    loss = keras.losses.SparseCategoricalCrossentropy()
    weights = model.trainable_variables

    def step(images, labels):
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        return tape.gradient(value, weights)

    concrete = tf.function(step).get_concrete_function(
        tf.TensorSpec([1, image_size, image_size, 3], tf.float32), tf.TensorSpec([1], tf.int64)
    )
    return _count(concrete)


def model_flops(name: str, image_size: int, num_classes: int, weights: str = "none", unfreeze: bool = False) -> dict:
    """Forward and training FLOPs per image of a model of the zoo, as the
    Trainer builds it (``unfreeze``: its pretrained base made trainable, as
    in the fine-tuning phase with ``fine_tune_layers`` 0). Weights do not
    change the count, so random ones are used."""
    from components.trainer import models

    model = models.build_model(name, image_size, num_classes, weights=weights)
    if unfreeze:
        models.unfreeze_base(model, 0)
    return {
        "forward_flops": forward_flops(model, image_size),
        "training_flops": training_flops(model, image_size),
        "trainable_weights": int(sum(np.prod(v.shape) for v in model.trainable_variables)),
    }


def mobilenetv2_reference_check() -> dict:
    """The count against the published figure: MobileNetV2 1.0 at 224 px
    costs 300 M multiply-adds (Sandler et al. 2018, table 4), ~0.60 GFLOPs,
    with its 1,000-class top (Keras' application, random weights)."""
    import tf_keras as keras

    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    counted = forward_flops(model, 224)
    return {"counted": counted, "published": 2 * 300_000_000, "ratio": round(counted / 600e6, 3)}


def matmul_peak(n: int = 4096, repeats: int = 5) -> dict:
    """Best GFLOP/s of an n x n by n x n float32 ``tf.matmul`` (2 n^3 FLOPs)
    over ``repeats`` timed products, after one untimed warm-up."""
    import tensorflow as tf

    a = tf.random.normal([n, n], seed=1)
    b = tf.random.normal([n, n], seed=2)
    product = tf.function(lambda x, y: tf.matmul(x, y))
    product(a, b).numpy()  # warm-up: traces, allocates, loads the kernels
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        product(a, b).numpy()
        seconds.append(time.perf_counter() - started)
    best = min(seconds)
    return {
        "n": n,
        "repeats": repeats,
        "best_seconds": best,
        "gflops": 2 * n**3 / best / 1e9,
        "median_gflops": 2 * n**3 / float(np.median(seconds)) / 1e9,
    }
