"""How many XLA compilations a piece of work made, and the seconds they took.

Read from JAX's own monitoring events, not guessed from wall time: each
`/jax/core/compile/backend_compile_duration` event is one XLA compilation
(or a load from the persistent compilation cache, counted apart as
`cache_hits`), and tracing plus lowering plus compiling make `seconds`. A
`counting()` block registers a listener for its duration only, so blocks nest
(a stage's count includes its attacks') and nothing outlives them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Iterator

import jax

_COMPILE = "/jax/core/compile/backend_compile_duration"
_TIMED = (_COMPILE, "/jax/core/compile/jaxpr_trace_duration",
          "/jax/core/compile/jaxpr_to_mlir_module_duration")
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


@dataclasses.dataclass
class CompileStats:
  """Compilations inside one `counting()` block.

  Attributes:
    count: XLA compilations (persistent-cache loads included).
    cache_hits: of those, loads from JAX's persistent compilation cache.
    seconds: tracing, lowering and compiling, summed.
    wall_seconds: the whole block (set when it ends).
  """
  count: int = 0
  cache_hits: int = 0
  seconds: float = 0.0
  wall_seconds: float = 0.0

  def as_dict(self) -> dict:
    """The summary fields: counts, and seconds compiling and computing."""
    return {"compilations": self.count, "cache_hits": self.cache_hits,
            "compile_seconds": round(self.seconds, 2),
            "run_seconds": round(max(self.wall_seconds - self.seconds, 0.0),
                                 2)}

  def line(self) -> str:
    """One log line: "3 compilations 4.1 s, run 12.0 s"."""
    fields = self.as_dict()
    return (f"{self.count} compilations {fields['compile_seconds']:.1f} s, "
            f"run {fields['run_seconds']:.1f} s")


@contextlib.contextmanager
def counting() -> Iterator[CompileStats]:
  """Counts the compilations made inside the block (every thread's).

  Yields:
    A `CompileStats` filled in as compilations happen; `wall_seconds` is set
    when the block ends.
  """
  stats = CompileStats()
  start = time.perf_counter()

  def on_duration(event: str, duration: float, **_) -> None:
    if event == _COMPILE:
      stats.count += 1
    if event in _TIMED:
      stats.seconds += duration

  def on_event(event: str, **_) -> None:
    if event == _CACHE_HIT:
      stats.cache_hits += 1

  jax.monitoring.register_event_duration_secs_listener(on_duration)
  jax.monitoring.register_event_listener(on_event)
  try:
    yield stats
  finally:
    jax.monitoring.unregister_event_duration_listener(on_duration)
    jax.monitoring.unregister_event_listener(on_event)
    stats.wall_seconds = time.perf_counter() - start
