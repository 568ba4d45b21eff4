"""Reads PyTorch checkpoints without PyTorch, without running code, within bounds.

Both on-disk formats are read:
  * the zip format (torch >= 1.6): `<name>/data.pkl` plus one uncompressed
    member `<name>/data/<key>` per storage;
  * the legacy format: a run of pickles (magic number, protocol, system info,
    the object, the storage keys) followed by each storage as an int64 element
    count and its bytes.

The object pickle is read by `restricted_pickle` (allow-listed globals only).
Then, before any tensor's bytes are touched, every tensor is checked
(`bounds.check_view`: non-negative fields, every element inside its
storage, the allocation within the file's budget) under its key in the
checkpoint, and every storage's declared size must equal the bytes present (the
zip member's size; the legacy stream's count and remaining length). Only then
are the tensors copied out. Every failure is a `WeightsError` naming the file.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
from typing import Any, NamedTuple

import numpy as np

from jaxaudit.errors import WeightsError
from jaxaudit.weights import restricted_pickle
from jaxaudit.weights import bounds
from jaxaudit.weights.restricted_pickle import StorageRef, TensorRef

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
MAX_DEPTH = 64  # Containers nested deeper than this (or cyclic) are refused.
_OPEN, _DONE = 1, 2


class _Graph(NamedTuple):
  """The containers and tensors of an unpickled object.

  Attributes:
    tensors: each distinct `TensorRef` with its key path ("state_dict/fc.weight").
    order: every distinct dict, list and tuple, children before parents.
  """
  tensors: list[tuple[str, TensorRef]]
  order: list[Any]


def _walk(obj: Any, source: str) -> _Graph:
  """Depth-first over `obj`'s containers, each visited once (shared ones too),
  refusing cycles and nesting deeper than MAX_DEPTH; iterative, so no input
  can exhaust the Python or C stack."""
  tensors, order, state = [], [], {}
  pending = [(obj, "", 0, False)]
  while pending:
    value, path, depth, leaving = pending.pop()
    if leaving:
      state[id(value)] = _DONE
      order.append(value)
      continue
    if isinstance(value, TensorRef):
      if id(value) not in state:
        state[id(value)] = _DONE
        tensors.append((path or "<root>", value))
      continue
    if not isinstance(value, (dict, list, tuple)):
      continue
    mark = state.get(id(value))
    if mark == _DONE:
      continue
    if mark == _OPEN or depth > MAX_DEPTH:
      raise WeightsError(f"{source}: containers contain themselves or nest "
                         f"deeper than {MAX_DEPTH} levels at '{path[:200]}'")
    state[id(value)] = _OPEN
    pending.append((value, path, depth, True))
    if isinstance(value, dict):
      pending.extend((v, f"{path}/{k}" if path else str(k), depth + 1)
                     + (False,) for k, v in value.items())
    else:
      pending.extend((v, f"{path}[{i}]", depth + 1, False)
                     for i, v in enumerate(value))
  return _Graph(tensors, order)


def _assemble(obj: Any, graph: _Graph, arrays: dict[int, np.ndarray]) -> Any:
  """`obj` rebuilt children first, each TensorRef replaced by its array."""
  built: dict[int, Any] = dict(arrays)

  def replace(value):
    return built.get(id(value), value)

  for container in graph.order:
    if isinstance(container, dict):
      built[id(container)] = type(container)(
          (k, replace(v)) for k, v in container.items())
    else:
      built[id(container)] = type(container)(replace(v) for v in container)
  return replace(obj)


def _rebuild(obj: Any, storages: dict[str, StorageRef], read_storage,
             source: str, file_bytes: int) -> Any:
  """Checks every tensor view, reads the storages, copies the tensors out.

  Args:
    obj: the unpickled object, tensors as `TensorRef`.
    storages: key -> `StorageRef` the pickle declared.
    read_storage: `(StorageRef) -> np.ndarray [numel]`, which checks the bytes
      present against the declared size before reading them.
    source: the file, for messages.
    file_bytes: the file's size (sets the allocation budget).
  """
  graph = _walk(obj, source)
  budget = bounds.Budget(source, file_bytes)
  views = {}
  for key, ref in graph.tensors:
    storage = ref.storage
    offset, size, stride = bounds.check_view(
        source, key, ref.offset, ref.size, ref.stride, storage.numel)
    budget.charge(math.prod(size) * storage.dtype.itemsize, key)
    views[id(ref)] = (storage.key, offset, size, stride)
  data = {key: read_storage(ref) for key, ref in storages.items()}
  arrays = {ref_id: bounds.normalise_bool(bounds.copy_view(
      data[key], offset, size, stride))
            for ref_id, (key, offset, size, stride) in views.items()}
  return _assemble(obj, graph, arrays)


def _zip_member(archive: zipfile.ZipFile, name: str, source: str,
                expected: int | None = None) -> bytes:
  """An uncompressed member's bytes, its size checked before reading."""
  try:
    info = archive.getinfo(name)
  except KeyError:
    raise WeightsError(f"{source}: zip checkpoint has no member '{name}'"
                       ) from None
  if info.compress_type != zipfile.ZIP_STORED:
    raise WeightsError(f"{source}: member '{name}' is compressed; torch writes "
                       "checkpoints uncompressed")
  if expected is not None and info.file_size != expected:
    raise WeightsError(f"{source}: member '{name}' holds {info.file_size} bytes"
                       f", its storage declares {expected}")
  raw = archive.read(info)
  if len(raw) != info.file_size:
    raise WeightsError(f"{source}: member '{name}' is truncated")
  return raw


