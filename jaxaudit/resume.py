"""Resumable per-example work: finished shards are kept and never recomputed.

A computation (`jaxaudit.executor.Executor.run`) is cut into shards of
`config.resume.shard_size` process-local examples. A finished shard is a folder
`shard-<k>-p<process>/` holding one `.npy` file per output (plus `__ids__.npy`),
each written whole (`jaxaudit.files`), and is committed by listing it in the
process's manifest, which is written last: a job killed at any point finds on
restart exactly the committed shards, none lost, recomputed or counted twice.
A shard is reused only when every process has it, so all processes keep
running the same collective steps.

Commit needs no atomic rename, so a workdir on an object store (gs://, s3://,
any fsspec URL; `jaxaudit.storage`), where renaming is copy-then-delete,
resumes like a local one. The manifest is one small file rewritten whole at
each commit (one object upload there: the old or the new list, never half), and
it is the only commit point: a shard folder it does not list, e.g. the data of
a job killed between a shard's files and its manifest, is ignored, deleted and
recomputed on restart.

Outputs are read back lazily (`ShardedArray`, `open_npy`), so large ones
(adversarial images, attribution maps) are never all in memory: memory-mapped
on a local disk, and on a remote file system, which cannot be memory-mapped,
by byte-range reads of the rows asked for.
"""

from __future__ import annotations

import json
import math

import numpy as np

from jaxaudit import files
from jaxaudit import storage

MANIFEST = "manifest-p{:05d}.json"
_IDS = "__ids__"


def _rows(rows: slice, n: int, kind: str) -> tuple[int, int]:
  """(lo, hi) of a contiguous row slice of an n-row array."""
  if not isinstance(rows, slice) or rows.step not in (None, 1):
    raise TypeError(f"{kind} supports contiguous row slices only")
  lo, hi, _ = rows.indices(n)
  return lo, max(lo, hi)


class RemoteNpy:
  """A remote .npy file (as `files.write_npy` writes it), rows read on request.

  Attributes:
    path: the file's URL.
    shape: the array's shape [n, ...].
    dtype: its element type.
  """

  def __init__(self, path: str, start: int = 0):
    """Reads the header only. Raises ValueError for a file `write_npy` could
    not have written (Fortran order, object dtype, format version 3).

    Args:
      path: the file's URL.
      start: where the .npy data begins in it (a member of an uncompressed
        .npz lies inside the archive).
    """
    self.path = path
    with storage.open(path, "rb") as f:
      f.seek(start)
      version = np.lib.format.read_magic(f)
      if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
      elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
      else:
        raise ValueError(f"{path}: .npy format {version} is not read remotely")
      self._offset = f.tell()
    if fortran or dtype.hasobject or not shape:
      raise ValueError(f"{path}: only C-ordered arrays of rows of numbers are "
                       "read remotely")
    self.shape = tuple(shape)
    self.dtype = np.dtype(dtype)

  def __len__(self) -> int:
    return self.shape[0]

  def __getitem__(self, rows: slice) -> np.ndarray:
    """Rows [lo:hi] -> read-only array [hi - lo, ...], one range read."""
    lo, hi = _rows(rows, self.shape[0], "RemoteNpy")
    row_bytes = self.dtype.itemsize * math.prod(self.shape[1:])
    with storage.open(self.path, "rb") as f:
      f.seek(self._offset + lo * row_bytes)
      data = f.read((hi - lo) * row_bytes)
    if len(data) != (hi - lo) * row_bytes:
      raise OSError(f"{self.path}: truncated (rows {lo}:{hi} need "
                    f"{(hi - lo) * row_bytes} bytes, got {len(data)})")
    return np.frombuffer(data, self.dtype).reshape(
        (hi - lo,) + self.shape[1:])


def open_npy(path: str) -> np.ndarray | RemoteNpy:
  """A .npy file's rows, read lazily: memory-mapped (read-only) on a local
  disk, a `RemoteNpy` (row slices by range reads) elsewhere."""
  if storage.is_local(path):
    return np.load(storage.local_path(path), mmap_mode="r", allow_pickle=False)
  return RemoteNpy(path)


class ShardedArray:
  """A process-local per-example array stored as shard files, read lazily.

  Supports what batching needs: `len`, `shape`, `dtype` and slicing rows
  (`array[lo:hi]`), each slice read from the shards it overlaps
  (`open_npy`: memory-mapped, or by range reads on a remote workdir).
  """

  def __init__(self, parts: list[tuple[int, int, str]], shape: tuple[int, ...],
               dtype: np.dtype):
    """Args: parts: (first row, end row, .npy path) in row order; shape: the
    whole array's; dtype: its element type."""
    self.parts = parts
    self.shape = tuple(shape)
    self.dtype = np.dtype(dtype)
    self._opened: dict[str, np.ndarray | RemoteNpy] = {}

  def __len__(self) -> int:
    return self.shape[0]

  def _part(self, path: str) -> np.ndarray | RemoteNpy:
    if path not in self._opened:
      self._opened[path] = open_npy(path)
    return self._opened[path]

  def __getitem__(self, rows: slice) -> np.ndarray:
    lo, hi = _rows(rows, self.shape[0], "ShardedArray")
    out = [self._part(path)[max(lo, a) - a:min(hi, b) - a]
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
      root: the computation's folder (a local path or a URL).
      process_index: this process (names its shards and manifest).
      reuse: False forgets every committed shard (resume off).
    """
    self.root = root
    self.process_index = process_index
    self.manifest_path = storage.join(root, MANIFEST.format(process_index))
    self.finished: dict[str, str] = {}
    if reuse and storage.isfile(self.manifest_path):
      manifest = json.loads(storage.read_text(self.manifest_path))
      self.finished = manifest["shards"]

  def _folder(self, shard: int) -> str:
    return storage.join(self.root, self.finished[str(shard)])

  def has(self, shard: int, ids: np.ndarray) -> bool:
    """True if the shard is committed and holds exactly these ids."""
    if str(shard) not in self.finished:
      return False
    path = storage.join(self._folder(shard), f"{_IDS}.npy")
    return storage.isfile(path) and np.array_equal(open_npy(path)[:], ids)

  def load(self, shard: int) -> dict[str, str]:
    """{output name: .npy path} of a committed shard."""
    folder = self._folder(shard)
    return {name[:-len(".npy")]: storage.join(folder, name)
            for name in storage.listdir(folder)
            if name.endswith(".npy") and name != f"{_IDS}.npy"}

  def save(self, shard: int, ids: np.ndarray,
           arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """Writes and commits a shard; returns {output name: .npy path}.

    The files first, each whole; then the manifest, the commit point. A
    folder of the same name not in the manifest is a stale attempt of a
    killed job and is deleted first.
    """
    name = f"shard-{shard:05d}-p{self.process_index:05d}"
    folder = storage.join(self.root, name)
    if storage.isdir(folder):
      storage.rmtree(folder)
    paths = {}
    for key, value in arrays.items():
      paths[key] = storage.join(folder, f"{key}.npy")
      files.write_npy(paths[key], value)
    files.write_npy(storage.join(folder, f"{_IDS}.npy"), ids)
    self.finished[str(shard)] = name
    files.write_json(self.manifest_path, {"shards": self.finished})
    return paths
