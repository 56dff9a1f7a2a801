"""RunNotifier (``component.RunNotifier``): the exit handler of runs on Vertex AI.

Reads: the run's final status (and the Pusher's output, through Vertex AI).
Writes: one JSON POST to the configured webhook (``webhook``, which local
runs' notifications use too); never fails the run.
"""
