"""A pickle reader for torch checkpoints that runs no code and allocates boundedly.

`torch.load` unpickles arbitrary objects, so a downloaded checkpoint can run any
code. `RestrictedUnpickler` resolves only the globals a weights file needs
(tensor rebuilders, storage and dtype tags, `OrderedDict`, plain containers) and
refuses every other one with an error naming the file and the global. Further:

* It is CPython's pure-Python unpickler, whose memo is a dict: the C unpickler
  sizes its memo array from the indices in the file, so a 10-byte pickle asking
  for memo slot 2^32 makes it allocate and clear 64 GB. Its one opcode that
  allocates a claimed length before reading (BYTEARRAY8) reads first here.
* The globals it hands out are fresh wrapper objects that refuse `BUILD`, so a
  file cannot change the loader's functions or another file's tags.
* Containers built by calling a global (`set(...)`, `OrderedDict(...)`) are
  charged against the pickle's own length, so a few bytes that call `tuple` on
  one large list again and again cannot allocate gigabytes.
* Dict keys and set members must be small atoms (strings, bytes, 61-bit ints,
  None, booleans, shallow tuples of them): CPython hashes nested tuples
  recursively and without caching, so a megabyte of `TUPLE1` opcodes used as a
  key overflows the C stack (a segmentation fault), a few shared tuples nested
  60 deep take 2^60 steps to hash, and crafted large ints collide.

Tensors and storages come out as `TensorRef` and `StorageRef` records; nothing
here reads a storage's bytes (see `jaxaudit.weights.torch_checkpoint`).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from typing import Any, Callable

import numpy as np

from jaxaudit.errors import WeightsError
from jaxaudit.weights import bounds


class UnsafeCheckpointError(WeightsError):
  """A checkpoint referenced a global outside the allow-list."""


# torch's storage classes and dtypes -> canonical dtype names (bounds.DTYPES).
STORAGE_TYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32",
    "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
}
TORCH_DTYPES = {name: name for name in bounds.DTYPES}
MAX_KEY_LENGTH = 256
_KEY_ATOMS = (str, bytes, bool, type(None))
_KEY_DEPTH = 4  # Tuples in keys nest at most this deep ...
_KEY_NODES = 64  # ... and hold at most this many atoms and tuples.
_INT_KEY_LIMIT = 2**61 - 1  # Below it, distinct ints hash distinctly.
_MEMO_LIMIT = 2**32  # The binary PUT opcodes' own range.


class DtypeTag:
  """Stands in for `torch.FloatStorage`, `torch.float32` & co: an element type."""
  __slots__ = ("name", "dtype")

  def __init__(self, name: str, dtype: str):
    self.name = name
    self.dtype = bounds.DTYPES[dtype]

  def __setstate__(self, state: Any) -> None:
    raise WeightsError(f"pickle tried to set the state of torch.{self.name}")


class StorageRef:
  """A storage named by the pickle: its key, element type and element count."""
  __slots__ = ("key", "dtype", "numel")

  def __init__(self, key: str, dtype: np.dtype, numel: int):
    self.key = key
    self.dtype = dtype
    self.numel = numel

  def __setstate__(self, state: Any) -> None:
    raise WeightsError(f"pickle tried to set the state of storage {self.key}")


class TensorRef:
  """A tensor as the pickle describes it: a view (offset, size, stride) of a
  storage. Checked and copied by `torch_checkpoint` once its key is known."""
  __slots__ = ("storage", "offset", "size", "stride")

  def __init__(self, storage: StorageRef, offset: Any, size: Any, stride: Any):
    self.storage = storage
    self.offset = offset
    self.size = size
    self.stride = stride

  def __setstate__(self, state: Any) -> None:
    raise WeightsError("pickle tried to set the state of a tensor")


class _Global:
  """A callable allow-listed global, fresh for every lookup; refuses BUILD."""
  __slots__ = ("name", "fn")

  def __init__(self, name: str, fn: Callable[..., Any]):
    self.name = name
    self.fn = fn

  def __call__(self, *args: Any) -> Any:
    return self.fn(*args)

  def __setstate__(self, state: Any) -> None:
    raise WeightsError(f"pickle tried to set the state of global {self.name}")


def check_key(key: Any, source: str) -> None:
  """Raises WeightsError unless `key` is cheap and safe to hash (see above)."""
  pending, nodes = [(key, 0)], 0
  while pending:
    value, depth = pending.pop()
    nodes += 1
    if nodes > _KEY_NODES or depth > _KEY_DEPTH:
      raise WeightsError(f"{source}: a dict key or set member nests too deep")
    if isinstance(value, tuple):
      pending.extend((item, depth + 1) for item in value)
    elif isinstance(value, int) and not isinstance(value, bool):
      if not -_INT_KEY_LIMIT < value < _INT_KEY_LIMIT:
        raise WeightsError(f"{source}: a dict key or set member is an integer "
                           "of more than 61 bits")
    elif not isinstance(value, _KEY_ATOMS):
      raise WeightsError(f"{source}: a dict key or set member is a "
                         f"{type(value).__name__}")


class RestrictedUnpickler(pickle._Unpickler):  # pylint: disable=protected-access
  """Unpickles one torch pickle from bytes with allow-listed globals only.

  Attributes:
    storages: key -> `StorageRef`, every storage the pickle referenced.
  """

  def __init__(self, data: bytes, source: str, legacy: bool = False,
               start: int = 0):
    """Args:
      data: bytes holding the pickle at `start` (reads never go past them).
      source: the file, for messages.
      legacy: the pre-1.6 format, whose storage ids carry view metadata.
      start: where the pickle begins in `data`.
    """
    self._stream = io.BytesIO(data)  # Shares `data`'s buffer, no copy.
    self._stream.seek(start)
    super().__init__(self._stream, encoding="latin1")
    self._source = source
    self._legacy = legacy
    self._elements_left = len(data) - start + 1024
    self.storages: dict[str, StorageRef] = {}

  @property
  def position(self) -> int:
    """Where in `data` the unpickler stopped (after STOP, once loaded)."""
    return self._stream.tell()

  def find_class(self, module: str, name: str) -> Any:
    module, name = str(module), str(name)
    if module == "torch" and name in STORAGE_TYPES:
      return DtypeTag(name, STORAGE_TYPES[name])
    if module == "torch" and name in TORCH_DTYPES:
      return DtypeTag(name, TORCH_DTYPES[name])
    if (module, name) in _TENSOR_REBUILDERS:
      return _Global(name, self._rebuild_tensor)
    if (module, name) in _PARAMETER_REBUILDERS:
      return _Global(name, _rebuild_parameter)
    build = _CONTAINERS.get((module, name))
    if build is None:
      raise UnsafeCheckpointError(
          f"{self._source}: refused to load global '{module[:80]}.{name[:80]}';"
          " only tensors, storages, OrderedDict and plain containers are allowed"
          " in a checkpoint")
    return _Global(name, self._container(name, build))

  def _container(self, name: str, build: Callable[..., Any]) -> Callable:
    """`build(*args)` charged, element by element, to the pickle's length."""

    def call(*args):
      if len(args) > 1:
        raise WeightsError(f"{self._source}: {name} called with {len(args)} "
                           "arguments")
      if args and not isinstance(args[0], (list, tuple, dict, set, frozenset,
                                           str, bytes)):
        raise WeightsError(f"{self._source}: {name} called on a "
                           f"{type(args[0]).__name__}")
      self._elements_left -= len(args[0]) if args else 0
      if self._elements_left < 0:
        raise WeightsError(f"{self._source}: the pickle builds more container "
                           "elements than it has bytes")
      if args and build in (set, frozenset):
        for item in args[0]:
          check_key(item, self._source)
      elif args and build in (dict, collections.OrderedDict):
        pairs = args[0].items() if isinstance(args[0], dict) else args[0]
        for pair in pairs:
          if not (isinstance(pair, tuple) and len(pair) == 2):
            raise WeightsError(f"{self._source}: {name} of something other "
                               "than key-value pairs")
          check_key(pair[0], self._source)
      return build(*args)

    return call

  # Opcodes that hash keys, set object state or write the memo, checked first.
  dispatch = dict(pickle._Unpickler.dispatch)  # pylint: disable=protected-access

  def _load_bytearray8(self) -> None:
    # CPython allocates the claimed length before reading: read it first.
    (length,) = struct.unpack("<Q", self.read(8))
    data = self.read(length)
    if len(data) != length:
      raise WeightsError(f"{self._source}: BYTEARRAY8 claims {length} bytes, "
                         f"{len(data)} are left")
    self.append(bytearray(data))

  def _load_put(self) -> None:
    index = int(self.readline()[:-1])
    if not 0 <= index < _MEMO_LIMIT:
      raise WeightsError(f"{self._source}: memo index {index} out of range")
    self.memo[index] = self.stack[-1]

  def _load_setitem(self) -> None:
    self._check_mapping(self.stack[-3])
    check_key(self.stack[-2], self._source)
    pickle._Unpickler.load_setitem(self)  # pylint: disable=protected-access

  def _load_setitems(self) -> None:
    self._check_mapping(self.metastack[-1][-1] if self.metastack else None)
    for key in self.stack[0::2]:
      check_key(key, self._source)
    pickle._Unpickler.load_setitems(self)  # pylint: disable=protected-access

  def _load_dict(self) -> None:
    for key in self.stack[0::2]:
      check_key(key, self._source)
    pickle._Unpickler.load_dict(self)  # pylint: disable=protected-access

  def _load_set_members(self) -> None:
    for item in self.stack:
      check_key(item, self._source)

  def _load_additems(self) -> None:
    if not (self.metastack and isinstance(self.metastack[-1][-1], set)):
      raise WeightsError(f"{self._source}: ADDITEMS on something not a set")
    self._load_set_members()
    pickle._Unpickler.load_additems(self)  # pylint: disable=protected-access

  def _load_frozenset(self) -> None:
    self._load_set_members()
    pickle._Unpickler.load_frozenset(self)  # pylint: disable=protected-access

  def _load_build(self) -> None:
    # torch sets only `_metadata` (a dict of str keys) on OrderedDicts.
    state, target = self.stack[-1], self.stack[-2]
    if not (isinstance(target, collections.OrderedDict)
            and isinstance(state, dict)
            and all(isinstance(k, str) for k in state)):
      raise WeightsError(f"{self._source}: pickle sets the state of a "
                         f"{type(target).__name__}; only OrderedDict "
                         "attributes are allowed")
    self.stack.pop()
    target.__dict__.update(state)

  def _check_mapping(self, target: Any) -> None:
    if not isinstance(target, dict):
      raise WeightsError(f"{self._source}: SETITEM on a "
                         f"{type(target).__name__}, not a dict")

  dispatch[pickle.BYTEARRAY8[0]] = _load_bytearray8
  dispatch[pickle.PUT[0]] = _load_put
  dispatch[pickle.SETITEM[0]] = _load_setitem
  dispatch[pickle.SETITEMS[0]] = _load_setitems
  dispatch[pickle.DICT[0]] = _load_dict
  dispatch[pickle.ADDITEMS[0]] = _load_additems
  dispatch[pickle.FROZENSET[0]] = _load_frozenset
  dispatch[pickle.BUILD[0]] = _load_build

  def _rebuild_tensor(self, storage: Any, offset: Any, size: Any, stride: Any,
                      *unused: Any) -> TensorRef:
    if not isinstance(storage, StorageRef):
      raise WeightsError(f"{self._source}: a tensor's storage is a "
                         f"{type(storage).__name__}, not a storage")
    return TensorRef(storage, offset, size, stride)

  def persistent_load(self, pid: Any) -> StorageRef:
    fields = 6 if self._legacy else 5
    if not (isinstance(pid, tuple) and len(pid) == fields
            and pid[0] == "storage"):
      raise UnsafeCheckpointError(
          f"{self._source}: unsupported persistent id (expected a "
          f"{fields}-field storage record)")
    storage_type, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(storage_type, DtypeTag):
      raise UnsafeCheckpointError(f"{self._source}: storage of an unsupported "
                                  "type")
    if not isinstance(key, (str, int)) or isinstance(key, bool) or len(
        str(key)) > MAX_KEY_LENGTH:
      raise WeightsError(f"{self._source}: storage key is not a short string")
    key = str(key)
    if self._legacy and pid[5] is not None:
      raise WeightsError(f"{self._source}: storage '{key}' is a view of another "
                         "storage (pre-0.4 torch), which is not supported")
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
      raise WeightsError(f"{self._source}: storage '{key}': element count must "
                         "be a non-negative integer")
    ref = self.storages.get(key)
    if ref is None:
      ref = self.storages[key] = StorageRef(key, storage_type.dtype, numel)
    elif ref.dtype != storage_type.dtype or ref.numel != numel:
      raise WeightsError(f"{self._source}: storage '{key}' is declared twice "
                         "with different types or sizes")
    return ref


