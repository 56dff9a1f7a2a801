"""The flower record format, shared by every box that reads records and by the data tools.

``features``: the name of every record feature and Transform output.
``record_format``: what is wrong with one serialized record (``parse_record``).
``image_budget``: an image's width and height from its header, and the pixel budget.
``pixel_budget``: the budget's default, light enough for the configuration.
"""
