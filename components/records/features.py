"""The names of the record features and of the Transform's outputs, in one place.

The record format itself (every feature, its type and shape) is the curated
schema in ``schema/schema.pbtxt``; this module names its features, and the
Transform outputs, so no other file spells them.
"""

# JPEG bytes of one photo.
IMAGE = "image"
# Integer class id, 0..4 in the order of schema/labels.txt: the training label.
LABEL = "class"
# Optional: the class name (bytes), [height, width], and the one-hot class.
CLASS_NAME = "label"
SIZE = "size"
ONE_HOT = "one_hot_class"
# Every feature of a record, required ones first.
RECORD_FEATURES = (IMAGE, LABEL, CLASS_NAME, SIZE, ONE_HOT)

# Transform outputs besides IMAGE and LABEL: the per-channel mean and standard
# deviation (of pixel values in [0, 1]) that IMAGE was standardized with.
IMAGE_MEAN = "image_mean"
IMAGE_STD = "image_std"
