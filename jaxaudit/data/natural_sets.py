"""Natural distribution-shift test sets as TFDS prepares them.

An entry of `config.shift.natural` is a TFDS name (with its config where it
has one) and optionally a split: `imagenet_v2`, `imagenet_r:test[:2000]`,
`imagenet2012_corrupted/gaussian_noise_3`, `cifar10_corrupted/fog_5`. The
known sets below give the split read by default and, for ImageNet-R and
ImageNet-A, the 200 ImageNet classes they hold: the model's prediction is
its best class among those (the authors' evaluation, which keeps the 200
logits of the 1000), so an ImageNet model is not charged for classes the set
never shows. Any other prepared TFDS image classification set reads too,
with split "test" by default.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re

import numpy as np

from jaxaudit import classes
from jaxaudit.errors import ConfigError

_CLASSES_FILE = ("jaxaudit.data", "natural_set_classes.json")


@dataclasses.dataclass(frozen=True)
class NaturalSet:
  """What jaxaudit knows of one natural shift set.

  Attributes:
    split: the split read unless the entry names one.
    subset: key of its class list in `natural_set_classes.json` (wnids),
      or "" when it holds every class of its label space.
  """
  split: str
  subset: str = ""


KNOWN = {
    "imagenet_v2": NaturalSet("test"),
    "imagenet_r": NaturalSet("test", "imagenet_r"),
    "imagenet_a": NaturalSet("test", "imagenet_a"),
    "imagenet2012_corrupted": NaturalSet("validation"),
    "cifar10_corrupted": NaturalSet("test"),
}
_ENTRY = re.compile(r"^([a-z0-9_]+)(/[A-Za-z0-9_.-]+)?(:.+)?$")


@dataclasses.dataclass(frozen=True)
class Entry:
  """One parsed `config.shift.natural` entry.

  Attributes:
    tfds_name: what `tfds.builder` takes (`name[/config]`).
    split: the split (slicing allowed).
    label: a short name for summaries and shard folders.
    known: the set's `NaturalSet`.
  """
  tfds_name: str
  split: str
  label: str
  known: NaturalSet


def parse(entries: str) -> tuple[Entry, ...]:
  """Comma-separated entries -> each parsed (ConfigError naming
  `config.shift.natural` when one is malformed)."""
  out = []
  for text in filter(None, (e.strip() for e in entries.split(","))):
    match = _ENTRY.match(text)
    if not match:
      raise ConfigError(f"config.shift.natural: '{text}' is not "
                        "name[/config][:split] (e.g. imagenet_r:test[:500])")
    name, config, split = match.groups()
    known = KNOWN.get(name, NaturalSet("test"))
    tfds_name = name + (config or "")
    label = re.sub(r"[^A-Za-z0-9_.-]", "_", tfds_name + (split or ""))
    out.append(Entry(tfds_name, split[1:] if split else known.split, label,
                     known))
  labels = [e.label for e in out]
  if len(set(labels)) != len(labels):
    raise ConfigError(f"config.shift.natural: an entry is given twice: "
                      f"{', '.join(labels)}")
  return tuple(out)


@functools.cache
def _class_lists() -> dict[str, list[str]]:
  with open(classes.package_data_path(*_CLASSES_FILE)) as f:
    return json.load(f)


def logit_mask(entry: Entry, labels: classes.LabelSpace) -> np.ndarray:
  """bool [K]: the model's classes the set can show (all for most sets).

  Raises:
    ConfigError: the set holds a class subset none of whose classes the
      model has.
  """
  if not entry.known.subset:
    return np.ones(len(labels.names), bool)
  wnids = _class_lists()[entry.known.subset]
  mask = np.zeros(len(labels.names), bool)
  found = labels.mapping_from(tuple(wnids))
  mask[found[found >= 0]] = True
  if not mask.any():
    raise ConfigError(f"config.shift.natural: {entry.tfds_name} holds 200 "
                      "ImageNet classes, none of them a class of the model "
                      f"({labels.kind})")
  return mask
