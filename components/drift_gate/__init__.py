"""DriftGate (``component.DriftGate``): stops a run before any Beam step when
the data cannot train or drifted.

Reads: ExampleGen's Examples (their ``data_lineage.json``) and the last
blessed model (the data profile the Trainer stored in it). Writes:
``drift.json`` (the comparison) into its output; raises when a split cannot
fill one batch or a distance is beyond ``gate.max_*_drift``.
"""
