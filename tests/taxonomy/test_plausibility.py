"""Plausibility of a label: label sets, superclasses, WordNet, duplicates."""

import numpy as np

from jaxaudit.taxonomy import metaclass, plausibility


def test_each_signal():
  superclass, _ = metaclass.imagenet_metaclasses()
  # sunglass->sunglasses, laptop->notebook, tabby->tench, tench->tench set,
  # unknown label.
  true = np.array([836, 620, 281, 0, -1])
  other = np.array([837, 681, 0, 1, 5])
  sets = [[836], [620], [281, 282], [0, 1], [5]]
  out = plausibility.plausibility(true, other, sets, superclass)
  np.testing.assert_array_equal(out["near_duplicate"],
                                [True, True, False, False, False])
  np.testing.assert_array_equal(out["in_label_set"],
                                [False, False, False, True, True])
  np.testing.assert_array_equal(out["same_superclass"],
                                [True, True, False, True, False])
  assert out["wordnet_distance"][4] == -1
  assert out["wordnet_distance"][2] > out["wordnet_distance"][1] > 0
  np.testing.assert_array_equal(out["plausible"],
                                [True, True, False, True, True])


def test_without_taxonomies():
  out = plausibility.plausibility(np.array([1, 2]), np.array([2, 2]), None,
                                  None, label_space="cifar10")
  assert (out["wordnet_distance"] == -1).all()
  assert not out["plausible"].any()


def test_near_duplicates_are_symmetric_pairs_of_distinct_classes():
  pairs = plausibility.near_duplicate_pairs()
  assert len(pairs) == 2 * len(plausibility.NEAR_DUPLICATE_WNIDS)
  assert all((b, a) in pairs and a != b for a, b in pairs)
  assert (638, 639) in pairs  # maillot / maillot, tank suit
