"""The Pusher (``component.Pusher``, with its own ``Executor``).

Reads: the trained model, the Evaluator's blessing and evaluation, and the
Trainer's model_run. Writes: a blessed model, once, to
``<serving_dir>/<version>/`` (staged, then renamed into place) with its push
manifest (``assets.extra/push.json``, the layout in
``components.shared.serving_layout``) and its model card
(``assets.extra/model_card.md``, ``.json`` and ``confusion_matrix.png``:
``card_facts.py`` gathers, ``model_card.py`` renders and writes,
``confusion_picture.py`` draws); the pushed version as an output property.
"""
