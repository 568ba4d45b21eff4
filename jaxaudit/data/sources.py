"""Where examples come from: a folder, an .npz, a TFDS dataset, arrays in memory,
the demo photos or scikit-learn's digits.

A source is random access: it knows how many examples it has without reading
them, and reads only the examples asked for: their labels (`labels_at`), names
(`files_at`) and decoded images (`load`). So each process reads only its own
slice (`jaxaudit.data.dataset`), and process 0 can still fetch any image by id
for the report. A source whose labels index its own list of classes says so in
`class_names` (class subfolders, TFDS label names, an .npz's `classes`); the
dataset maps them onto the job's label space by name, never changing the
source.
"""

from __future__ import annotations

import json
import os
import re
import struct
from typing import Any, Protocol, Sequence
import zipfile

from absl import logging
import numpy as np

from jaxaudit import classes
from jaxaudit import resume
from jaxaudit import storage
from jaxaudit.data import decode
from jaxaudit.data import digits
from jaxaudit.data.tfds_source import TfdsSource
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import Preprocessing

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".gif", ".webp", ".tif",
                    ".tiff")
_WNID_PREFIX = re.compile(r"^(n\d{8})(?:[_.\-]|$)")


class Source(Protocol):
  """A random-access list of labelled images."""
  class_names: tuple[str, ...] | None  # What labels index, if the data says.

  def __len__(self) -> int:
    """Examples in the source (read from metadata, not from the records)."""

  def labels_at(self, indices: np.ndarray) -> np.ndarray:
    """int64 [k] labels of examples `indices` [k], -1 where unknown."""

  def files_at(self, indices: np.ndarray) -> list[str]:
    """[k] names of examples `indices` (paths relative to the data, ...)."""

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    """Decodes example `index` into uint8 [S, S, 3]."""


class _Listed:
  """A source whose names and labels are lists in memory."""
  files: list[str]
  labels: np.ndarray  # int64 [N]

  def __len__(self) -> int:
    return len(self.files)

  def labels_at(self, indices: np.ndarray) -> np.ndarray:
    return np.asarray(self.labels, np.int64)[np.asarray(indices, np.int64)]

  def files_at(self, indices: np.ndarray) -> list[str]:
    return [self.files[int(i)] for i in np.asarray(indices).reshape(-1)]


class FolderSource(_Listed):
  """Every image below a folder, in sorted path order.

  With the job's label space, labels come from ImageNet-style file names
  (`<wnid>_<name>.JPEG`) or from the parent folder's name (a wnid or a class
  name). Without one (a model that declares no classes), the first-level
  subfolders are the classes (sorted) and images directly in the folder are
  unlabelled. Listing the folder reads no image.
  """

  def __init__(self, root: str, labels: classes.LabelSpace | None):
    if not storage.isdir(root):
      raise ConfigError(f"config.data.dir: no such folder: {root}")
    self.root = root
    found = []  # (folder, name): sorted by folder path, then name.
    for folder, _, names in storage.walk(root):
      for name in names:
        if name.lower().endswith(IMAGE_EXTENSIONS):
          found.append((folder, name))
    self.files = [storage.relpath(storage.join(folder, name), root).replace(
        os.sep, "/") for folder, name in sorted(found)]
    if not self.files:
      raise DataError(f"config.data.dir: no images ({', '.join(IMAGE_EXTENSIONS)})"
                      f" under {root}")
    if labels is None:
      tops = [f.split("/")[0] if "/" in f else None for f in self.files]
      self.class_names = tuple(sorted({t for t in tops if t is not None})) or None
      index = {name: k for k, name in enumerate(self.class_names or ())}
      self.labels = np.asarray([index.get(t, -1) for t in tops], np.int64)
    else:
      self.class_names = None
      self.labels = np.asarray([self._label(f, labels) for f in self.files],
                               np.int64)

  @staticmethod
  def _label(file: str, labels: classes.LabelSpace) -> int:
    match = _WNID_PREFIX.match(os.path.basename(file))
    if match and match.group(1) in labels.keys:
      return labels.keys[match.group(1)]
    if "/" in file:
      return labels.index_of(file.split("/")[-2])
    return -1

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    path = storage.join(self.root, self.files[index])
    if storage.is_local(path):
      return decode.decode_image(storage.local_path(path), prep)
    try:
      data = storage.read_bytes(path)
    except OSError as e:
      raise DataError(f"cannot read image {path}: {e}") from e
    return decode.decode_image(data, prep, path)


