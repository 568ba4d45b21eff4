"""A process's slice of the evaluated examples: what is known about each
example in memory, its image streamed.

Each process reads only its own even slice of the first `num_examples`
examples of the source: their labels and names when first used, their images
when a stage reads a batch (`images`, an `ImageColumn`). An example needed again
later (report galleries, adversarial replay, criticism's chosen images) is
decoded again by its global id (`fetch`), from whichever source holds it.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from absl import logging
import grain
import jax
import numpy as np

from jaxaudit import classes
from jaxaudit import sharding
from jaxaudit.data import sources
from jaxaudit.data.images import ImageColumn
from jaxaudit.errors import DataError
from jaxaudit.models.classifier import Preprocessing


@dataclasses.dataclass
class Dataset:
  """Process-local examples in a fixed global order.

  Labels and names are read from the source on first use (a TFDS source has
  them already from the records the first stage decoded), images when a
  stage reads a batch.

  Attributes:
    ids: int64 [n], each example's index in the selected global order (its
      source index); the key that joins records across stages, hosts and runs.
    num_selected: examples selected over all processes (before skipping).
    skipped: files of this process that could not be decoded (skip_bad=True).
    source: the source, to decode any example on demand.
    prep: the preprocessing applied.
    label_space: the job's label space.
    mapping: int64 [K_data] the source's own classes in the label space, or
      None when its labels index it already (`label_mapping`).
    threads: decoding threads.
  """
  ids: np.ndarray
  num_selected: int
  skipped: list[str]
  source: sources.Source
  prep: Preprocessing
  label_space: classes.LabelSpace
  mapping: np.ndarray | None = None
  threads: int = 1

  def __len__(self) -> int:
    return len(self.ids)

  @functools.cached_property
  def labels(self) -> np.ndarray:
    """int64 [n], indices of the job's label space, -1 where unknown.

    Raises:
      DataError: a label outside the label space, naming its example.
    """
    raw = np.asarray(self.source.labels_at(self.ids), np.int64)
    if self.mapping is not None:
      valid = (raw >= 0) & (raw < len(self.mapping))
      return np.where(valid, self.mapping[np.where(valid, raw, 0)], -1)
    bad = np.flatnonzero(raw >= len(self.label_space))
    if len(bad):
      raise DataError(f"{self.file_of(self.ids[bad[0]])}: label {raw[bad[0]]} "
                      f"is not a class of the model ({len(self.label_space)} "
                      "classes)")
    return np.where(raw >= 0, raw, -1)

  @functools.cached_property
  def files(self) -> np.ndarray:
    """object [n] source names (paths relative to the data folder, ...)."""
    return np.asarray(self.source.files_at(self.ids), dtype=object)

  @property
  def images(self) -> ImageColumn:
    """uint8 [n, S, S, 3], decoded batch by batch as the executor reads it."""
    return ImageColumn(self.source, self.ids, self.prep, self.threads)

  def fetch(self, ids: np.ndarray) -> np.ndarray:
    """Images uint8 [k, S, S, 3] of any examples, by global id."""
    return np.asarray(ImageColumn(self.source, np.asarray(ids, np.int64),
                                  self.prep, self.threads))

  def files_of(self, ids: np.ndarray) -> list[str]:
    """[k] names of any examples, by global id."""
    return self.source.files_at(np.asarray(ids, np.int64))

  def file_of(self, example_id: int) -> str:
    return self.files_of(np.asarray([example_id]))[0]


def label_mapping(source: sources.Source,
                  labels: classes.LabelSpace) -> np.ndarray | None:
  """int64 [K_data]: the source's own classes as indices of `labels` (None
  when the source's labels already index them).

  Raises:
    DataError: not one of the data's classes is a class of the model.
  """
  names = source.class_names
  if names is None or tuple(names) == labels.names:
    return None
  mapping = labels.mapping_from(names)
  unknown = [n for n, m in zip(names, mapping) if m < 0]
  if len(unknown) == len(names):
    raise DataError(f"config.data: none of the data's classes ({', '.join(names[:5])}"
                    f"...) is a class of the model ({', '.join(labels.names[:5])}"
                    "...)")
  if unknown:
    logging.warning("data classes the model does not have, left unlabelled: %s",
                    ", ".join(unknown[:20]))
  return mapping


def _decodable(source: sources.Source, indices: np.ndarray,
               prep: Preprocessing, threads: int) -> np.ndarray:
  """bool [k]: which of the examples decode (each read once, not kept)."""

  class Check:
    def __len__(self):
      return len(indices)

    def __getitem__(self, k):
      try:
        source.load(int(indices[k]), prep)
        return True
      except DataError as e:
        logging.warning("skipping %s", e)
        return False

  if not len(indices):
    return np.zeros(0, bool)
  options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=64)
  return np.fromiter(grain.MapDataset.source(Check()).to_iter_dataset(options),
                     bool, len(indices))


def build_dataset(data_config, source: sources.Source, prep: Preprocessing,
                  labels: classes.LabelSpace,
                  process_index: int | None = None,
                  process_count: int | None = None) -> Dataset:
  """This process's even slice of the first `num_examples` examples.

  Reads no record (labels and names are read on first use, of this
  process's examples only), and no image unless `skip_bad` is set (then each
  is decoded once, to find the bad ones).

  Args:
    data_config: `config.data` (num_examples, skip_bad, decode_threads).
    source: where the examples come from.
    prep: the model's preprocessing.
    labels: the job's label space.
    process_index / process_count: default to JAX's.

  Returns:
    The process-local `Dataset`.

  Raises:
    DataError: the data's classes and the model's share none.
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  selected = sources.select(len(source), int(data_config.num_examples))
  start, stop = sharding.process_slice(len(selected), process_index, process_count)
  local = np.asarray(selected[start:stop], np.int64)
  threads = int(data_config.get("decode_threads", 0)) or (os.cpu_count() or 1)
  mapping = label_mapping(source, labels)
  skipped = []
  if data_config.get("skip_bad", False):
    good = _decodable(source, local, prep, threads)
    skipped = source.files_at(local[~good])
    local = local[good]
  return Dataset(ids=local, num_selected=len(selected), skipped=skipped,
                 source=source, prep=prep, label_space=labels,
                 mapping=mapping, threads=threads)
