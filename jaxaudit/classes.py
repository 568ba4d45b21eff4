"""Class lists of the label spaces jaxaudit knows (ImageNet-1k, CIFAR-10)."""

from __future__ import annotations

import functools
import importlib.util
import os

from jaxaudit.errors import ConfigError

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
  """Human-readable class names of a label space ("imagenet1k", "cifar10")."""
  if label_space == "imagenet1k":
    return tuple(name for _, name in imagenet1k_classes())
  if label_space == "cifar10":
    return CIFAR10_NAMES
  raise ConfigError(f"unknown label space '{label_space}'; valid: cifar10, "
                    "imagenet1k")


def class_keys(label_space: str) -> dict[str, int]:
  """Lower-cased identifiers (wnids and names, `_` or space) -> class index."""
  keys: dict[str, int] = {}
  if label_space == "imagenet1k":
    for i, (wnid, name) in enumerate(imagenet1k_classes()):
      keys[wnid.lower()] = i
      keys.setdefault(name.lower(), i)
      keys.setdefault(name.lower().replace(" ", "_"), i)
  else:
    for i, name in enumerate(class_names(label_space)):
      keys[name] = i
  return keys
