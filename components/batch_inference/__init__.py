"""BatchInference (``component.BatchInference``, with its ``executor.Executor``):
the pushed model over a glob of images, after the Pusher, when
``run.batch_inference_source`` is set.

Reads: the Pusher's PushedModel (the version written to the serving
directory) and, by parameter, a local or gs:// glob of image files or of
TFRecord shards in the codelab format. Writes: its InferenceResult folder,
``predictions-SSSSS-of-NNNNN.jsonl`` (one line per image, as
``flowers-tfx batch-predict`` writes them) and ``tally.json``, and the tally
as an output property; when the model was not pushed (not blessed), nothing
but the reason it skipped (``skipped``). The Beam job is ``job.py``, which
``batch-predict`` runs too, with ``inputs.py`` (what it reads) and
``model_handler.py`` (the model inside RunInference).
"""
