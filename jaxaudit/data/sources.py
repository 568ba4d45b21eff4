"""Where examples come from: a folder, an .npz, a TFDS dataset or the demo photos.

A source lists its examples (a name and an integer label, -1 when unknown) and
decodes any one of them on demand, so every process can read only its own slice
and process 0 can still fetch any image for the report.
"""

from __future__ import annotations

import json
import os
import re
from typing import Protocol, Sequence

import numpy as np

from jaxaudit import classes
from jaxaudit.data import decode
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.base import Preprocessing

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".gif", ".webp", ".tif",
                    ".tiff")
_WNID_PREFIX = re.compile(r"^(n\d{8})(?:[_.\-]|$)")


class Source(Protocol):
  """A random-access list of labelled images."""
  files: list[str]
  labels: np.ndarray  # int64 [N], -1 where unknown.

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    """Decodes example `index` into uint8 [S, S, 3]."""


class FolderSource:
  """Every image below a folder, in sorted path order.

  Labels come from ImageNet-style names (`<wnid>_<name>.JPEG`), or from the
  parent folder's name (a wnid or a class name of the model's label space).
  """

  def __init__(self, root: str, label_space: str):
    if not os.path.isdir(root):
      raise ConfigError(f"config.data.dir: no such folder: {root}")
    keys = classes.class_keys(label_space)
    self.root = root
    self.files, labels = [], []
    for folder, _, names in sorted(os.walk(root)):
      for name in sorted(names):
        if name.lower().endswith(IMAGE_EXTENSIONS):
          path = os.path.join(folder, name)
          self.files.append(os.path.relpath(path, root))
          labels.append(self._label(path, keys))
    if not self.files:
      raise DataError(f"config.data.dir: no images ({', '.join(IMAGE_EXTENSIONS)})"
                      f" under {root}")
    self.labels = np.asarray(labels, np.int64)

  def _label(self, path: str, keys: dict[str, int]) -> int:
    match = _WNID_PREFIX.match(os.path.basename(path))
    if match and match.group(1) in keys:
      return keys[match.group(1)]
    parent = os.path.basename(os.path.dirname(path)).lower()
    if os.path.dirname(path) != self.root.rstrip(os.sep):
      for key in (parent, parent.replace("_", " ")):
        if key in keys:
          return keys[key]
    return -1

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.decode_image(os.path.join(self.root, self.files[index]), prep)


class NpzSource:
  """An .npz with `images` uint8 [N, H, W, 3] and `labels` int [N]."""

  def __init__(self, path: str):
    if not os.path.isfile(path):
      raise ConfigError(f"config.data.npz: no such file: {path}")
    try:
      with np.load(path, allow_pickle=False) as npz:
        if "images" not in npz or "labels" not in npz:
          raise DataError(f"{path}: needs arrays 'images' and 'labels', has "
                          f"{sorted(npz.keys())}")
        self.images = npz["images"]
        self.labels = npz["labels"].astype(np.int64)
        files = npz["files"] if "files" in npz else None
    except (OSError, ValueError) as e:
      raise DataError(f"cannot read {path}: {e}") from e
    if (self.images.dtype != np.uint8 or self.images.ndim != 4
        or self.images.shape[-1] != 3):
      raise DataError(f"{path}: 'images' must be uint8 [N, H, W, 3], got "
                      f"{self.images.dtype} {self.images.shape}")
    if self.labels.shape != (len(self.images),):
      raise DataError(f"{path}: 'labels' must be [N={len(self.images)}], got "
                      f"{self.labels.shape}")
    if files is not None and len(files) == len(self.images):
      self.files = [str(f) for f in files]
    else:
      self.files = [f"{os.path.basename(path)}[{i}]"
                    for i in range(len(self.images))]

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.prepare_array(self.images[index], prep, self.files[index])


class TfdsSource:
  """A TFDS split read through `tfds.data_source` (no TensorFlow needed)."""

  def __init__(self, name: str, split: str, data_dir: str | None,
               image_key: str = "image", label_key: str = "label"):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      self._source = tfds.data_source(name, split=split, data_dir=data_dir or None)
    except Exception as e:  # TFDS raises many types for a missing dataset.
      raise ConfigError(f"config.data.tfds_name: cannot open '{name}' split "
                        f"'{split}': {e}") from e
    self._image_key = image_key
    self.files, labels = [], []
    for i in range(len(self._source)):
      record = self._source[i]
      self.files.append(str(record.get("file_name", f"{name}/{split}[{i}]")))
      labels.append(int(record.get(label_key, -1)))
    self.labels = np.asarray(labels, np.int64)

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.prepare_array(np.asarray(self._source[index][self._image_key]),
                                prep, self.files[index])

  def record(self, index: int) -> dict:
    """The raw TFDS record (for fields such as ReaL's `real_label`)."""
    return self._source[index]


_DEMO_LABELS = os.path.join(os.path.dirname(__file__), "demo_images.json")


class DemoSource:
  """Real photos shipped inside scikit-image, with labels the project ships."""

  def __init__(self):
    with open(_DEMO_LABELS) as f:
      self.spec = json.load(f)["images"]
    self.root = classes.package_data_path("skimage", "data")
    self.files = [item["file"] for item in self.spec]
    self.labels = np.asarray([item["label"] for item in self.spec], np.int64)

  def acceptable_labels(self) -> list[list[int]]:
    """Per image, every ImageNet class a person would accept."""
    return [list(item["acceptable"]) for item in self.spec]

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.decode_image(os.path.join(self.root, self.files[index]), prep)


def build_source(data_config, label_space: str) -> Source:
  """The source named by `config.data` (dir, npz or tfds_name; else the demo)."""
  chosen = [f for f in ("dir", "npz", "tfds_name") if data_config.get(f)]
  if len(chosen) > 1:
    raise ConfigError("config.data: set only one of dir, npz, tfds_name; got "
                      + ", ".join(chosen))
  if not chosen:
    return DemoSource()
  field = chosen[0]
  if field == "dir":
    return FolderSource(os.path.expanduser(data_config.dir), label_space)
  if field == "npz":
    return NpzSource(os.path.expanduser(data_config.npz))
  return TfdsSource(data_config.tfds_name, data_config.get("split", "validation"),
                    data_config.get("tfds_data_dir", ""))


def select(num_available: int, num_examples: int) -> Sequence[int]:
  """Indices of the first `num_examples` (0 = all) in the source's order."""
  if num_examples < 0:
    raise ConfigError(f"config.data.num_examples must be >= 0, got {num_examples}")
  return range(num_available if num_examples == 0
               else min(num_examples, num_available))
