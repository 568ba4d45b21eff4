"""jaxaudit.storage: one API over a local folder and an fsspec URL, giving the
same answers on both; a scheme without its implementation is a ConfigError
naming the path and the package to install."""

import importlib.util

from fsspec.implementations.memory import MemoryFileSystem
from fsspec.registry import known_implementations
import pytest

from jaxaudit import files
from jaxaudit import storage
from jaxaudit.errors import ConfigError


@pytest.fixture
def memory_root():
  """An empty `memory://` folder."""
  MemoryFileSystem.store.clear()
  MemoryFileSystem.pseudo_dirs[:] = [""]
  yield "memory://bucket/run"
  MemoryFileSystem.store.clear()


def _fill(root):
  files.write_text(storage.join(root, "b", "two.txt"), "2")
  files.write_text(storage.join(root, "a.txt"), "1")
  files.write_text(storage.join(root, "b", "c", "three.txt"), "3")


def _tree(root):
  """Everything `walk` gives, relative to root, and what the files hold."""
  return [(storage.relpath(folder, root), dirs, names,
           [storage.read_text(storage.join(folder, n)) for n in names])
          for folder, dirs, names in storage.walk(root)]


def test_local_and_remote_folders_answer_alike(tmp_path, memory_root):
  local = str(tmp_path / "run")
  for root in (local, memory_root):
    _fill(root)
  assert _tree(memory_root) == _tree(local) == [
      (".", ["b"], ["a.txt"], ["1"]), ("b", ["c"], ["two.txt"], ["2"]),
      ("b/c", [], ["three.txt"], ["3"])]
  for root in (local, memory_root):
    assert storage.listdir(root) == ["a.txt", "b"]
    assert storage.isdir(storage.join(root, "b"))
    assert storage.isfile(storage.join(root, "a.txt"))
    assert not storage.exists(storage.join(root, "nope"))
    assert storage.size(storage.join(root, "a.txt")) == 1
    storage.remove(storage.join(root, "a.txt"))
    storage.rmtree(storage.join(root, "b"))
    assert not storage.exists(storage.join(root, "b", "c", "three.txt"))
    assert not storage.exists(storage.join(root, "a.txt"))
  with pytest.raises(FileNotFoundError):
    storage.listdir(storage.join(memory_root, "nope"))


def test_paths_keep_their_scheme():
  assert storage.join("gs://b/run", "s", "x.npy") == "gs://b/run/s/x.npy"
  assert storage.dirname("gs://b/run/x.npy") == "gs://b/run"
  assert storage.relpath("gs://b/run/s/x.npy", "gs://b/run/") == "s/x.npy"
  with pytest.raises(ValueError):
    storage.relpath("s3://b/run/x", "gs://b/run")
  assert storage.is_local("/tmp/x") and storage.is_local("file:///tmp/x")
  assert not storage.is_local("gs://b/x")
  assert storage.local_path("file:///tmp/x") == "/tmp/x"
  assert storage.expand("gs://b/~x") == "gs://b/~x"


def test_fingerprint_changes_with_the_file(tmp_path, memory_root):
  for root in (str(tmp_path), memory_root):
    path = storage.join(root, "w.npz")
    files.write_bytes(path, b"one")
    first = storage.fingerprint(path)
    files.write_bytes(path, b"three")
    assert storage.fingerprint(path) != first


def test_a_missing_implementation_names_the_path_and_package(monkeypatch):
  monkeypatch.setitem(known_implementations, "nopkg", {
      "class": "nopkg_fs.NoPkgFileSystem", "err": "Install nopkg_fs"})
  with pytest.raises(ConfigError,
                     match=r"nopkg://b/run: .*pip install nopkg_fs"):
    storage.exists("nopkg://b/run")
  with pytest.raises(ConfigError, match=r"unknown://b/x: unknown file system"):
    storage.open("unknown://b/x")
  if importlib.util.find_spec("gcsfs") is None:
    with pytest.raises(ConfigError,
                       match=r"gs://b/run/summary\.json: .*pip install gcsfs"):
      files.write_text("gs://b/run/summary.json", "{}")
