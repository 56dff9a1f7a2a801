"""Names of the record features that the components read.

The record format itself (every feature, its type and shape) is the curated
schema in ``schema/schema.pbtxt``; this module names the two that the model
uses, and the Transform outputs, so no other file spells them.
"""

# JPEG bytes of one photo.
IMAGE = "image"
# Integer class id, 0..4 in the order of schema/labels.txt.
LABEL = "class"

# Transform outputs besides IMAGE and LABEL: the per-channel mean and standard
# deviation (of pixel values in [0, 1]) that IMAGE was standardized with.
IMAGE_MEAN = "image_mean"
IMAGE_STD = "image_std"
