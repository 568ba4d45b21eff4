"""The 1000 -> 100 ImageNet metaclass map that the `imagenet-x` wheel ships.

Row i of `imagenet_x/annotations/imagenet_1k_classes_to_100_metaclasses.csv`
(columns wnid, name, metaclass; the wnid and name are the metaclass's) gives
class i's metaclass (Idrissi et al., "ImageNet-X", ICLR 2023; BSD-3).
"""

from __future__ import annotations

import csv
import functools

import numpy as np

from jaxaudit import classes

_FILE = ("annotations", "imagenet_1k_classes_to_100_metaclasses.csv")


@functools.cache
def _read() -> tuple[np.ndarray, tuple[str, ...]]:
  path = classes.package_data_path("imagenet_x", *_FILE)
  with open(path, newline="") as f:
    rows = list(csv.DictReader(f))
  if len(rows) != 1000:
    raise ValueError(f"{path}: expected 1000 rows, got {len(rows)}")
  ids = np.asarray([int(r["metaclass"]) for r in rows], np.int64)
  names = {}
  for row, meta in zip(rows, ids.tolist()):
    names.setdefault(meta, row["name"])
  if sorted(names) != list(range(len(names))):
    raise ValueError(f"{path}: metaclass ids are not 0..{len(names) - 1}")
  return ids, tuple(names[m] for m in range(len(names)))


def imagenet_metaclasses() -> tuple[np.ndarray, list[str]]:
  """Each ImageNet-1k class's metaclass.

  Returns:
    (int64 [1000] metaclass id of class i, the 100 metaclass names by id).
  """
  ids, names = _read()
  return ids.copy(), list(names)
