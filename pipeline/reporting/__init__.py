"""What a run did, read back from ML Metadata and the run's artifacts:
``run_outputs`` (the run's executions and artifacts), ``summary`` (the text
at the end of a run) and ``report`` (the Markdown page with plots).
"""