def _load_zip(data: bytes, source: str) -> Any:
  archive = zipfile.ZipFile(io.BytesIO(data))
  pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")
             or n == "data.pkl"]
  if len(pickles) != 1:
    raise WeightsError(f"{source}: zip checkpoint has {len(pickles)} data.pkl "
                       "members, expected 1")
  prefix = pickles[0][:-len("data.pkl")]
  byteorder = "little"
  if prefix + "byteorder" in archive.namelist():
    byteorder = _zip_member(archive, prefix + "byteorder", source).decode(
        "ascii", "replace").strip()
    if byteorder not in ("little", "big"):
      raise WeightsError(f"{source}: unknown byte order '{byteorder[:20]}'")
  obj, storages, _ = restricted_pickle.load(
      _zip_member(archive, pickles[0], source), source)

  def read_storage(ref: StorageRef) -> np.ndarray:
    raw = _zip_member(archive, f"{prefix}data/{ref.key}", source,
                      ref.numel * ref.dtype.itemsize)
    dtype = ref.dtype.newbyteorder("<" if byteorder == "little" else ">")
    return np.frombuffer(raw, dtype=dtype).astype(ref.dtype, copy=False)

  return _rebuild(obj, storages, read_storage, source, len(data))


class _LegacyStream:
  """The legacy file as consecutive pickles and storage records."""

  def __init__(self, data: bytes, source: str):
    self.data = data
    self.source = source
    self.position = 0

  def pickle(self) -> tuple[Any, dict[str, StorageRef]]:
    """The next pickle and the storages it declared."""
    obj, storages, self.position = restricted_pickle.load(
        self.data, self.source, legacy=True, start=self.position)
    return obj, storages

  def storage(self, ref: StorageRef, little_endian: bool) -> np.ndarray:
    order = "<" if little_endian else ">"
    if len(self.data) - self.position < 8:
      raise WeightsError(f"{self.source}: storage '{ref.key}' is missing "
                         "(file ends)")
    (numel,) = struct.unpack_from(order + "q", self.data, self.position)
    if numel != ref.numel:
      raise WeightsError(f"{self.source}: storage '{ref.key}' holds {numel} "
                         f"elements, the pickle declares {ref.numel}")
    start = self.position + 8
    nbytes = numel * ref.dtype.itemsize
    if nbytes > len(self.data) - start:
      raise WeightsError(f"{self.source}: storage '{ref.key}' declares {nbytes} "
                         f"bytes, the file has {len(self.data) - start} left")
    self.position = start + nbytes
    return np.frombuffer(self.data, ref.dtype.newbyteorder(order), numel,
                         start).astype(ref.dtype, copy=False)


def _load_legacy(data: bytes, source: str) -> Any:
  stream = _LegacyStream(data, source)
  magic, _ = stream.pickle()
  if magic != LEGACY_MAGIC:
    raise WeightsError(f"{source}: not a torch checkpoint (wrong magic number)")
  protocol, _ = stream.pickle()
  if protocol != LEGACY_PROTOCOL:
    raise WeightsError(f"{source}: unsupported legacy protocol {protocol!r:.40}")
  info, _ = stream.pickle()
  little_endian = info.get("little_endian", True) if isinstance(info,
                                                                dict) else True
  obj, storages = stream.pickle()
  keys, _ = stream.pickle()
  if not isinstance(keys, list) or not all(isinstance(k, (str, int))
                                           for k in keys):
    raise WeightsError(f"{source}: the storage key list is malformed")
  keys = [str(k) for k in keys]
  if sorted(keys) != sorted(storages):
    unknown = sorted(set(keys) - set(storages))[:3]
    absent = sorted(set(storages) - set(keys))[:3]
    raise WeightsError(f"{source}: storage keys do not match the pickle "
                       f"(unknown: {unknown}, without data: {absent})")
  # Storages follow in the order of the key list; read (and check) them all.
  ordered = {}
  for key in keys:
    ordered[key] = stream.storage(storages[key], bool(little_endian))
  if stream.position != len(data):
    raise WeightsError(f"{source}: {len(data) - stream.position} unexpected "
                       "bytes after the last storage")
  return _rebuild(obj, storages, lambda ref: ordered[ref.key], source,
                  len(data))


def load_torch_checkpoint(path: str | os.PathLike) -> Any:
  """Loads a PyTorch checkpoint into NumPy arrays, refusing code and bad bounds.

  Args:
    path: a `.pth`/`.pt`/`.th`/`.bin` file in torch's zip or legacy format.

  Returns:
    The checkpoint's object with every tensor replaced by an owned `np.ndarray`
    (typically a `dict`/`OrderedDict` of parameter name -> array).

  Raises:
    UnsafeCheckpointError: the pickle names a global outside the allow-list
      (the message names the file and the global); nothing it names is called.
    WeightsError: the file is missing, truncated or malformed, or a tensor or
      storage breaks a bound (the message names the file, the tensor or
      storage, and the rule).
  """
  source = os.fspath(path)
  return load_torch_bytes(bounds.read_file(source), source)


def load_torch_bytes(data: bytes, source: str) -> Any:
  """`load_torch_checkpoint` of a file's bytes (`source` names it in errors)."""
  if data[:4] == b"PK\x03\x04":
    try:
      return _load_zip(data, source)
    except WeightsError:
      raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError,
            ValueError, NotImplementedError, struct.error) as e:
      raise WeightsError(f"{source}: corrupt zip checkpoint "
                         f"({bounds.describe_error(e)})") from None
  return _load_legacy(data, source)
