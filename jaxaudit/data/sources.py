"""Where examples come from: a folder, an .npz, a TFDS dataset, arrays in memory,
the demo photos or scikit-learn's digits.

A source lists its examples (a name and an integer label, -1 when unknown) and
decodes any one of them on demand, so every process can read only its own slice
and process 0 can still fetch any image for the report. A source whose labels
index its own list of classes says so in `class_names` (class subfolders, TFDS
label names, an .npz's `classes`); `align_labels` maps them onto the model's
classes, or lends them to a model that declares none.
"""

from __future__ import annotations

import json
import os
import re
from typing import Protocol, Sequence

from absl import logging
import numpy as np

from jaxaudit import classes
from jaxaudit.data import decode
from jaxaudit.data import digits
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import Preprocessing

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".gif", ".webp", ".tif",
                    ".tiff")
_WNID_PREFIX = re.compile(r"^(n\d{8})(?:[_.\-]|$)")


class Source(Protocol):
  """A random-access list of labelled images."""
  files: list[str]
  labels: np.ndarray  # int64 [N], -1 where unknown.
  class_names: tuple[str, ...] | None  # What `labels` index, if the data says.

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    """Decodes example `index` into uint8 [S, S, 3]."""


class FolderSource:
  """Every image below a folder, in sorted path order.

  With the model's class names, labels come from ImageNet-style file names
  (`<wnid>_<name>.JPEG`) or from the parent folder's name (a wnid or a class
  name). Without them, the first-level subfolders are the classes (sorted) and
  images directly in the folder are unlabelled.
  """

  def __init__(self, root: str, class_names: tuple[str, ...] | None):
    if not os.path.isdir(root):
      raise ConfigError(f"config.data.dir: no such folder: {root}")
    self.root = root
    self.files = []
    for folder, _, names in sorted(os.walk(root)):
      for name in sorted(names):
        if name.lower().endswith(IMAGE_EXTENSIONS):
          self.files.append(os.path.relpath(os.path.join(folder, name), root))
    if not self.files:
      raise DataError(f"config.data.dir: no images ({', '.join(IMAGE_EXTENSIONS)})"
                      f" under {root}")
    if class_names is None:
      tops = [f.split(os.sep)[0] if os.sep in f else None for f in self.files]
      self.class_names = tuple(sorted({t for t in tops if t is not None})) or None
      index = {name: k for k, name in enumerate(self.class_names or ())}
      self.labels = np.asarray([index.get(t, -1) for t in tops], np.int64)
    else:
      keys = classes.class_keys(tuple(class_names))
      self.class_names = None
      self.labels = np.asarray([self._label(f, keys) for f in self.files],
                               np.int64)

  @staticmethod
  def _label(file: str, keys: dict[str, int]) -> int:
    match = _WNID_PREFIX.match(os.path.basename(file))
    if match and match.group(1) in keys:
      return keys[match.group(1)]
    if os.sep in file:
      parent = os.path.basename(os.path.dirname(file)).lower()
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
        names = npz["classes"] if "classes" in npz else None
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
    self.class_names = (None if names is None or names.ndim != 1
                        else tuple(str(n) for n in names))

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.prepare_array(self.images[index], prep, self.files[index])


class ArraySource:
  """Images already in memory (the Python API): uint8 [N, H, W, 3] (or [N, H,
  W] grayscale) or float [N, H, W, 3] in [0, 1]."""

  def __init__(self, images, labels=None, files=None,
               class_names: tuple[str, ...] | None = None):
    images = np.asarray(images)
    if images.dtype.kind == "f":
      if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > 1):
        raise DataError("images: float images must be in [0, 1]")
      images = np.round(images * 255).astype(np.uint8)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (
        images.ndim == 4 and images.shape[-1] != 3):
      raise DataError(f"images: expected uint8 or [0, 1] float [N, H, W, 3], "
                      f"got {images.dtype} {images.shape}")
    self.images = images
    n = len(images)
    self.labels = (np.full(n, -1, np.int64) if labels is None
                   else np.asarray(labels).astype(np.int64))
    if self.labels.shape != (n,):
      raise DataError(f"labels: expected [{n}], got {self.labels.shape}")
    self.files = ([f"images[{i}]" for i in range(n)] if files is None
                  else [str(f) for f in files])
    if len(self.files) != n:
      raise DataError(f"files: expected {n} names, got {len(self.files)}")
    self.class_names = None if class_names is None else tuple(class_names)

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.prepare_array(self.images[index], prep, self.files[index])


