"""The WordNet 3.0 hierarchy above the 1000 ImageNet-1k classes.

Read from `imagenet_wordnet.json`, shipped in this package and rebuilt with
`scripts/build_wordnet.py`; nothing is downloaded.

  hierarchy = load_hierarchy()
  hierarchy.distance(281, 282)  # tabby -> tiger cat: 2 (siblings under "cat").
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np

DATA_FILE = os.path.join(os.path.dirname(__file__), "imagenet_wordnet.json")
NUM_CLASSES = 1000
_FAR = np.int16(10_000)  # "not an ancestor" in the up-distance table.
_CHUNK = 4096  # Pairs per vectorised step of `distances`.


class Hierarchy:
  """Hypernym paths of the ImageNet-1k classes and distances between them.

  Attributes:
    wnids: the 1000 class wnids, in class order.
    names: wnid -> first lemma, for every class and ancestor synset.
    paths: per class, its hypernym paths (wnid lists, root first), shortest
      first.
  """

  def __init__(self, content: dict):
    entries = content["classes"]
    if len(entries) != NUM_CLASSES:
      raise ValueError(f"{DATA_FILE}: expected {NUM_CLASSES} classes, got "
                       f"{len(entries)}")
    self.wnids = [e["wnid"] for e in entries]
    self.names = dict(content["names"])
    self.paths = [[list(p) for p in e["paths"]] for e in entries]
    synsets = sorted({w for paths in self.paths for p in paths for w in p})
    column = {w: k for k, w in enumerate(synsets)}
    # up[c, s]: fewest hypernym steps from class c up to synset s.
    self._up = np.full((NUM_CLASSES, len(synsets)), _FAR, np.int16)
    for c, paths in enumerate(self.paths):
      for path in paths:
        for steps, wnid in enumerate(reversed(path)):
          k = column[wnid]
          self._up[c, k] = min(self._up[c, k], steps)

  def distance(self, a: int, b: int) -> int:
    """Edges on the shortest path between classes a and b through a common
    ancestor (0 for the same class; siblings are 2 apart)."""
    return int(self.distances(np.asarray([a]), np.asarray([b]))[0])

  def distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`distance` of each pair.

    Args:
      a, b: int [N] class indices in [0, 1000).

    Returns:
      int64 [N] path lengths.
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if a.shape != b.shape or a.ndim != 1:
      raise ValueError(f"distances: a and b must be [N], got {a.shape}, "
                       f"{b.shape}")
    for side in (a, b):
      if side.size and (side.min() < 0 or side.max() >= NUM_CLASSES):
        raise ValueError(f"distances: class indices must be in [0, "
                         f"{NUM_CLASSES}), got [{side.min()}, {side.max()}]")
    out = np.empty(len(a), np.int64)
    for start in range(0, len(a), _CHUNK):
      sl = slice(start, start + _CHUNK)
      total = (self._up[a[sl]].astype(np.int32)
               + self._up[b[sl]].astype(np.int32))
      out[sl] = total.min(axis=1)
    return out

  def ancestor(self, cls: int, depth: int) -> str:
    """The wnid `depth` steps below the root on the class's first (shortest)
    path; the class itself when its path is shorter."""
    path = self.paths[cls][0]
    return path[min(max(depth, 0), len(path) - 1)]

  def ancestor_groups(self, depth: int) -> np.ndarray:
    """int64 [1000]: classes sharing `ancestor(., depth)` share a group id."""
    _, groups = np.unique([self.ancestor(c, depth) for c in range(NUM_CLASSES)],
                          return_inverse=True)
    return groups.astype(np.int64)

  def name(self, wnid: str) -> str:
    return self.names[wnid]


@functools.cache
def load_hierarchy() -> Hierarchy:
  """The shipped hierarchy (read once per process)."""
  with open(DATA_FILE) as f:
    return Hierarchy(json.load(f))
