"""Training recipes: each model's defaults, from the "Keras on TPU" codelabs.

A setting left at ``auto`` in the ``[model]`` configuration takes the value of
the chosen model's recipe here, so ``--set model.name=xception`` alone gives
the codelab's Xception fine-tuning (ramp-up then decay), and any single
setting can still be overridden.
"""

from __future__ import annotations

from components.trainer.choices import MODEL_NAMES, check

# AdamW's weight decay when model.weight_decay is auto (Keras' AdamW default).
ADAMW_WEIGHT_DECAY = 0.004

# Values every recipe starts from.
_COMMON = {
    "image_size": 192,
    "epochs": 10,
    "batch_size": 32,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "lr_schedule": "constant",
    "lr_decay": 0.8,
    "warmup_epochs": 0,
    "lr_min": 1e-5,
    "label_smoothing": 0.0,
    "dropout": 0.0,
    "weight_decay": 0.0,
    "augment": True,
    "early_stopping_patience": 0,
    "fine_tune_epochs": 0,
    "fine_tune_learning_rate": 1e-5,
    "fine_tune_lr_schedule": "constant",
    "fine_tune_layers": 0,
    "jit_compile": False,
}

# One recipe per name of choices.MODEL_NAMES (a test checks they agree).
RECIPES: dict[str, dict] = {
    # A baseline that shows why convolutions matter; no augmentation.
    "dense": {"image_size": 64, "epochs": 10, "augment": False},
    # The codelab's convnet at a small size: the default, quick on a laptop.
    # 24 epochs along a cosine from 0.001 to 1e-5 (issue 29 item 2): eval
    # accuracy 0.915, 0.899 and 0.883 for model.seed 42, 0.899 and 0.878 for
    # seed 1, 0.904 for seed 2 (fresh runs). Alone on 2 cores (load 1.5):
    # Trainer 50 s, whole run 93 s wall, 126 s CPU; two at a time on a busy
    # machine (load 4 to 9): Trainer 119 to 163 s, 129 to 136 s CPU. The 12
    # epochs at a constant rate before it: 0.862 and 0.856 (seeds 42, 1)
    # here, 0.755 to 0.83 across fresh clones; Trainer 47 s, whole run 86 s
    # wall, 83 s CPU (with a second run, load 2). 20 epochs along the cosine: 0.883, 0.883, 0.862 (seeds
    # 42, 1, 2), 118 to 123 s CPU. The cheaper Trainer trace (3b85d09) pays
    # for the extra epochs: the whole run's CPU stays under the 166 s that
    # 12 epochs took before it (BENCHMARKS.md, End to end).
    "convnet": {"image_size": 64, "epochs": 24, "lr_schedule": "cosine"},
    # Fire modules with batch norm; the codelab decays the rate each epoch.
    # At the photos' full 192 px and with label smoothing it generalizes
    # better than at 128 px (0.839 against 0.791 held out, BENCHMARKS.md).
    "squeezenet": {
        "image_size": 192,
        "epochs": 30,
        "learning_rate": 0.01,
        "lr_schedule": "exponential",
        "lr_decay": 0.9,
        "lr_min": 1e-4,
        "label_smoothing": 0.1,
    },
    # Transfer learning: a frozen ImageNet base and a new head, then
    # fine-tuning the base's top. Both phases train on cached activations of
    # what stays frozen (frozen_features.py): the head on pooled features,
    # then the base's top 100 layers (block_6 up, 2.2 M weights) on the
    # activations below them, so an epoch of fine-tuning skips the frozen
    # layers' forward pass. The fine-tuning rate decays along a cosine: at a
    # constant 2e-4 it ended unstable. Chosen on a validation split of
    # shards 00-07 and 10-11 only, never on the held-out shards 08-09
    # (issue 29; BENCHMARKS.md has the figures): 0.930 for this recipe, 0.907
    # for the one before (top 38 layers, 5 epochs at a constant 2e-4), 0.922
    # for the top 100 for 6 epochs at a constant 1e-4.
    "mobilenetv2": {
        "image_size": 192,
        "epochs": 12,
        "dropout": 0.2,
        "label_smoothing": 0.1,
        "fine_tune_epochs": 8,
        "fine_tune_learning_rate": 3e-4,
        "fine_tune_lr_schedule": "cosine",
        "fine_tune_layers": 100,
    },
    # Fine-tuning every weight, with the codelab's ramp-up then decay.
    "xception": {
        "image_size": 192,
        "epochs": 12,
        "learning_rate": 5e-5,
        "lr_schedule": "ramp",
        "warmup_epochs": 5,
        "lr_decay": 0.8,
        "lr_min": 1e-5,
        "batch_size": 16,
    },
}


def resolve(settings: dict) -> dict:
    """The [model] settings with every ``None`` (auto) replaced by the recipe's value."""
    name = settings["name"]
    check("model", name, MODEL_NAMES)
    recipe = {**_COMMON, **RECIPES[name]}
    resolved = {key: recipe.get(key) if value is None else value for key, value in settings.items()}
    # AdamW's point is its decoupled decay: left at auto it takes Keras' own
    # default; an explicit 0 stays 0.
    if resolved.get("optimizer") == "adamw" and settings.get("weight_decay") is None:
        resolved["weight_decay"] = ADAMW_WEIGHT_DECAY
    return resolved
