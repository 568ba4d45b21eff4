"""Reads PyTorch checkpoints without PyTorch and without executing code.

`torch.load` unpickles arbitrary objects, so a checkpoint from the internet can run
any code on load. This reader rebuilds only what a weights file needs (tensors,
their storages, `OrderedDict` and plain Python containers); every other global the
pickle names is refused with an error naming the file and the global.

Both on-disk formats are supported:
  * the zip format (torch >= 1.6): `archive/data.pkl` plus one raw file per storage;
  * the legacy format: a run of pickles (magic number, protocol, system info, the
    object, the storage keys) followed by each storage's bytes.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, BinaryIO

import numpy as np

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}

_TORCH_DTYPES = {
    "float64": np.float64, "float32": np.float32, "float16": np.float16,
    "bfloat16": "bfloat16", "int64": np.int64, "int32": np.int32, "int16": np.int16,
    "int8": np.int8, "uint8": np.uint8, "bool": np.bool_,
}


class UnsafeCheckpointError(pickle.UnpicklingError):
  """A checkpoint referenced a global outside the allow-list."""


class _StorageType:
  """Stands in for `torch.FloatStorage` & co: only carries the element dtype."""

  def __init__(self, name: str):
    self.name = name
    dtype = _STORAGE_DTYPES[name]
    if dtype == "bfloat16":
      import ml_dtypes  # pylint: disable=g-import-not-at-top
      dtype = ml_dtypes.bfloat16
    self.dtype = np.dtype(dtype)


class _TorchDtype:
  """Stands in for `torch.float32` & co (used by typed storages)."""

  def __init__(self, name: str):
    dtype = _TORCH_DTYPES[name]
    if dtype == "bfloat16":
      import ml_dtypes  # pylint: disable=g-import-not-at-top
      dtype = ml_dtypes.bfloat16
    self.dtype = np.dtype(dtype)


class _StorageRef:
  """A storage named in the pickle; its bytes are attached after unpickling."""

  def __init__(self, key: str, dtype: np.dtype, numel: int):
    self.key = key
    self.dtype = dtype
    self.numel = numel
    self.data: np.ndarray | None = None


class _TensorRef:
  """A tensor view (storage, offset, shape, strides) materialised after loading."""

  def __init__(self, storage: _StorageRef, offset: int, size, stride):
    self.storage = storage
    self.offset = int(offset)
    self.size = tuple(int(s) for s in size)
    self.stride = tuple(int(s) for s in stride)

  def materialize(self) -> np.ndarray:
    data = self.storage.data
    if data is None:
      raise pickle.UnpicklingError(f"storage {self.storage.key} has no data")
    if not self.size:
      return np.array(data[self.offset])
    itemsize = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[self.offset:], shape=self.size,
        strides=tuple(s * itemsize for s in self.stride), writeable=False)
    return np.array(view)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused_args):
  return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused_args):
  return data


def _allowed_globals() -> dict[tuple[str, str], Any]:
  allowed: dict[tuple[str, str], Any] = {
      ("collections", "OrderedDict"): collections.OrderedDict,
      ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
      ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
      ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
      ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
      ("builtins", "set"): set,
      ("builtins", "frozenset"): frozenset,
      ("builtins", "tuple"): tuple,
      ("builtins", "list"): list,
      ("builtins", "dict"): dict,
      ("__builtin__", "set"): set,
      ("torch", "Size"): tuple,
  }
  for name in _STORAGE_DTYPES:
    allowed[("torch", name)] = _StorageType(name)
  for name in _TORCH_DTYPES:
    allowed[("torch", name)] = _TorchDtype(name)
  return allowed


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only allow-listed globals and records storages."""

  def __init__(self, file: BinaryIO, path: str):
    super().__init__(file, encoding="latin1")
    self._path = path
    self.storages: dict[str, _StorageRef] = {}

  def find_class(self, module: str, name: str) -> Any:
    try:
      return _ALLOWED[(module, name)]
    except KeyError:
      raise UnsafeCheckpointError(
          f"{self._path}: refused to load global '{module}.{name}'; only tensors, "
          "storages, OrderedDict and plain containers are allowed in a "
          "checkpoint") from None

  def persistent_load(self, pid: Any) -> Any:
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise UnsafeCheckpointError(
          f"{self._path}: unsupported persistent id {pid!r}")
    storage_type, key, _, numel = pid[1], str(pid[2]), pid[3], pid[4]
    if isinstance(storage_type, _StorageType):
      dtype = storage_type.dtype
    elif isinstance(storage_type, _TorchDtype):
      dtype = storage_type.dtype
    else:
      raise UnsafeCheckpointError(
          f"{self._path}: unsupported storage type {storage_type!r}")
    if key not in self.storages:
      self.storages[key] = _StorageRef(key, dtype, int(numel) if numel else 0)
    return self.storages[key]


def _materialize(obj: Any) -> Any:
  if isinstance(obj, _TensorRef):
    return obj.materialize()
  if isinstance(obj, collections.OrderedDict):
    return collections.OrderedDict((k, _materialize(v)) for k, v in obj.items())
  if isinstance(obj, dict):
    return {k: _materialize(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialize(v) for v in obj)
  return obj


def _load_zip(path: str) -> Any:
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pkl_names = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pkl_names:
      raise pickle.UnpicklingError(f"{path}: zip checkpoint has no data.pkl")
    prefix = pkl_names[0][: -len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
      byteorder = archive.read(prefix + "byteorder").decode().strip()
    unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pkl_names[0])), path)
    obj = unpickler.load()
    for key, ref in unpickler.storages.items():
      raw = archive.read(f"{prefix}data/{key}")
      dtype = ref.dtype.newbyteorder("<" if byteorder == "little" else ">")
      ref.data = np.frombuffer(raw, dtype=dtype).astype(ref.dtype.newbyteorder("="))
  return _materialize(obj)


def _load_legacy(path: str) -> Any:
  with open(path, "rb") as f:
    magic = _RestrictedUnpickler(f, path).load()
    if magic != _LEGACY_MAGIC:
      raise pickle.UnpicklingError(f"{path}: not a torch checkpoint (bad magic)")
    _RestrictedUnpickler(f, path).load()  # protocol version
    _RestrictedUnpickler(f, path).load()  # system info
    unpickler = _RestrictedUnpickler(f, path)
    obj = unpickler.load()
    keys = _RestrictedUnpickler(f, path).load()
    for key in keys:
      ref = unpickler.storages[str(key)]
      (numel,) = struct.unpack("<q", f.read(8))
      raw = f.read(numel * ref.dtype.itemsize)
      if len(raw) != numel * ref.dtype.itemsize:
        raise pickle.UnpicklingError(f"{path}: truncated storage {key}")
      ref.data = np.frombuffer(raw, dtype=ref.dtype)
  return _materialize(obj)


def load_torch_checkpoint(path: str | os.PathLike) -> Any:
  """Loads a PyTorch checkpoint into NumPy arrays, refusing any code.

  Args:
    path: a `.pth`/`.pt`/`.th` file in torch's zip or legacy format.

  Returns:
    The checkpoint's object with every tensor replaced by a `np.ndarray`
    (typically a `dict`/`OrderedDict` of parameter name -> array).

  Raises:
    UnsafeCheckpointError: the pickle names a global outside the allow-list
      (the message names the file and the global); nothing it names is called.
    pickle.UnpicklingError: the file is not a readable torch checkpoint.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"checkpoint not found: {path}")
  if zipfile.is_zipfile(path):
    return _load_zip(path)
  return _load_legacy(path)
