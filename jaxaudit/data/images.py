"""Images of a dataset's examples as a column that decodes only what is read.

Stages hand an `ImageColumn` to the executor like any per-example input; the
executor slices it into shards and batches without decoding anything, then
reads each batch through `batches`, a grain pipeline: `num_threads` threads
decode examples ahead of the consumer into a prefetch buffer of two batches,
so the host prepares batch k + 1 while the devices compute batch k. No image
is kept after its batch is consumed: host memory depends on the batch size,
not on the dataset.
"""

from __future__ import annotations

from typing import Iterator

import grain
import numpy as np

from jaxaudit.models.classifier import Preprocessing


class _Decoded:
  """grain's random-access source protocol over some examples of a source:
  element k is example `indices[k]` decoded into uint8 [S, S, 3]."""

  def __init__(self, source, indices: np.ndarray, prep: Preprocessing):
    self._source, self._indices, self._prep = source, indices, prep

  def __len__(self) -> int:
    return len(self._indices)

  def __getitem__(self, k: int) -> np.ndarray:
    return self._source.load(int(self._indices[k]), self._prep)


class ImageColumn:
  """uint8 [n, S, S, 3]: the images of examples `indices` of a source.

  Slicing (`column[lo:hi]`, `column[positions]`) gives another column and
  decodes nothing; `batches` streams decoded rows; `np.asarray(column)`
  decodes every row (for a handful of examples only).
  """

  def __init__(self, source, indices: np.ndarray, prep: Preprocessing,
               threads: int):
    """Args:
      source: a `jaxaudit.data.sources.Source`.
      indices: int64 [n] the examples (source indices = global ids).
      prep: the model's preprocessing.
      threads: decoding threads (>= 1).
    """
    self._source = source
    self._indices = np.asarray(indices, np.int64).reshape(-1)
    self._prep = prep
    self._threads = max(1, int(threads))
    size = prep.image_size
    self.shape = (len(self._indices), size, size, 3)
    self.dtype = np.dtype(np.uint8)

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, rows: slice | np.ndarray) -> "ImageColumn":
    return ImageColumn(self._source, self._indices[rows], self._prep,
                       self._threads)

  def batches(self, rows: int) -> Iterator[np.ndarray]:
    """Consecutive decoded batches uint8 [<= rows, S, S, 3], in order.

    Raises:
      DataError: an image cannot be decoded (from the source, naming it).
    """
    if not len(self):
      return
    dataset = grain.MapDataset.source(
        _Decoded(self._source, self._indices, self._prep))
    options = grain.ReadOptions(num_threads=self._threads,
                                prefetch_buffer_size=2 * rows)
    yield from dataset.to_iter_dataset(options).batch(rows)

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    del copy
    if not len(self):
      out = np.zeros(self.shape, np.uint8)
    else:
      out = np.concatenate(list(self.batches(len(self))))
    return out if dtype is None else out.astype(dtype)
