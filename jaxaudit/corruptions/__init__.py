"""Common corruptions (ImageNet-C / CIFAR-10-C) as pure JAX functions on
image batches, for the shift stage.

`spec.CORRUPTIONS` is the registry: each entry's function maps images
[B, H, W, 3] in [0, 1], per-image keys [B] and one severity's tables to the
corrupted batch. The tables come from the references' own numbers
(`tables.py`) for any image size, padded so that one compiled program serves
all five severities (the severity is a traced index).
"""
