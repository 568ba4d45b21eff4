"""Carlini-Wagner L2 (Carlini & Wagner 2017) with a binary search over c.

Minimises |x' - x|_2^2 + c * max(Z_y - max_{i != y} Z_i + confidence, 0) over
x' = (tanh(w) + 1) / 2 with Adam, for `binary_search_steps` values of c per
example (x10 until the first success, then bisection), keeping the smallest
adversarial found. Both loops are `lax.scan`/`fori_loop`s; the gradients get
XLA:CPU's fast convolution layouts (`jaxaudit.conv_layout`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxaudit import conv_layout
from jaxaudit import progress
from jaxaudit.attacks import common


class _Search(NamedTuple):
  const: jax.Array  # [B] current c.
  lower: jax.Array  # [B] largest c known to fail.
  upper: jax.Array  # [B] smallest c known to succeed (inf if none).
  best: jax.Array  # [B, H, W, 3] smallest adversarial so far.
  best_norm: jax.Array  # [B] its squared L2 norm (inf if none).


def _to_model(w: jax.Array) -> jax.Array:
  return (jnp.tanh(w) + 1.0) / 2.0


def _to_tanh(x: jax.Array) -> jax.Array:
  return jnp.arctanh(jnp.clip(x * 2.0 - 1.0, -1.0 + 1e-6, 1.0 - 1e-6))


def cw_l2_minimal(logits_fn: common.LogitsFn, images: jax.Array,
                  labels: jax.Array, *, binary_search_steps: int = 5,
                  steps: int = 100, stepsize: float = 0.01,
                  confidence: float = 0.0,
                  initial_const: float = 0.001) -> jax.Array:
  """C&W L2 adversarials.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes.
    binary_search_steps: values of c tried per example.
    steps: Adam steps per value of c.
    stepsize: Adam learning rate (in tanh space).
    confidence: required logit margin.
    initial_const: first c.

  Returns:
    [B, H, W, 3] the smallest adversarial found per example, or the image
    itself where none was found.
  """
  w0 = _to_tanh(images)
  optimizer = optax.adam(stepsize)
  batch = labels.shape[0]

  def objective(w, const):
    x = _to_model(w)
    logits = logits_fn(x)
    distance = jnp.sum(jnp.square(x - images), axis=(1, 2, 3))
    hinge = jnp.maximum(-common.margin(logits, labels) + confidence, 0.0)
    return jnp.sum(distance + const * hinge), (x, logits, distance)

  grad_fn = conv_layout.canonical_convolutions(
      jax.grad(objective, has_aux=True))

  def search_step(search: _Search, round_: jax.Array
                  ) -> tuple[_Search, None]:
    def body(i, carry):
      progress.tick("c&w", round_ * steps + i, binary_search_steps * steps)
      w, opt_state, best, best_norm, found = carry
      grads, (x, logits, distance) = grad_fn(w, search.const)
      adversarial = common.margin(logits, labels) > confidence
      better = adversarial & (distance < best_norm)
      best = jnp.where(better[:, None, None, None], x, best)
      best_norm = jnp.where(better, distance, best_norm)
      updates, opt_state = optimizer.update(grads, opt_state, w)
      return (optax.apply_updates(w, updates), opt_state, best, best_norm,
              found | adversarial)

    carry = (w0, optimizer.init(w0), search.best, search.best_norm,
             jnp.zeros((batch,), bool))
    _, _, best, best_norm, found = jax.lax.fori_loop(0, steps, body, carry)
    upper = jnp.where(found, jnp.minimum(search.upper, search.const),
                      search.upper)
    lower = jnp.where(found, search.lower,
                      jnp.maximum(search.lower, search.const))
    const = jnp.where(jnp.isinf(upper), search.const * 10.0,
                      (lower + upper) / 2.0)
    return _Search(const, lower, upper, best, best_norm), None

  init = _Search(jnp.full((batch,), initial_const, jnp.float32),
                 jnp.zeros((batch,), jnp.float32),
                 jnp.full((batch,), jnp.inf, jnp.float32), images,
                 jnp.full((batch,), jnp.inf, jnp.float32))
  search, _ = jax.lax.scan(search_step, init,
                           jnp.arange(binary_search_steps))
  return search.best


def cw_l2(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
          epsilons: jax.Array, keys: jax.Array, *,
          binary_search_steps: int = 5, steps: int = 100,
          stepsize: float = 0.01, confidence: float = 0.0,
          initial_const: float = 0.001) -> common.AttackResult:
  """C&W L2 scored at each L2 epsilon (Foolbox's minimisation-attack style).

  Args:
    logits_fn, images, labels, binary_search_steps, steps, stepsize,
      confidence, initial_const: see `cw_l2_minimal`.
    epsilons: float [E] L2 radii to clip the minimal adversarial to.
    keys: [B] PRNG keys (unused: C&W is deterministic).

  Returns:
    An `AttackResult`; `min_norm` is C&W's smallest adversarial L2 norm.
  """
  del keys
  raw = cw_l2_minimal(logits_fn, images, labels,
                      binary_search_steps=binary_search_steps, steps=steps,
                      stepsize=stepsize, confidence=confidence,
                      initial_const=initial_const)
  return common.score_minimal(logits_fn, images, labels, raw, epsilons, "l2")
