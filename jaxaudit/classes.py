"""Label spaces: the class names a model predicts, and which known set they are.

A model's classes are any tuple of names. When they are ImageNet-1k's (names or
wnids, in the standard order) or CIFAR-10's, the taxonomies jaxaudit ships apply
(WordNet, ReaL, metaclasses, near-duplicates; CIFAR-10's superclasses); any
other label space is "custom" and uses the taxonomy files a user gives.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import types
from typing import Mapping, Sequence

import numpy as np

from jaxaudit.errors import ConfigError

IMAGENET1K = "imagenet1k"
CIFAR10 = "cifar10"
CUSTOM = "custom"
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                 "horse", "ship", "truck")


def package_data_path(package: str, *parts: str) -> str:
  """Path of a data file inside an installed package, without importing it."""
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(f"package '{package}' is not installed")
  return os.path.join(list(spec.submodule_search_locations)[0], *parts)


@functools.cache
def imagenet1k_classes() -> tuple[tuple[str, str], ...]:
  """The 1000 (wnid, name) pairs in the standard (sorted wnid) order.

  Read from the `imagenet-x` wheel's `annotations/imagenet_labels.txt`.
  """
  path = package_data_path("imagenet_x", "annotations", "imagenet_labels.txt")
  with open(path) as f:
    rows = [line.strip().split(",", 1) for line in f if line.strip()]
  if len(rows) != 1000 or [r[0] for r in rows] != sorted(r[0] for r in rows):
    raise ValueError(f"{path}: expected 1000 sorted wnids")
  return tuple((wnid, name) for wnid, name in rows)


def class_names(label_space: str) -> tuple[str, ...]:
  """Human-readable class names of a known label space."""
  if label_space == IMAGENET1K:
    return tuple(name for _, name in imagenet1k_classes())
  if label_space == CIFAR10:
    return CIFAR10_NAMES
  raise ConfigError(f"unknown label space '{label_space}'; valid: {CIFAR10}, "
                    f"{IMAGENET1K}")


def _kind_of(names: tuple[str, ...]) -> str:
  """IMAGENET1K, CIFAR10 or CUSTOM for class names [K]."""
  lowered = tuple(n.lower() for n in names)
  if len(names) == 1000:
    wnids = tuple(w for w, _ in imagenet1k_classes())
    if lowered == tuple(n.lower() for n in class_names(IMAGENET1K)) or (
        tuple(names) == wnids):
      return IMAGENET1K
  if lowered == CIFAR10_NAMES:
    return CIFAR10
  return CUSTOM


def _keys_of(names: tuple[str, ...], kind: str) -> dict[str, int]:
  """Lower-cased identifiers of each class -> its index: the name, with `_`
  for spaces and the reverse, and the wnid on ImageNet-1k. Where two classes
  share a name (ImageNet's two 'crane's), the first keeps it."""
  keys: dict[str, int] = {}
  if kind == IMAGENET1K:
    for i, (wnid, _) in enumerate(imagenet1k_classes()):
      keys[wnid.lower()] = i
  for i, name in enumerate(names):
    for key in (name.lower(), name.lower().replace(" ", "_"),
                name.lower().replace("_", " ")):
      keys.setdefault(key, i)
  return keys


@dataclasses.dataclass(frozen=True)
class LabelSpace:
  """The classes a job's labels, predictions and taxonomies index.

  Built once per job (`LabelSpace.of`) and read by the data layer (labels
  from file names, a dataset's own classes mapped by name), the taxonomies
  and the stages, so names are never matched twice or differently.

  Attributes:
    names: the K class names, in logit order.
    kind: IMAGENET1K, CIFAR10 or CUSTOM.
    keys: lower-cased identifiers (names, `_`/space variants, wnids on
      ImageNet-1k) -> class index.
  """
  names: tuple[str, ...]
  kind: str
  keys: Mapping[str, int]

  @classmethod
  def of(cls, names: Sequence[str]) -> "LabelSpace":
    names = tuple(str(n) for n in names)
    kind = _kind_of(names)
    return cls(names, kind, types.MappingProxyType(_keys_of(names, kind)))

  def __len__(self) -> int:
    return len(self.names)

  def index_of(self, name: str) -> int:
    """The class a name or wnid identifies (case and `_`/space
    insensitive), -1 if none."""
    key = str(name).lower()
    return self.keys.get(key, self.keys.get(key.replace("_", " "), -1))

  def mapping_from(self, data_names: Sequence[str]) -> np.ndarray:
    """int64 [len(data_names)]: each of a dataset's own classes as an index
    of this label space (-1 where it has none); the same names, in the same
    order, map to themselves."""
    if tuple(data_names) == self.names:
      return np.arange(len(self.names), dtype=np.int64)
    return np.asarray([self.index_of(n) for n in data_names], np.int64)


def numbered_names(num_classes: int) -> tuple[str, ...]:
  """Names for a model that declares none and data that has none."""
  return tuple(f"class_{k}" for k in range(num_classes))
