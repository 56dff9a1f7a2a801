"""AnomaliesGate (``component.AnomaliesGate``): stops the run when
ExampleValidator found anomalies.

Reads: ExampleValidator's ExampleAnomalies (``SchemaDiff.pb`` of each split).
Writes nothing; raises, naming the split, the feature and the problem, so
Transform never sees records that break the curated schema.
"""
