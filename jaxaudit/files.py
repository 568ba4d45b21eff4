"""Every file jaxaudit writes goes through `write_with`: whole or not at all.

On a local disk a file is written under a temporary name in its own folder and
then renamed over the target (`os.replace`, atomic on POSIX), so a reader (or a
job restarted after a crash) never sees half a file.

On any other file system (`jaxaudit.storage`: gs://, s3://, any fsspec URL)
renaming is often not atomic: object stores rename by copy-then-delete, so a
temporary name would buy nothing and could leave debris. There the file is
rendered in memory and written with one call (`storage.write_object`, one
object upload), which an object store makes all-or-nothing: a job killed
mid-write leaves no object, or the previous one. A Python error while
rendering writes nothing. (On a remote file system that is not an object store,
e.g. SFTP, a write killed midway may leave a partial file; nothing jaxaudit
reads back relies on more than the manifests below.)

Folders of several files (resume shards) are committed by a manifest written
last (`jaxaudit.resume`), which needs neither atomic renames nor atomic
folders: files of an uncommitted shard are ignored and rewritten on restart.
"""

from __future__ import annotations

import io
import json
import os
import threading
from typing import Any, BinaryIO, Callable

import numpy as np

from jaxaudit import storage


def write_with(path: str | os.PathLike,
               write: Callable[[BinaryIO], None]) -> None:
  """Writes `path` atomically with `write(binary_file)`.

  Args:
    path: a local path or a URL (`jaxaudit.storage`).
    write: fills the file; it may be called on an in-memory buffer (remote
      paths), so it must not rely on the file having a name or a fileno.
  """
  if not storage.is_local(path):
    buffer = io.BytesIO()
    write(buffer)
    storage.write_object(path, buffer.getvalue())
    return
  path = storage.local_path(path)
  folder = os.path.dirname(path) or "."
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-"
                             f"{threading.get_ident()}")
  try:
    with open(tmp, "wb") as f:
      write(f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """`data` written atomically."""
  write_with(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike, text: str) -> None:
  """`text` written atomically, as UTF-8."""
  write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, value: Any, **kwargs: Any) -> None:
  """JSON (sorted keys, indented) written atomically."""
  write_text(path, json.dumps(value, indent=1, sort_keys=True, **kwargs) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
  """One array as C-ordered .npy: memory-mappable by `np.load(mmap_mode="r")`
  when local, read by byte ranges of rows when remote (`resume.open_npy`)."""
  write_with(path, lambda f: np.save(f, np.asarray(array, order="C"),
                                     allow_pickle=False))
