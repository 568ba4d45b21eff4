"""A prepared TFDS split, read one process's examples at a time.

`TfdsSource` opens the split through TFDS's random-access data source
(ArrayRecord or Parquet, no TensorFlow) and reads a record only when asked for
it: its length and class names come from the dataset's metadata, so building
it reads no record, and each process reads and decodes only the indices it is
given. Images stay encoded (`tfds.decode.SkipDecoding`) until `load`, which
decodes one with PIL (JPEG draft mode: libjpeg decodes near the target size).

A dataset prepared as TFRecord has no random access without TensorFlow; it is
refused from its metadata, before any record is read, with the
`tfds convert_format` command that adds an ArrayRecord copy in place.
"""

from __future__ import annotations

import os
import shlex
from typing import TYPE_CHECKING

from google.protobuf import message
import numpy as np

from jaxaudit import storage
from jaxaudit.data import decode
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import Preprocessing

if TYPE_CHECKING:
  import tensorflow_datasets as tfds  # pylint: disable=g-bad-import-order

FILE_NAME_KEY = "file_name"
# Records read at once for labels and names: their image bytes are dropped
# after each chunk, so reading metadata holds ~_CHUNK encoded images at most.
_CHUNK = 256


def convert_command(dataset_version_dir: str) -> str:
  """The shell command that adds ArrayRecord files beside a dataset's TFRecord
  ones and lists them in its dataset_info.json (TFDS 4.9's CLI, which needs
  TensorFlow, apache-beam and mlcroissant installed).

  Args:
    dataset_version_dir: the prepared folder, `<data_dir>/<name>[/<config>]/
      <version>`.
  """
  return ("tfds convert_format --dataset_version_dir="
          f"{shlex.quote(dataset_version_dir)} --out_file_format=array_record")


