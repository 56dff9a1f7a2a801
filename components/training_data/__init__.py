"""What a model's data was, written by ExampleGen and carried by the Trainer and the Pusher.

``data_lineage``: the spans read and the examples per class of each span and
split (``data_lineage.json``). ``data_profile``: class counts and image-size
histograms of a set of examples, and how far two profiles drift apart (the
DriftGate compares them).
"""
