"""Reads Flax msgpack checkpoints (`flax.serialization.to_bytes`) within bounds.

`flax.serialization.msgpack_restore` trusts the file: an array's shape and
dtype come from the payload and `np.zeros(shape)` sizes a chunked array before
any chunk is checked. Here msgpack's own length limits bound every container by
the file's size (msgpack's default for `unpackb`), map keys must be strings,
and each array is checked (allowed dtype, non-negative shape, bytes equal to
shape x element size, within the file's budget) before it is copied.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

from jaxaudit.errors import WeightsError
from jaxaudit.weights import bounds

_NDARRAY, _COMPLEX, _SCALAR = 1, 2, 3  # flax.serialization._MsgpackExtType.
_CHUNKED = "__msgpack_chunked_array__"
MAX_DEPTH = 64


def _array(payload: bytes, source: str, budget: bounds.Budget) -> np.ndarray:
  try:
    fields = msgpack.unpackb(payload, raw=True)
  except (ValueError, msgpack.UnpackException, TypeError) as e:
    raise WeightsError(f"{source}: unreadable array "
                       f"({bounds.describe_error(e)})") from None
  if not (isinstance(fields, (list, tuple)) and len(fields) == 3):
    raise WeightsError(f"{source}: an array record is not (shape, dtype, data)")
  shape, dtype_name, data = fields
  if not isinstance(dtype_name, bytes) or not isinstance(data, bytes):
    raise WeightsError(f"{source}: an array record is not (shape, dtype, data)")
  name = dtype_name.decode("ascii", "replace")
  dtype = bounds.allowed_dtype(bounds.DTYPES.get(name, name), source, "<array>")
  if not isinstance(shape, (list, tuple)) or len(shape) > bounds.MAX_RANK or (
      not all(isinstance(n, int) and n >= 0 for n in shape)):
    raise WeightsError(f"{source}: an array has a bad shape")
  nbytes = math.prod(shape) * dtype.itemsize
  if nbytes != len(data):
    raise WeightsError(f"{source}: an array of shape {tuple(shape)} {name} "
                       f"needs {nbytes} bytes, its record holds {len(data)}")
  budget.charge(nbytes, "<array>")
  return bounds.normalise_bool(
      np.frombuffer(data, dtype).reshape(shape).copy())


def _unchunk(value: dict, source: str, budget: bounds.Budget) -> np.ndarray:
  """Flax's form of arrays over 1 GB: {shape: {"0": n0, ...}, chunks: {...}}."""
  shape, chunks = value.get("shape"), value.get("chunks")
  if not isinstance(shape, dict) or not isinstance(chunks, dict):
    raise WeightsError(f"{source}: malformed chunked array")
  shape = tuple(shape[str(i)] for i in range(len(shape)) if str(i) in shape)
  parts = [chunks.get(str(i)) for i in range(len(chunks))]
  if not all(isinstance(n, int) and n >= 0 for n in shape) or not all(
      isinstance(p, np.ndarray) and p.ndim == 1 for p in parts) or len(
          {p.dtype for p in parts}) > 1:
    raise WeightsError(f"{source}: malformed chunked array")
  if sum(p.size for p in parts) != math.prod(shape):
    raise WeightsError(f"{source}: chunked array of shape {shape} holds "
                       f"{sum(p.size for p in parts)} elements")
  budget.charge(sum(p.nbytes for p in parts), "<chunked array>")
  return np.concatenate(parts).reshape(shape) if parts else np.zeros(shape)


def _restore_chunks(tree: Any, source: str, budget: bounds.Budget,
                    depth: int = 0) -> Any:
  if depth > MAX_DEPTH:
    raise WeightsError(f"{source}: nesting deeper than {MAX_DEPTH} levels")
  if isinstance(tree, dict):
    if tree.get(_CHUNKED) is True:
      return _unchunk(tree, source, budget)
    return {k: _restore_chunks(v, source, budget, depth + 1)
            for k, v in tree.items()}
  if isinstance(tree, list):
    return [_restore_chunks(v, source, budget, depth + 1) for v in tree]
  return tree


def load_msgpack_bytes(data: bytes, source: str) -> Any:
  """The pytree (nested dicts of arrays and scalars) of a Flax msgpack file.

  Raises:
    WeightsError: malformed msgpack, a non-string map key, nesting deeper than
      64, or an array that breaks a bound (the message names the file).
  """
  budget = bounds.Budget(source, len(data))

  def ext_hook(code: int, payload: bytes) -> Any:
    if code == _NDARRAY:
      return _array(payload, source, budget)
    if code == _SCALAR:
      return _array(payload, source, budget)[()]
    raise WeightsError(f"{source}: msgpack extension type {code} is not an "
                       "allowed array type")

  try:
    tree = msgpack.unpackb(data, ext_hook=ext_hook, raw=False,
                           strict_map_key=True)
  except WeightsError:
    raise
  except (ValueError, TypeError, msgpack.UnpackException,
          msgpack.ExtraData) as e:
    raise WeightsError(f"{source}: not a readable msgpack checkpoint "
                       f"({bounds.describe_error(e)})") from None
  return _restore_chunks(tree, source, budget)


def load_msgpack_file(path: str) -> Any:
  """`load_msgpack_bytes` of a file (a WeightsError names a missing one)."""
  return load_msgpack_bytes(bounds.read_file(path), path)
