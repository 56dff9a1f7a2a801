"""Pushed models after the pipeline: ``versions`` (the serving directory's
layout), ``predict`` (classify image files), ``served_models`` and
``lineage`` (``models list``: metrics and origin from ML Metadata) and
``promotion`` (``models promote`` / ``rollback`` into a production directory).
None of this is part of the DAG.
"""
