"""Per-example records: one Parquet (or JSONL) file per stage and process.

Every process writes its own rows into `records/<stage>/part-<i>-of-<n>.<ext>`,
atomically (`jaxaudit.files`), so a killed job never leaves a half-written file
and `pandas.read_parquet("records/<stage>")` reads them all. The workdir may be
a local folder or a URL (`jaxaudit.storage`); pyarrow writes into a file object
either way.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jaxaudit import files
from jaxaudit import storage
from jaxaudit.errors import ConfigError

FORMATS = ("parquet", "jsonl")


def _column(values: Any) -> list | np.ndarray:
  """A Parquet-friendly column: 2-D+ arrays become lists of lists."""
  if isinstance(values, np.ndarray):
    if values.ndim > 1:
      return [row.tolist() for row in values]
    if values.dtype == object:
      return [v.tolist() if isinstance(v, np.ndarray) else v for v in values]
    return values
  return list(values)


def _json_value(value: Any) -> Any:
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  return value


def write_records(workdir: str, stage: str, columns: dict[str, Any],
                  process_index: int, process_count: int,
                  fmt: str = "parquet") -> str:
  """Writes one process's rows of a stage; returns the file path.

  Args:
    workdir: the job folder (a local path or a URL).
    stage: stage name (the subfolder under `records/`).
    columns: equal-length columns; 2-D arrays become list columns.
    process_index / process_count: name the part file.
    fmt: "parquet" or "jsonl".
  """
  if fmt not in FORMATS:
    raise ConfigError(f"config.records.format: unknown '{fmt}'; valid: "
                      + ", ".join(FORMATS))
  lengths = {k: len(v) for k, v in columns.items()}
  if len(set(lengths.values())) > 1:
    raise ValueError(f"stage {stage}: record columns differ in length {lengths}")
  path = storage.join(workdir, "records", stage,
                      f"part-{process_index:05d}-of-{process_count:05d}.{fmt}")
  if fmt == "parquet":
    table = pa.table({k: _column(v) for k, v in columns.items()})
    files.write_with(path, lambda f: pq.write_table(table, f))
  else:
    keys = list(columns)
    n = len(next(iter(columns.values()))) if columns else 0
    files.write_text(path, "".join(
        json.dumps({k: _json_value(columns[k][i]) for k in keys}) + "\n"
        for i in range(n)))
  return path
