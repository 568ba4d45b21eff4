"""Progress of long compiled loops, reported from inside them.

One batch of a compiled attack or attribution can run for minutes with no
Python in between. `tick` in a loop body calls back to the host a few times
over the loop (`jax.debug.callback` under a `lax.cond`), and the host logs the
step. Nothing it does reaches the results, and on a mesh the callback runs
once per call, not once per device. Call it with the loop's own (unbatched)
step counter: a `fori_loop` or `scan` index, not a per-example one.
"""

from __future__ import annotations

import functools

from absl import logging
import jax
import jax.numpy as jnp

TIMES = 4  # Reports over one loop.
MIN_STEPS = 8  # Shorter loops report nothing.


def _log(label: str, total: int, step: jax.Array) -> None:
  logging.info("%s: step %d/%d", label, int(step), total)


def tick(label: str, step: jax.Array, total: int) -> None:
  """Logs "<label>: step k/total" `TIMES` times over a loop of `total` steps
  (none for loops under `MIN_STEPS`).

  Args:
    label: what is looping ("pgd", "integrated gradients").
    step: int scalar, the 0-based index of the current step (traced).
    total: the loop's number of steps (static).
  """
  if total < MIN_STEPS:
    return
  interval = -(-total // TIMES)
  done = jnp.asarray(step, jnp.int32) + 1
  jax.lax.cond(done % interval == 0,
               lambda: jax.debug.callback(
                   functools.partial(_log, label, total), done),
               lambda: None)
