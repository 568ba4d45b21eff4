"""summary.json: every stage's metrics, written atomically and reproducibly.

Floats are rounded to 6 decimals and keys sorted, so the same job with the same
seed on the same layout gives the same bytes; on 1 device, 8 devices or several
processes XLA:CPU's convolutions round per batch size, so floats may differ in
the last decimal.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jaxaudit import files

DECIMALS = 6


def to_json(value: Any) -> Any:
  """NumPy scalars/arrays -> Python; floats rounded; NaN/inf -> None."""
  if isinstance(value, dict):
    return {str(k): to_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_json(v) for v in value]
  if isinstance(value, np.ndarray):
    return to_json(value.tolist())
  if isinstance(value, (bool, np.bool_)):
    return bool(value)
  if isinstance(value, (int, np.integer)):
    return int(value)
  if isinstance(value, (float, np.floating)):
    value = float(value)
    return None if not math.isfinite(value) else round(value, DECIMALS)
  return value


def write_json(path: str, value: Any) -> None:
  """Writes `to_json(value)` as sorted, indented JSON, atomically, to a local
  path or a URL (`jaxaudit.files`)."""
  files.write_json(path, to_json(value))
