"""File system access for a local path or any fsspec URL, one API for both.

Every job file jaxaudit reads or writes (the workdir, checkpoints, the
converted-weights cache) may be a local path or a URL of any file system
registered with fsspec: `gs://bucket/run` (with gcsfs installed), `s3://...`
(s3fs), `memory://...`. A local path (no `scheme://`, or `file://`) takes the
plain `os` calls, so local files stay memory-mappable and nothing is imported
for them; any other URL is resolved by `fsspec.core.url_to_fs`, and a scheme
whose implementation is not installed fails with a `ConfigError` naming the
path and the package to install.

Paths stay strings in the caller's spelling: `join` keeps `scheme://`, and
`walk`/`listdir` give names and folders the caller can `join` again. Writes go
through `jaxaudit.files`, which makes each file whole or absent.
"""

from __future__ import annotations

import builtins
import os
import posixpath
import shutil
from typing import IO, Any, Callable, Iterator

from jaxaudit.errors import ConfigError

_FILE = "file://"


def is_local(path: str | os.PathLike) -> bool:
  """Whether `path` is on the local file system (a plain path or file://)."""
  path = os.fspath(path)
  return path.startswith(_FILE) or "://" not in path


def local_path(path: str | os.PathLike) -> str:
  """A local path as `os` takes it (file:// dropped)."""
  path = os.fspath(path)
  return path[len(_FILE):] if path.startswith(_FILE) else path


def expand(path: str | os.PathLike) -> str:
  """`~` expanded in a local path (as in user-given checkpoint paths); a URL
  unchanged."""
  return (os.path.expanduser(local_path(path)) if is_local(path)
          else os.fspath(path))


def _install_hint(scheme: str) -> str:
  """What to install for a scheme: "`pip install gcsfs`" for gs://."""
  from fsspec.registry import known_implementations  # pylint: disable=g-import-not-at-top
  known = known_implementations.get(scheme)
  if known is None:
    return f"install the fsspec implementation of '{scheme}://'"
  return f"`pip install {known['class'].split('.')[0]}`"


def _fs(path: str) -> tuple[Any, str]:
  """(fsspec file system, path within it) for a URL.

  Raises:
    ConfigError: fsspec, or the implementation of the URL's scheme, is not
      installed (the message names the path and the package).
  """
  scheme = path.split("://", 1)[0]
  try:
    import fsspec  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ConfigError(f"{path}: paths with a scheme need fsspec; "
                      "`pip install fsspec`") from None
  try:
    return fsspec.core.url_to_fs(path)
  except ImportError as e:
    raise ConfigError(f"{path}: no file system for '{scheme}://' is installed "
                      f"({e}); {_install_hint(scheme)}") from None
  except ValueError as e:
    if "Protocol not known" not in str(e):
      raise
    raise ConfigError(f"{path}: unknown file system '{scheme}://'; install and "
                      "register its fsspec implementation") from None


def join(path: str | os.PathLike, *parts: str) -> str:
  """`os.path.join` for a local path; a posix join that keeps `scheme://`."""
  path = os.fspath(path)
  return (os.path.join(path, *parts) if is_local(path)
          else posixpath.join(path, *parts))


def dirname(path: str | os.PathLike) -> str:
  """The folder holding `path` (URLs keep their scheme)."""
  path = os.fspath(path)
  return (os.path.dirname(path) if is_local(path)
          else posixpath.dirname(path.rstrip("/")))


def relpath(path: str | os.PathLike, start: str | os.PathLike) -> str:
  """`path` relative to the folder `start` (both local, or both URLs).

  Raises:
    ValueError: one is local and the other a URL, or their schemes differ.
  """
  path, start = os.fspath(path), os.fspath(start)
  if is_local(path) and is_local(start):
    return os.path.relpath(local_path(path), local_path(start))
  scheme, _, rest = path.partition("://")
  start_scheme, _, start_rest = start.partition("://")
  if scheme != start_scheme or is_local(path) or is_local(start):
    raise ValueError(f"{path} is not under {start}")
  return posixpath.relpath("/" + rest.strip("/"), "/" + start_rest.strip("/"))


def open(path: str | os.PathLike, mode: str = "rb") -> IO:  # pylint: disable=redefined-builtin
  """Opens a file like `builtins.open` ("rb", "r", "wb", "w", "ab").

  A local file is a real OS file (it has a fileno, so it can be
  memory-mapped); a remote one is fsspec's buffered file, which supports
  seek and range reads. Writing a remote file in place is not atomic: use
  `jaxaudit.files` for files a crash must not leave half written.
  """
  path = os.fspath(path)
  if is_local(path):
    return builtins.open(local_path(path), mode)
  fs, inner = _fs(path)
  return fs.open(inner, mode)


