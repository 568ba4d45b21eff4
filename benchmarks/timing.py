"""Wall-clock timing shared by the benchmarks."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def median_time(fn: Callable[[], object], repeats: int) -> float:
  """Median seconds of `repeats` calls of `fn`, after one untimed warm-up call
  (which also compiles jitted code)."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return float(np.median(times))
