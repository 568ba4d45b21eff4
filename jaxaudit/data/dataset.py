"""A process's slice of the evaluated examples, decoded once and kept in memory."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os

from absl import logging
import jax
import numpy as np

from jaxaudit import sharding
from jaxaudit.data import sources
from jaxaudit.errors import DataError
from jaxaudit.models.classifier import Preprocessing


@dataclasses.dataclass
class Dataset:
  """Process-local examples in a fixed global order.

  Attributes:
    images: uint8 [n, S, S, 3], preprocessed for the model.
    labels: int64 [n], -1 where unknown.
    ids: int64 [n], each example's index in the selected global order; the key
      that joins records across stages, hosts and runs.
    files: [n] source names (paths relative to the data folder, ...).
    num_selected: examples selected over all processes (before skipping).
    skipped: files of this process that could not be decoded (skip_bad=True).
    source: the source, to decode any example on demand (report galleries).
    prep: the preprocessing applied.
  """
  images: np.ndarray
  labels: np.ndarray
  ids: np.ndarray
  files: np.ndarray
  num_selected: int
  skipped: list[str]
  source: sources.Source
  prep: Preprocessing

  def __len__(self) -> int:
    return len(self.ids)

  def fetch(self, ids: np.ndarray) -> np.ndarray:
    """Images uint8 [k, S, S, 3] for global ids, decoded here if not local."""
    position = {int(i): p for p, i in enumerate(self.ids)}
    out = []
    for i in np.asarray(ids).tolist():
      if i in position:
        out.append(self.images[position[i]])
      else:
        out.append(self.source.load(int(i), self.prep))
    if not out:
      return np.zeros((0, self.prep.image_size, self.prep.image_size, 3), np.uint8)
    return np.stack(out)

  def file_of(self, example_id: int) -> str:
    return self.source.files[int(example_id)]


def build_dataset(data_config, source: sources.Source, prep: Preprocessing,
                  process_index: int | None = None,
                  process_count: int | None = None) -> Dataset:
  """Decodes this process's even slice of the first `num_examples` examples.

  Args:
    data_config: `config.data` (num_examples, skip_bad, decode_threads).
    source: where the examples come from.
    prep: the model's preprocessing.
    process_index / process_count: default to JAX's.

  Returns:
    The process-local `Dataset`.

  Raises:
    DataError: an image cannot be decoded and `skip_bad` is False.
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  selected = sources.select(len(source.files), int(data_config.num_examples))
  start, stop = sharding.process_slice(len(selected), process_index, process_count)
  local = list(selected[start:stop])
  threads = int(data_config.get("decode_threads", 0)) or (os.cpu_count() or 1)

  def load(i):
    try:
      return source.load(i, prep)
    except DataError as e:
      if not data_config.get("skip_bad", False):
        raise
      logging.warning("skipping %s", e)
      return None

  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    decoded = list(pool.map(load, local))
  keep = [k for k, image in enumerate(decoded) if image is not None]
  size = prep.image_size
  images = (np.stack([decoded[k] for k in keep]) if keep
            else np.zeros((0, size, size, 3), np.uint8))
  ids = np.asarray([local[k] for k in keep], np.int64)
  return Dataset(
      images=images,
      labels=np.asarray(source.labels)[ids] if len(ids) else np.zeros(0, np.int64),
      ids=ids,
      files=np.asarray([source.files[i] for i in ids], dtype=object),
      num_selected=len(selected),
      skipped=[source.files[local[k]] for k, image in enumerate(decoded)
               if image is None],
      source=source,
      prep=prep)