class TfdsSource:
  """A TFDS split read through `tfds.data_source` (no TensorFlow needed)."""

  def __init__(self, name: str, split: str, data_dir: str | None,
               image_key: str = "image", label_key: str = "label"):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      self._source = tfds.data_source(name, split=split,
                                      data_dir=data_dir or None, download=False)
    except Exception as e:  # TFDS raises many types for a missing dataset.
      raise ConfigError(f"config.data.tfds_name: cannot open '{name}' split "
                        f"'{split}': {e}") from e
    self._image_key = image_key
    info = getattr(self._source, "dataset_info", None)
    feature = (info.features[label_key] if info is not None
               and label_key in info.features else None)
    self.class_names = (tuple(feature.names) if getattr(feature, "names", None)
                        else None)
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


class DigitsSource(ArraySource):
  """One split of scikit-learn's handwritten digits (`jaxaudit.data.digits`),
  16 x 16 RGB, classes "zero" ... "nine"."""

  def __init__(self, split: str):
    images, labels = digits.digit_images(split)
    super().__init__(images, labels,
                     [f"digits/{split}[{i}]" for i in range(len(images))],
                     digits.CLASS_NAMES)


_DEMO_LABELS = os.path.join(os.path.dirname(__file__), "demo_images.json")


class DemoSource:
  """Real photos shipped inside scikit-image, with labels the project ships."""

  def __init__(self):
    with open(_DEMO_LABELS) as f:
      self.spec = json.load(f)["images"]
    self.root = classes.package_data_path("skimage", "data")
    self.files = [item["file"] for item in self.spec]
    self.labels = np.asarray([item["label"] for item in self.spec], np.int64)
    self.class_names = classes.class_names(classes.IMAGENET1K)

  def acceptable_labels(self) -> list[list[int]]:
    """Per image, every ImageNet class a person would accept."""
    return [list(item["acceptable"]) for item in self.spec]

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.decode_image(os.path.join(self.root, self.files[index]), prep)


DATA_FIELDS = ("dir", "npz", "tfds_name", "builtin")


def build_source(data_config, class_names: tuple[str, ...] | None) -> Source:
  """The source named by `config.data` (dir, npz, tfds_name or builtin; else
  the demo photos).

  Args:
    data_config: `config.data`.
    class_names: the model's classes (None: the model declares none).
  """
  chosen = [f for f in DATA_FIELDS if data_config.get(f)]
  if len(chosen) > 1:
    raise ConfigError("config.data: set only one of " + ", ".join(DATA_FIELDS)
                      + "; got " + ", ".join(chosen))
  if not chosen:
    return DemoSource()
  field = chosen[0]
  if field == "builtin":
    if data_config.builtin != "digits":
      raise ConfigError(f"config.data.builtin: unknown '{data_config.builtin}';"
                        " valid: digits")
    return DigitsSource(data_config.get("split", "test"))
  if field == "dir":
    return FolderSource(os.path.expanduser(data_config.dir), class_names)
  if field == "npz":
    return NpzSource(os.path.expanduser(data_config.npz))
  return TfdsSource(data_config.tfds_name, data_config.get("split", "validation"),
                    data_config.get("tfds_data_dir", ""))


def align_labels(source: Source, model_names: tuple[str, ...]) -> None:
  """Makes `source.labels` index `model_names` (in place).

  A source whose labels index its own class list is mapped by name (case and
  `_`/space insensitive); data classes the model lacks become unlabelled (-1),
  with a warning; none in common is an error.

  Raises:
    DataError: not one of the data's classes is a class of the model.
  """
  names = source.class_names
  if names is None or tuple(names) == tuple(model_names):
    source.class_names = tuple(model_names)
    return
  keys = classes.class_keys(tuple(model_names))
  mapping = np.asarray([keys.get(n.lower(), keys.get(n.lower().replace(
      "_", " "), -1)) for n in names] + [-1], np.int64)
  unknown = [n for n, m in zip(names, mapping) if m < 0]
  if len(unknown) == len(names):
    raise DataError(f"config.data: none of the data's classes ({', '.join(names[:5])}"
                    f"...) is a class of the model ({', '.join(model_names[:5])}"
                    "...)")
  if unknown:
    logging.warning("data classes the model does not have, left unlabelled: %s",
                    ", ".join(unknown[:20]))
  labels = np.asarray(source.labels)
  valid = (labels >= 0) & (labels < len(names))
  source.labels = np.where(valid, mapping[np.where(valid, labels, -1)], -1)
  source.class_names = tuple(model_names)


def select(num_available: int, num_examples: int) -> Sequence[int]:
  """Indices of the first `num_examples` (0 = all) in the source's order."""
  if num_examples < 0:
    raise ConfigError(f"config.data.num_examples must be >= 0, got {num_examples}")
  return range(num_available if num_examples == 0
               else min(num_examples, num_available))
