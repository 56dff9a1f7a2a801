"""The pipeline's container image: building it, checking it, running in it.

Every task of a Vertex AI run, the Trainer's Vertex AI Training job and the
Dataflow workers run in the one image the repository's ``Dockerfile`` makes.

- ``builders``: docker (with a daemon), podman or buildah, whichever the
  machine has, behind one small interface (build, inspect, run).
- ``facts``: what an image is, read through a builder (size, digest, labels,
  the versions it holds).
- ``check``: the checks that run inside the image, as its user
  (``python -m pipeline.image.check``).
"""
