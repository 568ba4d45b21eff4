"""Label taxonomies: WordNet 3.0 above ImageNet-1k, the imagenet-x metaclasses,
multi-label ground truth and the plausibility of a label for an image."""
