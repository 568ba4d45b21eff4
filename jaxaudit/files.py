"""Every file jaxaudit writes goes through `write_with`: whole or not at all.

A file is written under a temporary name in its own folder and then renamed
over the target, so a reader (or a job restarted after a crash) never sees half
a file. Folders of several files (resume shards) are committed by a manifest
written last (`jaxaudit.resume`), which does not rely on renaming folders.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, BinaryIO, Callable

import numpy as np


def write_with(path: str, write: Callable[[BinaryIO], None]) -> None:
  """Writes `path` atomically with `write(binary_file)`."""
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


def write_bytes(path: str, data: bytes) -> None:
  write_with(path, lambda f: f.write(data))


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode())


def write_json(path: str, value: Any, **kwargs: Any) -> None:
  """JSON (sorted keys, indented) written atomically."""
  write_text(path, json.dumps(value, indent=1, sort_keys=True, **kwargs) + "\n")


def write_npy(path: str, array: np.ndarray) -> None:
  """One array as .npy (memory-mappable by `np.load(mmap_mode="r")`)."""
  write_with(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False))
