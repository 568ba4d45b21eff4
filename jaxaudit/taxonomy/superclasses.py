"""Superclasses of a label space: which classes a person would lump together.

Sources (`config.taxonomy.superclass`):
  "auto": imagenet-x's 100 metaclasses on ImageNet-1k, the shipped CIFAR-10
    groups (`cifar10_superclasses.json`) on CIFAR-10, none otherwise;
  "metaclass" / "wordnet" (the ancestor at `wordnet_depth`): ImageNet-1k only;
  "none";
  a .json path: {class: group} or {"groups": {class: group}}, classes named by
    name, wnid or index; classes it does not list are groups of their own.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from jaxaudit import classes
from jaxaudit import storage
from jaxaudit.errors import DataError, ParameterError
from jaxaudit.taxonomy import metaclass, wordnet

SOURCES = ("auto", "metaclass", "wordnet", "none")
CIFAR10_FILE = os.path.join(os.path.dirname(__file__),
                            "cifar10_superclasses.json")
NO_TAXONOMY = "no taxonomy for this label set"


@dataclasses.dataclass(frozen=True)
class Superclasses:
  """Attributes:
    groups: int [K] group of each class.
    names: the group names, by group index.
    about: where the groups come from (for reports).
  """
  groups: np.ndarray
  names: list[str]
  about: str


def _from_file(path: str, labels: classes.LabelSpace,
               about: str = "") -> Superclasses:
  if not storage.isfile(path):
    raise ParameterError("superclass", f"no such file: {path}")
  try:
    table = json.loads(storage.read_text(path))
  except (OSError, ValueError) as e:
    raise DataError(f"cannot read superclasses {path}: {e}") from e
  if isinstance(table, dict) and isinstance(table.get("groups"), dict):
    table = table["groups"]
  if not isinstance(table, dict) or not all(
      isinstance(v, (str, int)) for v in table.values()):
    raise DataError(f"{path} must map classes to group names")
  keys, class_names = labels.keys, labels.names
  names = sorted({str(v) for v in table.values()})
  num_classes = len(class_names)
  groups = np.arange(len(names), len(names) + num_classes)  # Unlisted: alone.
  for key, group in table.items():
    k = str(key).lower()
    index = int(k) if k.isdigit() else keys.get(k)
    if index is None or not 0 <= index < num_classes:
      raise DataError(f"{path}: unknown class '{key}'")
    groups[index] = names.index(str(group))
  return Superclasses(groups, names + [class_names[c] for c in range(
      num_classes)], about or f"groups from {os.path.basename(path)}")


def resolve(source: str, labels: classes.LabelSpace,
            wordnet_depth: int) -> Superclasses | None:
  """The superclasses `source` names for the job's label space, or None.

  Raises:
    ParameterError: ("superclass") unknown source, a missing file, or
      "metaclass"/"wordnet" on a label space other than ImageNet-1k.
    DataError: an unreadable or inconsistent superclass file.
  """
  if source.lower().endswith(".json"):
    return _from_file(storage.expand(source), labels)
  if source not in SOURCES:
    raise ParameterError("superclass", f"unknown '{source}'; valid: "
                         + ", ".join(SOURCES) + ", or a .json path")
  kind = labels.kind
  if source == "none" or (source == "auto" and kind == classes.CUSTOM):
    return None
  if source == "auto" and kind == classes.CIFAR10:
    return _from_file(CIFAR10_FILE, labels,
                      "CIFAR-10 groups by shared WordNet hypernym")
  if kind != classes.IMAGENET1K:
    raise ParameterError("superclass", f"'{source}' needs ImageNet-1k classes; "
                         f"this model's are {kind} (use auto, none or a .json "
                         "path)")
  if source == "wordnet":
    h = wordnet.load_hierarchy()
    groups = h.ancestor_groups(int(wordnet_depth))
    ancestors = sorted({h.ancestor(c, int(wordnet_depth))
                        for c in range(wordnet.NUM_CLASSES)})
    return Superclasses(groups, [h.name(w) for w in ancestors],
                        f"WordNet ancestor at depth {wordnet_depth}")
  ids, names = metaclass.imagenet_metaclasses()
  return Superclasses(ids, names, "imagenet-x 100 metaclasses")
