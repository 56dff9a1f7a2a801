"""What the Trainer writes that other parts read, named once.

Plain constants, no imports: the local runner's progress display and the run
summary use them without loading TensorFlow.
"""

# Per-epoch curves and settings, in the Trainer's model_run artifact.
HISTORY_FILE = "history.json"
# One log line per epoch; the live progress display shows these lines.
EPOCH_LOG_FORMAT = "Epoch %d/%d: %s"
