"""ModelRegistryPusher (``component.ModelRegistryPusher``), on Vertex AI only.

Reads: the Pusher's PushedModel (the version written to the serving
directory). Writes: that version into the Vertex AI Model Registry (alias
``serving-<version>``) and, with an endpoint named, deploys it there.
"""
