"""Greedy MMD-critic criticisms: points the prototypes represent worst.

Witness w(x) = 1/n sum_i k(x, x_i) - 1/m sum_{j in S} k(x, x_j). With C the
criticisms so far, each step adds the candidate c (not a prototype, not in C)
maximising

  sum_{l in C + {c}} |w(x_l)| + log det K[C + {c}, C + {c}]

(`regularizer="none"` drops the log-det diversity term). By the Schur
complement, log det K[C + {c}] = log det K[C] + log(k_cc - k_Cc^T K_C^-1 k_Cc):
the residuals k_cc - |L^-1 k_Cc|^2 of every candidate (L the Cholesky factor of
K_C) are updated by one rank-one step per chosen point (as in greedy DPP MAP
inference), so no determinant is ever formed. Candidates whose residual is at
most 100 machine epsilons (K numerically singular: a duplicate of a chosen
criticism) are ineligible. Ties go to the lowest index.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit.criticism import kernel

REGULARIZERS = ("logdet", "none")


class CriticismState(NamedTuple):
  """The greedy search after some steps.

  Attributes:
    chosen: int32 [c] indices chosen so far, -1 for steps not taken.
    taken: bool [n] True on chosen points.
    factors: [n, c] row i holds L^-1 k_Ci (zero columns for steps to come).
    residual: [n] k_ii - |L^-1 k_Ci|^2, the factor log det grows by.
    count: |C|.
  """
  chosen: jax.Array
  taken: jax.Array
  factors: jax.Array
  residual: jax.Array
  count: jax.Array


def prototype_sums(x: jax.Array, mask: jax.Array, prototypes: jax.Array,
                   gamma: jax.Array) -> jax.Array:
  """s_i = sum_{j in S} k(x_i, x_j) [n] for prototypes [m] (-1 = none)."""

  def add(total, p):
    column = kernel.kernel_column(x, mask, jnp.maximum(p, 0), gamma)
    return total + jnp.where(p >= 0, column, 0), None

  total, _ = jax.lax.scan(add, jnp.zeros(x.shape[:1], x.dtype), prototypes)
  return total


def witness(row_sums: jax.Array, proto_sums: jax.Array, mask: jax.Array,
            num_prototypes: jax.Array) -> jax.Array:
  """w_i = r_i / n - s_i / m [n] (0 on padding rows)."""
  n = mask.sum().astype(row_sums.dtype)
  m = jnp.maximum(num_prototypes, 1).astype(row_sums.dtype)
  return jnp.where(mask, row_sums / n - proto_sums / m, 0)


def select(x: jax.Array, mask: jax.Array, witness_values: jax.Array,
           prototypes: jax.Array, gamma: jax.Array, num_criticisms: int,
           regularizer: str = "logdet") -> CriticismState:
  """Greedy criticisms of one group.

  Args:
    x: [n, d] features.
    mask: bool [n], False on padding rows.
    witness_values: [n] `witness` of the group.
    prototypes: int [m] prototype indices (-1 = none), never chosen.
    gamma: kernel width.
    num_criticisms: c; steps with no eligible candidate choose -1.
    regularizer: "logdet" or "none".

  Returns:
    The final state; `chosen` [c] in selection order.
  """
  if regularizer not in REGULARIZERS:
    raise ValueError(f"regularizer must be one of {REGULARIZERS}, got "
                     f"'{regularizer}'")
  n = x.shape[0]
  is_prototype = jnp.zeros((n,), bool).at[prototypes].set(
      prototypes >= 0, mode="drop")
  gain = jnp.abs(witness_values)
  init = CriticismState(
      chosen=jnp.full((num_criticisms,), -1, jnp.int32),
      taken=is_prototype, factors=jnp.zeros((n, num_criticisms), x.dtype),
      residual=jnp.ones((n,), x.dtype), count=jnp.zeros((), jnp.int32))

  def step(t, state: CriticismState) -> CriticismState:
    valid = mask & ~state.taken
    if regularizer == "logdet":
      valid &= state.residual > 100 * jnp.finfo(x.dtype).eps
      score = gain + jnp.log(jnp.where(valid, state.residual, 1))
    else:
      score = gain
    score = jnp.where(valid, score, -jnp.inf)
    best = jnp.argmax(score)
    ok = valid[best]
    column = kernel.kernel_column(x, mask, best, gamma)
    pivot = jnp.sqrt(jnp.where(ok, state.residual[best], 1))
    projected = jnp.dot(state.factors, state.factors[best],
                        precision=jax.lax.Precision.HIGHEST)
    new = (column - projected) / pivot
    new = jnp.where(ok & mask, new, 0)
    return CriticismState(
        chosen=state.chosen.at[t].set(
            jnp.where(ok, best, -1).astype(jnp.int32)),
        taken=state.taken.at[best].set(state.taken[best] | ok),
        factors=state.factors.at[:, t].set(new),
        residual=state.residual - new**2,
        count=state.count + ok.astype(jnp.int32))

  if not num_criticisms:
    return init
  return jax.lax.fori_loop(0, num_criticisms, step, init)
