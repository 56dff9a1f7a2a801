"""ImportExampleGen, screened (``component.ScreenedImportExampleGen``).

Reads: the input shards (TFRecords of tf.Examples), the latest span or the
window of the latest ``data.spans`` spans (``spans``). Checks every record
(``screening``) and sets bad ones aside or stops the run. Writes: the
Examples artifact (train and eval splits), its ``quarantine/`` and
``data_lineage.json`` (spans read, examples per class, each split's profile).
"""