def _rebuild_parameter(data: Any, *unused: Any) -> Any:
  return data


_TENSOR_REBUILDERS = {("torch._utils", "_rebuild_tensor"),
                      ("torch._utils", "_rebuild_tensor_v2")}
_PARAMETER_REBUILDERS = {("torch._utils", "_rebuild_parameter"),
                         ("torch._utils", "_rebuild_parameter_with_state")}
_CONTAINERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "tuple"): tuple,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("__builtin__", "set"): set,
    ("torch", "Size"): tuple,
}


def load(data: bytes, source: str, legacy: bool = False, start: int = 0
         ) -> tuple[Any, dict[str, StorageRef], int]:
  """Unpickles the pickle at `data[start:]` with `RestrictedUnpickler`.

  Returns:
    (the object, its storages by key, the position just after the pickle).

  Raises:
    WeightsError: any malformed, truncated or unsafe pickle (never a raw
      `UnpicklingError`, `EOFError`, `KeyError`, ...).
  """
  unpickler = RestrictedUnpickler(data, source, legacy, start)
  try:
    obj = unpickler.load()
  except (WeightsError, MemoryError):
    raise
  except Exception as e:  # pylint: disable=broad-except
    # Untrusted bytes: any failure of the unpickler is the file's fault.
    raise WeightsError(f"{source}: not a readable torch pickle at byte {start} "
                       f"({bounds.describe_error(e)})") from None
  return obj, unpickler.storages, unpickler.position
