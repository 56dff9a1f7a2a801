"""Helpers that several boxes and the application share, standard library only.

``tf_environment``: TensorFlow's environment variables, set once.
``serving_layout``: the serving directory the Pusher writes and the serving
tools read. ``common``: the timestamp format, TensorFlow error text, and a lock
on a folder.
"""
