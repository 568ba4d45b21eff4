"""Resumable per-example work: finished shards are kept and never recomputed.

A computation (`jaxaudit.executor.Executor.run`) is cut into shards of
`config.resume.shard_size` process-local examples. A finished shard is a folder
`shard-<k>-p<process>/` holding one `.npy` file per output (plus `__ids__.npy`),
each written atomically, and is committed by listing it in the process's
manifest, which is written last: a job killed at any point finds on restart
exactly the committed shards, none lost, recomputed or counted twice, without
relying on folders being renamed atomically. A shard is reused only when every
process has it, so all processes keep running the same collective steps.
Outputs are read back memory-mapped (`ShardedArray`), so large ones (adversarial
images, attribution maps) are never all in memory.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from jaxaudit import files

MANIFEST = "manifest-p{:05d}.json"
_IDS = "__ids__"


class ShardedArray:
  """A process-local per-example array stored as shard files, read lazily.

  Supports what batching needs: `len`, `shape`, `dtype` and slicing rows
  (`array[lo:hi]`), each slice read from the memory-mapped shards.
  """

  def __init__(self, parts: list[tuple[int, int, str]], shape: tuple[int, ...],
               dtype: np.dtype):
    """Args: parts: (first row, end row, .npy path) in row order; shape: the
    whole array's; dtype: its element type."""
    self.parts = parts
    self.shape = tuple(shape)
    self.dtype = np.dtype(dtype)

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, rows: slice) -> np.ndarray:
    if not isinstance(rows, slice) or rows.step not in (None, 1):
      raise TypeError("ShardedArray supports contiguous row slices only")
    lo, hi, _ = rows.indices(self.shape[0])
    out = [np.load(path, mmap_mode="r")[max(lo, a) - a:min(hi, b) - a]
           for a, b, path in self.parts if a < hi and b > lo]
    if not out:
      return np.zeros((0,) + self.shape[1:], self.dtype)
    return np.concatenate(out).astype(self.dtype, copy=False)

  def read(self) -> np.ndarray:
    """All rows in memory (for small outputs)."""
    return self[:]


class ShardStore:
  """One process's committed shards of one computation, under `root`."""

  def __init__(self, root: str, process_index: int, reuse: bool = True):
    """Args:
      root: the computation's folder.
      process_index: this process (names its shards and manifest).
      reuse: False forgets every committed shard (resume off).
    """
    self.root = root
    self.process_index = process_index
    self.manifest_path = os.path.join(root, MANIFEST.format(process_index))
    self.finished: dict[str, str] = {}
    if reuse and os.path.isfile(self.manifest_path):
      with open(self.manifest_path) as f:
        self.finished = json.load(f)["shards"]

  def _folder(self, shard: int) -> str:
    return os.path.join(self.root, self.finished[str(shard)])

  def has(self, shard: int, ids: np.ndarray) -> bool:
    """True if the shard is committed and holds exactly these ids."""
    if str(shard) not in self.finished:
      return False
    path = os.path.join(self._folder(shard), f"{_IDS}.npy")
    return os.path.isfile(path) and np.array_equal(
        np.load(path, allow_pickle=False), ids)

  def load(self, shard: int) -> dict[str, str]:
    """{output name: .npy path} of a committed shard."""
    folder = self._folder(shard)
    return {name[:-len(".npy")]: os.path.join(folder, name)
            for name in sorted(os.listdir(folder))
            if name.endswith(".npy") and name != f"{_IDS}.npy"}

  def save(self, shard: int, ids: np.ndarray,
           arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Writes and commits a shard; returns {output name: .npy path}."""
    name = f"shard-{shard:05d}-p{self.process_index:05d}"
    folder = os.path.join(self.root, name)
    if os.path.isdir(folder):  # A stale, uncommitted attempt.
      shutil.rmtree(folder)
    paths = {}
    for key, value in arrays.items():
      paths[key] = os.path.join(folder, f"{key}.npy")
      files.write_npy(paths[key], value)
    files.write_npy(os.path.join(folder, f"{_IDS}.npy"), ids)
    self.finished[str(shard)] = name
    files.write_json(self.manifest_path, {"shards": self.finished})
    return paths
