"""Greedy MMD-critic prototypes (Kim, Khanna & Koyejo, NeurIPS 2016).

With S the prototypes so far and T = S + {c}, |T| = t, step t adds the candidate
c not in S that maximises

  J(T) = 2 / (n t) sum_{i in all, j in T} k(x_i, x_j)
         - 1 / t^2 sum_{i, j in T} k(x_i, x_j).

J(S + {c}) = const + 2 r_c / (n t) - (2 s_c + k(x_c, x_c)) / t^2, with r_c the
kernel row sum and s_c = sum_{j in S} k(x_c, x_j) kept as a running sum: one
vectorised score over all candidates per step, one kernel column per chosen
point. Ties go to the lowest index (`jnp.argmax` returns the first maximum).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit.criticism import kernel


class PrototypeState(NamedTuple):
  """The greedy search after some steps.

  Attributes:
    chosen: int32 [m] indices chosen so far, -1 for steps not taken.
    taken: bool [n] True on chosen points.
    proto_sums: [n] s_i = sum_{j in S} k(x_i, x_j).
    count: |S|.
  """
  chosen: jax.Array
  taken: jax.Array
  proto_sums: jax.Array
  count: jax.Array


def scores(row_sums: jax.Array, proto_sums: jax.Array, size: jax.Array,
           num_points: jax.Array) -> jax.Array:
  """J(S + {c}) for every c, without the terms common to all candidates.

  Args:
    row_sums: [n] r_c.
    proto_sums: [n] s_c.
    size: t = |S| + 1.
    num_points: n (points in the group, padding excluded).

  Returns:
    [n] 2 r_c / (n t) - (2 s_c + 1) / t^2 (k(x, x) = 1 for the RBF kernel).
  """
  return 2 * row_sums / (num_points * size) - (2 * proto_sums + 1) / size**2


def select(x: jax.Array, mask: jax.Array, row_sums: jax.Array,
           gamma: jax.Array, num_prototypes: int) -> PrototypeState:
  """Greedy prototypes of one group.

  Args:
    x: [n, d] features (padding rows anywhere).
    mask: bool [n], False on padding rows.
    row_sums: [n] `kernel.kernel_row_sums` of the group.
    gamma: kernel width.
    num_prototypes: m; steps with no candidate left choose -1.

  Returns:
    The final state; `chosen` [m] in selection order.
  """
  n = x.shape[0]
  num_points = mask.sum().astype(x.dtype)
  init = PrototypeState(
      chosen=jnp.full((num_prototypes,), -1, jnp.int32),
      taken=jnp.zeros((n,), bool), proto_sums=jnp.zeros((n,), x.dtype),
      count=jnp.zeros((), jnp.int32))

  def step(t, state: PrototypeState) -> PrototypeState:
    size = (state.count + 1).astype(x.dtype)
    valid = mask & ~state.taken
    score = jnp.where(valid, scores(row_sums, state.proto_sums, size,
                                    num_points), -jnp.inf)
    best = jnp.argmax(score)
    ok = valid[best]
    column = jnp.where(ok, kernel.kernel_column(x, mask, best, gamma), 0)
    return PrototypeState(
        chosen=state.chosen.at[t].set(
            jnp.where(ok, best, -1).astype(jnp.int32)),
        taken=state.taken.at[best].set(state.taken[best] | ok),
        proto_sums=state.proto_sums + column,
        count=state.count + ok.astype(jnp.int32))

  return jax.lax.fori_loop(0, num_prototypes, step, init)


def mmd2(row_sums: jax.Array, mask: jax.Array, proto_sums: jax.Array,
         prototypes: jax.Array) -> jax.Array:
  """MMD^2 between a group and its prototypes (NaN if there are none).

  MMD^2 = 1/n^2 sum_{i,j} k_ij - 2/(n m) sum_{j in S} r_j
          + 1/m^2 sum_{i,j in S} k_ij.

  Args:
    row_sums: [n] r_i.
    mask: bool [n], False on padding rows.
    proto_sums: [n] s_i = sum_{j in S} k(x_i, x_j).
    prototypes: int [m] indices of S, -1 = none.

  Returns:
    Scalar MMD^2.
  """
  n = mask.sum().astype(row_sums.dtype)
  chosen = prototypes >= 0
  m = chosen.sum().astype(row_sums.dtype)
  index = jnp.maximum(prototypes, 0)
  cross = jnp.where(chosen, row_sums[index], 0).sum()
  within = jnp.where(chosen, proto_sums[index], 0).sum()
  value = row_sums.sum() / n**2 - 2 * cross / (n * m) + within / m**2
  return jnp.where(m > 0, value, jnp.nan)