def read_bytes(path: str | os.PathLike) -> bytes:
  """The whole file."""
  with open(path, "rb") as f:
    return f.read()


def read_text(path: str | os.PathLike) -> str:
  """The whole file, decoded as UTF-8."""
  return read_bytes(path).decode()


def write_object(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to a remote file in one call (one object upload).

  On an object store (GCS, S3, Azure, memory) the object appears whole or not
  at all, and an existing one is replaced in one step. Parent folders are
  created where the file system has them.
  """
  path = os.fspath(path)
  if is_local(path):
    raise ValueError(f"write_object is for remote files; {path} is local")
  fs, inner = _fs(path)
  fs.makedirs(posixpath.dirname(inner), exist_ok=True)
  fs.pipe_file(inner, data)


def _ask(path: str | os.PathLike, local: Callable[[str], Any], remote: str,
         **remote_kwargs: Any) -> Any:
  """`local(path)` on a local path, else the fsspec file system's method
  named `remote` on the URL's path (with `remote_kwargs`)."""
  path = os.fspath(path)
  if is_local(path):
    return local(local_path(path))
  fs, inner = _fs(path)
  return getattr(fs, remote)(inner, **remote_kwargs)


def exists(path: str | os.PathLike) -> bool:
  """Whether a file or folder is at `path`."""
  return _ask(path, os.path.exists, "exists")


def isfile(path: str | os.PathLike) -> bool:
  """Whether `path` is a file."""
  return _ask(path, os.path.isfile, "isfile")


def isdir(path: str | os.PathLike) -> bool:
  """Whether `path` is a folder (on an object store: a prefix of objects)."""
  return _ask(path, os.path.isdir, "isdir")


def size(path: str | os.PathLike) -> int:
  """A file's size in bytes."""
  return int(_ask(path, os.path.getsize, "size"))


def fingerprint(path: str | os.PathLike) -> str:
  """A string that changes when the file at `path` changes (keys caches).

  Local: the absolute path, size and modification time; remote: the URL and
  the file system's `ukey` (a hash of the object's metadata: size, generation
  or ETag, modification time).
  """
  path = os.fspath(path)
  if is_local(path):
    local = os.path.abspath(local_path(path))
    stat = os.stat(local)
    return f"{local}:{stat.st_size}:{stat.st_mtime_ns}"
  fs, inner = _fs(path)
  return f"{path}:{fs.ukey(inner)}"


def makedirs(path: str | os.PathLike) -> None:
  """Creates a folder and its parents; nothing if it exists (on object stores,
  which have no folders, usually nothing at all)."""
  path = os.fspath(path)
  if is_local(path):
    os.makedirs(local_path(path), exist_ok=True)
    return
  fs, inner = _fs(path)
  fs.makedirs(inner, exist_ok=True)


def listdir(path: str | os.PathLike) -> list[str]:
  """Names (not paths) of the entries of a folder, sorted.

  Raises:
    FileNotFoundError: no such folder.
  """
  path = os.fspath(path)
  if is_local(path):
    return sorted(os.listdir(local_path(path)))
  fs, inner = _fs(path)
  inner = inner.rstrip("/")
  if not fs.isdir(inner):
    raise FileNotFoundError(f"no such folder: {path}")
  entries = {posixpath.basename(entry.rstrip("/"))
             for entry in fs.ls(inner, detail=False)
             if entry.rstrip("/") != inner}
  return sorted(entries)


def walk(path: str | os.PathLike) -> Iterator[tuple[str, list[str], list[str]]]:
  """Like `os.walk`, top-down and sorted: (folder, subfolder names, file
  names), `folder` spelled like `path` (scheme kept) so that
  `join(folder, name)` and `relpath(..., path)` work on it."""
  path = os.fspath(path)
  if is_local(path):
    for folder, dirs, names in os.walk(local_path(path)):
      dirs.sort()
      yield folder, dirs, sorted(names)
    return
  fs, inner = _fs(path)
  inner = inner.rstrip("/")
  for folder, dirs, names in fs.walk(inner):
    dirs.sort()
    rel = posixpath.relpath("/" + folder.strip("/"), "/" + inner.strip("/"))
    yield (path if rel == "." else join(path, rel)), dirs, sorted(names)


def remove(path: str | os.PathLike) -> None:
  """Deletes a file."""
  _ask(path, os.remove, "rm_file")


def rmtree(path: str | os.PathLike) -> None:
  """Deletes a folder and everything under it."""
  _ask(path, shutil.rmtree, "rm", recursive=True)
