"""Reads `.safetensors` weight files through the `safetensors` library.

The format is an 8-byte header length, a JSON header ({name: {dtype, shape,
data_offsets}}) and the tensors' bytes. `safetensors.deserialize` (Rust)
validates all of it before returning data: the header length against the file
(and a 100 MB cap), the JSON, every tensor's offsets inside the data section,
contiguous and non-overlapping, and each span equal to its shape times its
element size. This module adds the dtype allow-list, owned copies and
`WeightsError`s that name the file.
"""

from __future__ import annotations

import numpy as np
import safetensors

from jaxaudit.errors import WeightsError
from jaxaudit.weights import bounds

# safetensors dtype names -> canonical names (bounds.DTYPES).
DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16",
          "BF16": "bfloat16", "I64": "int64", "I32": "int32", "I16": "int16",
          "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _panic_types() -> tuple[type[BaseException], ...]:
  """pyo3 turns a Rust panic into `PanicException`, a BaseException."""
  try:
    from pyo3_runtime import PanicException  # pylint: disable=g-import-not-at-top
  except ImportError:
    return ()
  return (PanicException,)


def load_safetensors_bytes(data: bytes, source: str) -> dict[str, np.ndarray]:
  """name -> owned little-endian-decoded array of a `.safetensors` file's bytes.

  Raises:
    WeightsError: a malformed header or data section (the library's message),
      or a dtype outside the allow-list (naming the tensor).
  """
  try:
    flat = safetensors.deserialize(data)
  except (safetensors.SafetensorError, ValueError, TypeError, OverflowError,
          *_panic_types()) as e:
    raise WeightsError(f"{source}: not a valid safetensors file "
                       f"({bounds.describe_error(e)})") from None
  budget = bounds.Budget(source, len(data))
  out = {}
  for key, view in flat:
    name = DTYPES.get(view["dtype"])
    if name is None:
      raise WeightsError(f"{source}: tensor '{key}': dtype {view['dtype']} is "
                         "not in the allow-list (" + ", ".join(DTYPES) + ")")
    dtype = bounds.DTYPES[name].newbyteorder("<")
    budget.charge(len(view["data"]), key)
    array = np.frombuffer(view["data"], dtype).reshape(view["shape"])
    out[key] = bounds.normalise_bool(
        array.astype(bounds.DTYPES[name], order="C"))
  return out
