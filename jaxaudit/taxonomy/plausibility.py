"""Would a person accept `other` as a label for an image of class `true`?

The one judgement of the job (through `jaxaudit.taxonomy.judgement.Taxonomy`):
the mistakes stage asks it whether a top-1 error is forgivable, the attack
stage whether an adversarial label is one a person would accept, with the same
truth sources and the same WordNet distance.
"""

from __future__ import annotations

import functools

import numpy as np

from jaxaudit import classes
from jaxaudit.taxonomy import wordnet

# ImageNet-1k class pairs that name the same thing (or one a subset of the
# other) for a non-expert, by wnid. Source: "Flaws of ImageNet, Computer
# Vision's Favorite Dataset", ICLR Blogposts 2025,
# https://iclr-blogposts.github.io/2025/blog/imagenet-flaws (sections "The Cat
# Problem", "The Laptop Problem", "Problematic Groups": near synonyms, subsets,
# and 'projectile, missile' predicted as 'missile' for 57% of its images), and
# Vasudevan et al. 2022, "When does dough become a bagel?" (overlapping class
# definitions). The maillot pair shares its lemma in WordNet.
NEAR_DUPLICATE_WNIDS = (
    ("n04355933", "n04356056"),  # sunglass / sunglasses, dark glasses, shades
    ("n03642806", "n03832673"),  # laptop / notebook, notebook computer
    ("n03710637", "n03710721"),  # maillot / maillot, tank suit
    ("n03773504", "n04008634"),  # missile / projectile, missile
    ("n03782006", "n04152593"),  # monitor / screen, CRT screen
    ("n02808440", "n04493381"),  # bathtub, bathing tub, bath, tub / tub, vat
    ("n02123045", "n02123159"),  # tabby, tabby cat / tiger cat
    ("n01871265", "n02504013"),  # tusker / Indian elephant
    ("n01871265", "n02504458"),  # tusker / African elephant
)


@functools.cache
def near_duplicate_pairs() -> frozenset[tuple[int, int]]:
  """`NEAR_DUPLICATE_WNIDS` as ImageNet-1k class index pairs, both orders."""
  index = {wnid: i for i, (wnid, _) in enumerate(classes.imagenet1k_classes())}
  pairs = set()
  for a, b in NEAR_DUPLICATE_WNIDS:
    pairs |= {(index[a], index[b]), (index[b], index[a])}
  return frozenset(pairs)


def plausibility(true: np.ndarray, other: np.ndarray,
                 label_sets: list[list[int]] | None,
                 superclass: np.ndarray | None,
                 label_space: str = "imagenet1k",
                 max_distance: int = -1) -> dict[str, np.ndarray]:
  """How acceptable each `other` label is for an image labelled `true`.

  Args:
    true: int [N] the images' labels (-1 = unknown).
    other: int [N] the labels to judge (a prediction, an adversarial class).
    label_sets: per image, every class a person accepts (None: unknown); an
      empty set accepts nothing.
    superclass: int [K] superclass id of each class (None: no superclasses).
    label_space: "imagenet1k" enables WordNet and the near-duplicate list.
    max_distance: the largest WordNet distance still accepted (< 0: none).

  Returns:
    `wordnet_distance` int64 [N] (edges between the two synsets through a
    common hypernym, -1 when unavailable), `close_in_wordnet` bool [N]
    (0 <= distance <= max_distance), `same_superclass` bool [N],
    `in_label_set` bool [N], `near_duplicate` bool [N] (a pair of
    `NEAR_DUPLICATE_WNIDS`), `plausible` bool [N] (any of the four).
  """
  true = np.asarray(true, np.int64)
  other = np.asarray(other, np.int64)
  if true.shape != other.shape or true.ndim != 1:
    raise ValueError(f"plausibility: true and other must be [N], got "
                     f"{true.shape}, {other.shape}")
  known = (true >= 0) & (other >= 0)
  n = len(true)
  distance = np.full(n, -1, np.int64)
  near_duplicate = np.zeros(n, bool)
  if label_space == "imagenet1k" and known.any():
    distance[known] = wordnet.load_hierarchy().distances(true[known],
                                                         other[known])
    pairs = near_duplicate_pairs()
    near_duplicate = np.asarray([(t, o) in pairs for t, o
                                 in zip(true.tolist(), other.tolist())], bool)
  same_superclass = np.zeros(n, bool)
  if superclass is not None:
    superclass = np.asarray(superclass)
    same_superclass[known] = (superclass[true[known]]
                              == superclass[other[known]])
  in_label_set = np.zeros(n, bool)
  if label_sets is not None:
    if len(label_sets) != n:
      raise ValueError(f"plausibility: {len(label_sets)} label sets for {n} "
                       "labels")
    in_label_set = np.asarray([o in s for o, s in zip(other.tolist(),
                                                      label_sets)], bool)
  close = (distance >= 0) & (distance <= max_distance)
  return {
      "wordnet_distance": distance,
      "close_in_wordnet": close,
      "same_superclass": same_superclass,
      "in_label_set": in_label_set,
      "near_duplicate": near_duplicate,
      "plausible": same_superclass | in_label_set | near_duplicate | close,
  }