def _npz_arrays(path: str) -> dict[str, Any]:
  """The arrays of an .npz, read lazily where stored uncompressed
  (`np.savez`): memory-mapped on a local disk, rows by range reads elsewhere
  (`resume.RemoteNpy`), so only the rows read are ever loaded; a compressed
  member (`np.savez_compressed`) is read whole."""
  out = {}
  local = storage.is_local(path)
  with storage.open(path, "rb") as f, zipfile.ZipFile(f) as archive:
    for info in archive.infolist():
      if not info.filename.endswith(".npy"):
        continue
      name = info.filename[:-len(".npy")]
      if info.compress_type != zipfile.ZIP_STORED:
        logging.warning("%s: '%s' is compressed and is read whole (save with "
                        "np.savez to read it memory-mapped)", path, name)
        with archive.open(info) as member:
          out[name] = np.lib.format.read_array(member, allow_pickle=False)
        continue
      f.seek(info.header_offset + 26)
      name_length, extra_length = struct.unpack("<HH", f.read(4))
      start = info.header_offset + 30 + name_length + extra_length
      if not local:
        out[name] = resume.RemoteNpy(path, start)
        continue
      f.seek(start)
      version = np.lib.format.read_magic(f)
      read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                     else np.lib.format.read_array_header_2_0)
      shape, fortran, dtype = read_header(f)
      if dtype.hasobject:
        raise DataError(f"{path}: '{name}' holds Python objects (not read)")
      out[name] = np.memmap(storage.local_path(path), dtype, "r", f.tell(),
                            shape, "F" if fortran else "C") if np.prod(
                                shape) else np.zeros(shape, dtype)
  return out


class NpzSource(_Listed):
  """An .npz with `images` uint8 [N, H, W, 3] and `labels` int [N] (optional
  `files` [N] and `classes` [K]), memory-mapped: only the examples read are
  loaded."""

  def __init__(self, path: str):
    if not storage.isfile(path):
      raise ConfigError(f"config.data.npz: no such file: {path}")
    try:
      arrays = _npz_arrays(path)
    except (OSError, ValueError, zipfile.BadZipFile, struct.error) as e:
      raise DataError(f"cannot read {path}: {e}") from e
    if "images" not in arrays or "labels" not in arrays:
      raise DataError(f"{path}: needs arrays 'images' and 'labels', has "
                      f"{sorted(arrays)}")
    self.images = arrays["images"]
    shape = tuple(self.images.shape)
    if self.images.dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
      raise DataError(f"{path}: 'images' must be uint8 [N, H, W, 3], got "
                      f"{self.images.dtype} {shape}")
    labels = arrays["labels"]
    if tuple(labels.shape) != shape[:1] or labels.dtype.kind not in "iu":
      raise DataError(f"{path}: 'labels' must be int [N={shape[0]}], got "
                      f"{labels.dtype} {tuple(labels.shape)}")
    # Labels are read whole where reading them row by row would cost a
    # request each (a remote file); a local one stays memory-mapped.
    self.labels = labels[:] if isinstance(labels, resume.RemoteNpy) else labels
    files, names = arrays.get("files"), arrays.get("classes")
    self._path = path
    self._files = (files if files is not None
                   and tuple(files.shape) == shape[:1] else None)
    self.class_names = (None if names is None or len(names.shape) != 1
                        else tuple(str(n) for n in names[:]))

  def __len__(self) -> int:
    return len(self.images)

  def files_at(self, indices: np.ndarray) -> list[str]:
    indices = np.asarray(indices, np.int64).reshape(-1)
    if self._files is not None:
      return [str(self._files[i:i + 1][0]) for i in indices]
    return [f"{os.path.basename(self._path)}[{i}]" for i in indices]

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    return decode.prepare_array(np.asarray(self.images[index:index + 1][0]),
                                prep, self.files_at([index])[0])


class ArraySource(_Listed):
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


class DigitsSource(ArraySource):
  """One split of scikit-learn's handwritten digits (`jaxaudit.data.digits`),
  16 x 16 RGB, classes "zero" ... "nine"."""

  def __init__(self, split: str):
    images, labels = digits.digit_images(split)
    super().__init__(images, labels,
                     [f"digits/{split}[{i}]" for i in range(len(images))],
                     digits.CLASS_NAMES)


_DEMO_LABELS = os.path.join(os.path.dirname(__file__), "demo_images.json")


class DemoSource(_Listed):
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


def build_source(data_config, labels: classes.LabelSpace | None) -> Source:
  """The source named by `config.data` (dir, npz, tfds_name or builtin; else
  the demo photos).

  Args:
    data_config: `config.data`.
    labels: the model's label space (None: the model declares no classes).
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
    return FolderSource(storage.expand(data_config.dir), labels)
  if field == "npz":
    return NpzSource(storage.expand(data_config.npz))
  return TfdsSource(data_config.tfds_name, data_config.get("split", "validation"),
                    data_config.get("tfds_data_dir", ""))


def select(num_available: int, num_examples: int) -> Sequence[int]:
  """Indices of the first `num_examples` (0 = all) in the source's order."""
  if num_examples < 0:
    raise ConfigError(f"config.data.num_examples must be >= 0, got {num_examples}")
  return range(num_available if num_examples == 0
               else min(num_examples, num_available))
