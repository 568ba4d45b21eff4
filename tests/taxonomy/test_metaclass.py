"""The imagenet-x 1k -> 100 metaclass map."""

import numpy as np

from jaxaudit.taxonomy import metaclass


def test_metaclasses():
  ids, names = metaclass.imagenet_metaclasses()
  assert ids.shape == (1000,) and ids.dtype == np.int64
  assert len(names) == 100 and set(ids.tolist()) == set(range(100))
  assert names[ids[281]] == "cat" and ids[281] == ids[282] == ids[285]
  assert names[ids[0]] == "fish"  # tench
  assert ids[281] != ids[0]
  ids[0] = -5  # a copy: the cached table is untouched.
  assert metaclass.imagenet_metaclasses()[0][0] != -5
