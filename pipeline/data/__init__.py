"""Flower photos as TFRecord shards: the record format, and the tools around it.

The format is the one of the "Keras on TPU" codelabs (see ``records``). The
other modules make shards (``synth`` draws synthetic flowers, ``convert`` turns
a folder of photos into shards with Apache Beam), check them (``inspect``) and
expose all of it on the command line (``cli``).
"""
