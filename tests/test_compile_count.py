"""Compile accounting: counts XLA compilations from JAX's monitoring events,
per block, nested blocks included, and nothing after a block ends."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import compile_count


def test_counts_compilations_not_calls():
  f = jax.jit(lambda x: jnp.sin(x) * 2.0)
  x3, x4 = np.ones(3, np.float32), np.ones(4, np.float32)
  with compile_count.counting() as outer:
    f(x3).block_until_ready()
    with compile_count.counting() as inner:
      for _ in range(5):
        f(x3).block_until_ready()  # Cached: no compilation.
    f(x4).block_until_ready()  # A new shape compiles.
  assert inner.count == 0
  assert outer.count == 2
  assert outer.seconds > 0 and outer.wall_seconds >= outer.seconds
  fields = outer.as_dict()
  assert fields["compilations"] == 2 and fields["cache_hits"] == 0
  assert fields["compile_seconds"] + fields["run_seconds"] <= (
      outer.wall_seconds + 0.01)
  assert "2 compilations" in outer.line()


def test_a_finished_block_counts_nothing_more():
  with compile_count.counting() as done:
    jax.jit(lambda x: x + 1.0)(np.ones(2, np.float32)).block_until_ready()
  count = done.count
  jax.jit(lambda x: x - 1.0)(np.ones(5, np.float32)).block_until_ready()
  assert done.count == count == 1
