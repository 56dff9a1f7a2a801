"""Names of the record features that the components read.

The record format itself (every feature, its type and shape) is the curated
schema in ``schema/schema.pbtxt``; this module names the two that the model
uses, so no other file spells them.
"""

# JPEG bytes of one photo.
IMAGE = "image"
# Integer class id, 0..4 in the order of schema/labels.txt.
LABEL = "class"
