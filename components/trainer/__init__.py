"""The code the Trainer runs: ``training.run_fn`` (read, train, export), the
model zoo (``models``), each model's recipe (``recipes``), the input pipeline,
the distribution strategy, learning-rate schedules and the serving signatures.

``choices`` declares the valid names of models, optimizers, schedules,
strategies and precisions once; the configuration checks against it. This
file imports nothing, so ``components.trainer.choices`` stays light.
"""
