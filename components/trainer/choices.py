"""The names the Trainer understands, declared once.

The configuration (``pipeline/config.py``) accepts exactly these values and
refuses others naming the valid ones; the model zoo, the recipes, the
schedules, the optimizers and the strategy choice are keyed by them. Plain
tuples, no imports: reading the configuration must not load TensorFlow.
"""

# The model zoo (components/trainer/models.py) and its recipes (recipes.py).
MODEL_NAMES = ("dense", "convnet", "squeezenet", "mobilenetv2", "xception")
# Models whose base is pretrained on ImageNet (their weights setting matters).
PRETRAINED_MODELS = ("mobilenetv2", "xception")
# "momentum" is SGD with momentum 0.9, "nesterov" the same with Nesterov's update.
OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "nesterov")
LR_SCHEDULES = ("constant", "exponential", "ramp", "cosine")
STRATEGIES = ("auto", "tpu", "mirrored", "default")
PRECISIONS = ("auto", "off", "bfloat16", "mixed_float16")


def check(kind: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` when it is one of ``choices``; a ValueError naming them otherwise."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}; choose one of: {', '.join(choices)}")
    return value
