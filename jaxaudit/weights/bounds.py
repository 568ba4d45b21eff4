"""Bounds for untrusted weight files: allowed dtypes, checked views, budgets.

Every reader in `jaxaudit.weights` goes through this module before it touches a
tensor's bytes: the element type must be in `DTYPES`; a strided view (offset,
sizes, strides) must be non-negative and reach no element outside its storage;
and everything a file makes the loader allocate is charged to a `Budget` bounded
by the file's own size. A violation raises `WeightsError` naming the file, the
tensor and the rule, before any allocation. Views are then copied with bounds-
checked NumPy indexing (never `as_strided`), so even a wrong check could not read
memory the loader does not own.
"""

from __future__ import annotations

import math
from typing import Any

import ml_dtypes
import numpy as np

from jaxaudit import storage as storage_lib  # `storage`: a torch storage here.
from jaxaudit.errors import WeightsError

# Element types a weight file may hold, by their canonical (NumPy) names.
DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype(np.float64), "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "int64": np.dtype(np.int64), "int32": np.dtype(np.int32),
    "int16": np.dtype(np.int16), "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8), "bool": np.dtype(np.bool_),
}
MAX_RANK = 32
# A file may make the loader allocate this many times its own size (plus a
# small constant): shared storages viewed by several tensors stay loadable, a
# header claiming 10^12 elements does not.
BUDGET_FACTOR = 4
BUDGET_SLACK = 1 << 20


def allowed_dtype(dtype: Any, source: str, key: str) -> np.dtype:
  """`dtype` as a NumPy dtype if it is in `DTYPES` (native byte order), else
  `WeightsError`. Byte-swapped variants of allowed types are allowed."""
  try:
    dtype = np.dtype(dtype)
  except (TypeError, ValueError):
    raise WeightsError(f"{source}: tensor '{key}': unknown dtype {dtype!r}"
                       ) from None
  native = dtype.newbyteorder("=") if dtype.byteorder in "<>" else dtype
  if native.hasobject or native.fields or all(
      native != allowed for allowed in DTYPES.values()):
    raise WeightsError(f"{source}: tensor '{key}': dtype {dtype} is not in the "
                       "allow-list (" + ", ".join(DTYPES) + ")")
  return dtype


class Budget:
  """Bytes one file may make the loader allocate: BUDGET_FACTOR x its size."""

  def __init__(self, source: str, file_bytes: int):
    self.source = source
    self.limit = BUDGET_FACTOR * int(file_bytes) + BUDGET_SLACK
    self.used = 0

  def charge(self, nbytes: int, key: str) -> None:
    """Records an allocation of `nbytes` for tensor `key`, or refuses it."""
    if nbytes < 0 or self.used + nbytes > self.limit:
      raise WeightsError(
          f"{self.source}: tensor '{key}' needs {nbytes} bytes, more than the "
          f"file can hold (budget {self.limit} bytes, {self.used} used: at most "
          f"{BUDGET_FACTOR}x the file size)")
    self.used += nbytes


def _int(value: Any, what: str, source: str, key: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise WeightsError(f"{source}: tensor '{key}': {what} must be an integer, "
                       f"got {type(value).__name__}")
  if value < 0:
    raise WeightsError(f"{source}: tensor '{key}': negative {what} ({value})")
  return int(value)


def check_view(source: str, key: str, offset: Any, size: Any, stride: Any,
               storage_numel: int) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
  """Validates a strided view of a storage before any of it is read.

  Args:
    source: the file (for messages).
    key: the tensor's name (for messages).
    offset: first element of the view, in elements of the storage.
    size: [R] extent of each dimension.
    stride: [R] step of each dimension, in elements.
    storage_numel: elements the storage holds.

  Returns:
    (offset, size, stride) as Python ints.

  Raises:
    WeightsError: non-integer or negative fields, rank over MAX_RANK, sizes and
      strides of different ranks, or an element outside the storage:
      offset + sum((size_i - 1) * stride_i) must be < storage_numel.
  """
  if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)):
    raise WeightsError(f"{source}: tensor '{key}': size and stride must be "
                       "tuples")
  if len(size) != len(stride) or len(size) > MAX_RANK:
    raise WeightsError(f"{source}: tensor '{key}': rank {len(size)} sizes with "
                       f"{len(stride)} strides (at most {MAX_RANK})")
  offset = _int(offset, "storage offset", source, key)
  size = tuple(_int(s, "size", source, key) for s in size)
  stride = tuple(_int(s, "stride", source, key) for s in stride)
  if math.prod(size) == 0:
    if offset > storage_numel:
      raise WeightsError(f"{source}: tensor '{key}': offset {offset} is past "
                         f"the end of its storage of {storage_numel} elements")
    return offset, size, stride
  last = offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= storage_numel:
    raise WeightsError(
        f"{source}: tensor '{key}': reaches element {last} of a storage of "
        f"{storage_numel} elements (offset + sum((size - 1) * stride) must be "
        "inside the storage)")
  return offset, size, stride


def copy_view(storage: np.ndarray, offset: int, size: tuple[int, ...],
              stride: tuple[int, ...]) -> np.ndarray:
  """An owned copy of a view that `check_view` accepted.

  Contiguous views are sliced; other views are gathered with `np.take(...,
  mode="raise")`, which refuses out-of-range indices itself.

  Args:
    storage: [S] the storage's elements.
    offset, size, stride: as returned by `check_view`.

  Returns:
    [*size] array of the storage's dtype, owning its memory.
  """
  numel = math.prod(size)
  if numel == 0:
    return np.zeros(size, storage.dtype)
  contiguous = tuple(int(math.prod(size[i + 1:])) for i in range(len(size)))
  if all(n == 1 or s == c for n, s, c in zip(size, stride, contiguous)):
    flat = storage[offset:offset + numel]
    if flat.size != numel:
      raise IndexError("view outside its storage")
    return flat.reshape(size).copy()
  index = np.full((1,) * len(size), offset, np.int64)
  for axis, (n, s) in enumerate(zip(size, stride)):
    shape = [1] * len(size)
    shape[axis] = n
    index = index + (np.arange(n, dtype=np.int64) * s).reshape(shape)
  return np.take(storage, index, mode="raise")


def read_file(path: str) -> bytes:
  """A weight file's bytes (a local path or a URL, `jaxaudit.storage`), or a
  WeightsError naming it."""
  try:
    return storage_lib.read_bytes(path)
  except OSError as e:
    raise WeightsError(f"cannot read weights {path}: {e.strerror or e}"
                       ) from None


def describe_error(error: BaseException) -> str:
  """`Type: message` of an exception raised while parsing untrusted bytes,
  which cannot fail itself (a message may hold a huge int or a deep tuple)."""
  try:
    text = str(error)
  except Exception:  # pylint: disable=broad-except
    text = ""
  return f"{type(error).__name__}: {text[:200]}"


def normalise_bool(array: np.ndarray) -> np.ndarray:
  """Bool arrays read from raw bytes may hold bytes other than 0 and 1; maps
  every non-zero byte to True (what torch and safetensors mean)."""
  if array.dtype == np.bool_:
    return array.view(np.uint8) != 0
  return array
