"""The pixel budget's default and its setting's name, without TensorFlow, so
that the configuration and the data tools can name them before anything loads
it (``image_budget.py`` reads images' dimensions and applies the budget).
"""

# The budget when nothing else is configured: 40 megapixels. The flower photos
# are at most a few megapixels; a 40 MP RGB image decodes to 120 MB of uint8
# and 480 MB of float32, which the Beam workers and a server can afford.
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# The setting's name, for messages (components do not import the configuration).
SETTING = "data.max_image_pixels"
