"""Helpers that several boxes and the application share, standard library only.

``serving_layout``: the serving directory the Pusher writes and the serving
tools read. ``common``: the timestamp format, TensorFlow error text, and a lock
on a folder.
"""
