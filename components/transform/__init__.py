"""The code TFX's Transform runs: ``preprocessing.preprocessing_fn``.

Reads: the raw examples' ``image`` (JPEG bytes) and ``class``. Writes (in the
transform graph, which the Trainer and the exported model apply too): the
image decoded within the pixel budget, cropped, resized and standardized
with per-channel mean and deviation computed over the training split.
"""
