"""Where the DAG runs: on this machine (``local``, with its ``progress``
display), compiled for Kubeflow v2 (``kubeflow``), and submitted or scheduled
on Vertex AI Pipelines (``vertex``). Only the command line imports these.
"""
