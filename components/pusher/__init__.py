"""The Pusher (``component.Pusher``, with its own ``Executor``).

Reads: the trained model and the Evaluator's blessing. Writes: a blessed
model, once, to ``<serving_dir>/<version>/`` (staged, then renamed into
place) with its push manifest (``assets.extra/push.json``, the layout in
``components.shared.serving_layout``); the pushed version as an output property.
"""