class TfdsSource:
  """One split of a prepared TFDS dataset, each record read only on request.

  Attributes:
    class_names: the label feature's names (a `ClassLabel`), else None.
    data_dir: the prepared folder read,
      `<data_dir>/<name>[/<config>]/<version>`.
  """

  def __init__(self, name: str, split: str, data_dir: str | None,
               image_key: str = "image", label_key: str = "label",
               fields: tuple[str, str, str] = (
                   "config.data.tfds_name", "config.data.split",
                   "config.data.tfds_data_dir")):
    """Opens the split from its metadata; reads no record.

    Args:
      name: the dataset, as `tfds.builder` takes it (`name[/config][:version]`).
      split: a split of it, slicing allowed (`validation`, `test[:1000]`).
      data_dir: the TFDS data_dir root (None or "": TFDS's default).
      image_key: the feature holding the image.
      label_key: the feature holding the integer label.
      fields: the config fields that named the dataset, its split and its
        data_dir, for the errors.

    Raises:
      ConfigError: no such prepared dataset (naming the dataset's field),
        no such split (the split's field), no such image feature, or a
        dataset prepared only as TFRecord (with the command that converts it).
    """
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    self._name = name
    self._split = split
    self._image_key = image_key
    self._label_key = label_key
    name_field, split_field, dir_field = fields
    builder = _prepared_builder(
        name, storage.expand(data_dir) if data_dir else None, name_field,
        dir_field)
    self.data_dir = os.fspath(builder.data_dir)
    if "://" not in self.data_dir:  # A local folder: absolute, for commands.
      self.data_dir = os.path.abspath(self.data_dir)
    info = builder.info
    formats = info.available_file_formats()
    if not formats & tfds.core.FileFormat.with_random_access():
      kinds = ", ".join(sorted(f.value for f in formats))
      raise ConfigError(
          f"{name_field}: '{name}' at {self.data_dir} is prepared as "
          f"{kinds}, which TFDS reads only through TensorFlow. Add an "
          "ArrayRecord copy beside it, once, where `pip install tensorflow "
          f"apache-beam mlcroissant` is done (the tfds CLI needs them):\n"
          f"  {convert_command(self.data_dir)}")
    features = info.features
    if image_key not in features:
      raise ConfigError(f"{name_field}: '{name}' has no image feature "
                        f"'{image_key}'; its features: {', '.join(features)}")
    self._has_label = label_key in features
    self._has_file_name = FILE_NAME_KEY in features
    names = (getattr(features[label_key], "names", None) if self._has_label
             else None)
    self.class_names = tuple(names) if names else None
    try:
      self._source = builder.as_data_source(
          split=split, decoders={image_key: tfds.decode.SkipDecoding()})
    except (ValueError, KeyError) as e:
      raise ConfigError(f"{split_field}: '{name}' has no split '{split}' "
                        f"(splits: {', '.join(info.splits)}): {e}") from e
    self._seen: dict[int, tuple[int, str]] = {}

  def __len__(self) -> int:
    """Examples in the split, from the metadata."""
    return len(self._source)

  def labels_at(self, indices: np.ndarray) -> np.ndarray:
    """int64 [k] labels of examples `indices` [k], -1 where unknown.

    Reads only those records not read before.
    """
    indices = self._remember(indices)
    return np.asarray([self._seen[i][0] for i in indices], np.int64)

  def files_at(self, indices: np.ndarray) -> list[str]:
    """[k] names of examples `indices` [k]: the `file_name` feature, else
    `<name>/<split>[<index>]`. Reads only those records not read before."""
    return [self._seen[i][1] for i in self._remember(indices)]

  def load(self, index: int, prep: Preprocessing) -> np.ndarray:
    """Reads and decodes example `index`.

    Returns:
      uint8 [prep.image_size, prep.image_size, 3].

    Raises:
      DataError: the record or its image cannot be read, naming the example.
    """
    index = self._check([index])[0]
    record = self._read([index])[0]
    label_and_file = self._label_and_file(index, record)
    self._seen[index] = label_and_file
    image = record[self._image_key]
    if isinstance(image, bytes):
      return decode.decode_image(image, prep, label_and_file[1])
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
      image = image[..., 0]
    return decode.prepare_array(image, prep, label_and_file[1])

  def record(self, index: int) -> dict:
    """The raw TFDS record of example `index` (fields such as ReaL's
    `real_label`), its image still encoded bytes."""
    return self._read(self._check([index]))[0]

  def _check(self, indices: np.ndarray) -> list[int]:
    """`indices` as Python ints, each in [0, len)."""
    flat = [int(i) for i in np.asarray(indices, np.int64).reshape(-1)]
    bad = [i for i in flat if not 0 <= i < len(self._source)]
    if bad:
      raise IndexError(f"{self._name}/{self._split}: indices {bad[:5]} outside "
                       f"[0, {len(self._source)})")
    return flat

  def _read(self, indices: list[int]) -> list[dict]:
    """The records at `indices` (images still bytes): one record by itself,
    as `__getitems__` starts a thread pool per call (~2 ms), several in one
    batched read."""
    try:
      if len(indices) == 1:
        return [self._source[indices[0]]]
      return list(self._source.__getitems__(indices))
    except (OSError, ValueError, RuntimeError, message.DecodeError) as e:
      raise DataError(f"cannot read {self._name}/{self._split} records "
                      f"{indices[:5]}... from {self.data_dir}: {e}") from e

  def _remember(self, indices: np.ndarray) -> list[int]:
    """Checks `indices`, reads the label and name of those not seen yet
    (`_CHUNK` records at a time: only their labels and names are kept)."""
    flat = self._check(indices)
    missing = sorted({i for i in flat if i not in self._seen})
    for start in range(0, len(missing), _CHUNK):
      chunk = missing[start:start + _CHUNK]
      for i, record in zip(chunk, self._read(chunk)):
        self._seen[i] = self._label_and_file(i, record)
    return flat

  def _label_and_file(self, index: int, record: dict) -> tuple[int, str]:
    """(label, -1 when none; name) of the record of example `index`."""
    label = int(record[self._label_key]) if self._has_label else -1
    if self._has_file_name:
      name = record[FILE_NAME_KEY]
      if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
      name = str(name)
    else:
      name = f"{self._name}/{self._split}[{index}]"
    return label, name


def _prepared_builder(name: str, data_dir: str | None, field: str,
                      dir_field: str) -> tfds.core.DatasetBuilder:
  """TFDS's builder of `name`, its metadata read from `data_dir` (no record).

  Raises:
    ConfigError: `name` is unknown or not prepared there, with the command
      that prepares it.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top,redefined-outer-name
  from tensorflow_datasets.core import constants  # pylint: disable=g-import-not-at-top
  root = data_dir or constants.get_default_data_dir()
  hint = (f"prepare it with `tfds build {shlex.quote(name)} "
          f"--data_dir={shlex.quote(root)}`, or set {dir_field} "
          "to the data_dir that holds it")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise ConfigError(f"{field}: no TFDS dataset '{name}' under "
                      f"{root} ({str(e).splitlines()[0]}); {hint}") from e
  except ValueError as e:  # A malformed name, config or version.
    raise ConfigError(f"{field}: '{name}': "
                      f"{str(e).splitlines()[0]}") from e
  if not builder.is_prepared():
    raise ConfigError(f"{field}: '{name}' is not prepared in "
                      f"{builder.data_dir}; {hint}")
  return builder
