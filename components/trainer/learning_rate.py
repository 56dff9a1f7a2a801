"""Learning-rate schedules, as a rate per epoch.

Per-epoch functions (applied by Keras' LearningRateScheduler) are easy to
read, print and test, and behave the same under every distribution strategy.

- constant: ``peak`` throughout.
- exponential: ``peak * decay**epoch``, never below ``minimum``.
- ramp: the Xception codelab's schedule: a linear ramp from ``minimum`` to
  ``peak`` over ``warmup_epochs``, then exponential decay towards ``minimum``.
  Fine-tuning a pretrained network with a high rate at once would wreck its
  weights; the ramp lets the new head settle first.
- cosine: from ``peak`` down to ``minimum`` along half a cosine over all epochs.
"""

from __future__ import annotations

import math
from typing import Callable

from components.trainer.choices import LR_SCHEDULES


def schedule(
    name: str, peak: float, epochs: int, decay: float = 0.8, warmup_epochs: int = 0, minimum: float = 0.0
) -> Callable[[int], float]:
    """A function from the epoch (0-based) to its learning rate."""
    if name == "constant":
        return lambda epoch: peak
    if name == "exponential":
        return lambda epoch: max(minimum, peak * decay**epoch)
    if name == "ramp":

        def ramp(epoch: int) -> float:
            if epoch < warmup_epochs:
                return minimum + (peak - minimum) * epoch / warmup_epochs
            return minimum + (peak - minimum) * decay ** (epoch - warmup_epochs)

        return ramp
    if name == "cosine":
        return lambda epoch: minimum + 0.5 * (peak - minimum) * (1 + math.cos(math.pi * epoch / max(1, epochs)))
    raise ValueError(f"unknown learning-rate schedule {name!r}; choose one of: {', '.join(LR_SCHEDULES)}")


def from_settings(settings: dict, name: str, peak: float, epochs: int) -> Callable[[int], float]:
    """``schedule`` with the [model] settings' lr_decay, warmup_epochs and lr_min."""
    return schedule(
        name,
        peak,
        epochs,
        decay=settings["lr_decay"],
        warmup_epochs=settings["warmup_epochs"],
        minimum=settings["lr_min"],
    )
