"""The shipped WordNet file: reproducible from the script, and correct."""

import importlib.util
import os

import numpy as np
import pytest

from conftest import ROOT
from jaxaudit import classes
from jaxaudit.taxonomy import wordnet

WORDNET_DIR = "/usr/share/wordnet"


def _builder():
  path = os.path.join(ROOT, "scripts", "build_wordnet.py")
  spec = importlib.util.spec_from_file_location("build_wordnet", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_shipped_file_equals_a_fresh_build():
  if not os.path.exists(os.path.join(WORDNET_DIR, "data.noun")):
    pytest.skip(f"needs WordNet 3.0 under {WORDNET_DIR} (Debian's "
                "wordnet-base)")
  builder = _builder()
  with open(wordnet.DATA_FILE) as f:
    shipped = f.read()
  assert shipped == builder.dumps(builder.build(WORDNET_DIR))


def test_classes_match_the_label_space_and_paths_end_at_them():
  h = wordnet.load_hierarchy()
  assert h.wnids == [w for w, _ in classes.imagenet1k_classes()]
  for c, paths in enumerate(h.paths):
    lengths = [len(p) for p in paths]
    assert lengths == sorted(lengths)
    for path in paths:
      assert path[0] == "n00001740"  # entity
      assert path[-1] == h.wnids[c]
  assert h.name("n00001740") == "entity"


def test_known_distances():
  h = wordnet.load_hierarchy()
  tabby, tiger_cat, egyptian_cat = 281, 282, 285
  assert h.distance(tabby, tabby) == 0
  assert h.distance(tabby, tiger_cat) == 2  # both a "domestic cat".
  assert h.distance(tabby, egyptian_cat) == 2
  beagle, tench = 162, 0
  assert h.distance(tabby, beagle) < h.distance(tabby, tench)
  assert h.distance(tabby, tench) == h.distance(tench, tabby)


def test_distances_vectorised_matches_the_triangle_inequality():
  h = wordnet.load_hierarchy()
  rng = np.random.default_rng(0)
  a, b, c = rng.integers(0, 1000, (3, 300))
  ab, bc, ac = h.distances(a, b), h.distances(b, c), h.distances(a, c)
  assert ab.dtype == np.int64 and ab.shape == (300,)
  np.testing.assert_array_equal(ab, h.distances(b, a))
  assert (ac <= ab + bc).all()
  assert ((ab == 0) == (a == b)).all()
  assert [h.distance(x, y) for x, y in zip(a[:5], b[:5])] == ab[:5].tolist()
  with pytest.raises(ValueError, match="class indices"):
    h.distances(np.array([1000]), np.array([0]))


def test_ancestor_groups_coarsen_with_depth():
  h = wordnet.load_hierarchy()
  assert h.ancestor(281, 0) == "n00001740"
  assert h.ancestor(281, 99) == h.wnids[281]
  counts = [len(set(h.ancestor_groups(d).tolist())) for d in (0, 3, 6, 30)]
  assert counts[0] == 1 and counts[-1] == 1000
  assert counts == sorted(counts)
  groups = h.ancestor_groups(7)
  assert groups[281] == groups[282]  # tabby, tiger cat
  assert groups[281] != groups[0]  # tabby, tench
