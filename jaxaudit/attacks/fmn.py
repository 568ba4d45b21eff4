"""FMN, the Fast Minimum-Norm attack (Pintor et al., NeurIPS 2021), L-inf/L2.

Each example keeps its own radius epsilon_k. While the current point is not
adversarial, epsilon_k grows: to the first-order estimate of the distance to
the decision boundary, |delta| + |margin| / |grad|_dual, until a first
adversarial is found, then by a factor 1 + gamma_k; while it is adversarial,
epsilon_k shrinks by 1 - gamma_k (and never exceeds the smallest adversarial
found). Each step moves delta by alpha_k * grad / |grad|_2 along the gradient
of the logit difference (best other class minus the label's), then projects it
into the epsilon_k ball and [0, 1]. gamma_k and alpha_k are cosine-annealed
from `gamma` to 0.001 and from `alpha_init` to `alpha_final`, as in the
authors' code and Foolbox 3, whose defaults (for both norms) these are. The
smallest adversarial seen is the result, so one run gives every example's
minimal perturbation and hence the whole robust-accuracy-vs-epsilon curve.

Unlike Foolbox 3.3.4, whose L2 projection is a no-op (it divides the norm by
itself), the L2 iterates are projected into the epsilon_k ball as in the paper.
The loop is a `fori_loop` whose gradients get XLA:CPU's fast convolution
layouts (`jaxaudit.conv_layout`); every example's path is independent of the
rest of its batch.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit import conv_layout
from jaxaudit import progress
from jaxaudit.attacks import common
from jaxaudit.errors import ParameterError

_GAMMA_FINAL = 0.001  # Final epsilon step, as in the authors' code and Foolbox.
_TINY = 1e-12


class _State(NamedTuple):
  delta: jax.Array  # [B, H, W, 3] current perturbation.
  epsilon: jax.Array  # [B] current radius.
  best: jax.Array  # [B, H, W, 3] smallest adversarial perturbation so far.
  best_norm: jax.Array  # [B] its norm (inf if none yet).
  found: jax.Array  # bool [B] an adversarial has been seen.


def _cosine(start: float, end: float, step: jax.Array, steps: int) -> jax.Array:
  """Cosine annealing from `start` (step 0) towards `end` (step `steps`)."""
  return end + (start - end) * (1.0 + jnp.cos(math.pi * step / steps)) / 2.0


def _check(norm: str, steps: int, gamma: float, alpha_init: float,
           alpha_final: float | None, init_epsilon: float | None) -> None:
  """Raises `ParameterError` for a bad hyperparameter."""
  common.check_norm(norm)
  if steps < 1:
    raise ParameterError("steps", f"must be >= 1, got {steps}")
  if not 0.0 < gamma < 1.0:
    raise ParameterError("gamma", f"must be in (0, 1), got {gamma}")
  if not alpha_init > 0.0:
    raise ParameterError("alpha_init", f"must be > 0, got {alpha_init}")
  if alpha_final is not None and not 0.0 < alpha_final <= alpha_init:
    raise ParameterError("alpha_final", "must be in (0, alpha_init], got "
                         f"{alpha_final}")
  if init_epsilon is not None and not init_epsilon > 0.0:
    raise ParameterError("init_epsilon", f"must be > 0, got {init_epsilon}")


def fmn(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
        epsilons: jax.Array, keys: jax.Array, *, norm: str = "linf",
        steps: int = 100, gamma: float = 0.05, alpha_init: float = 1.0,
        alpha_final: float | None = None,
        init_epsilon: float | None = None) -> common.AttackResult:
  """FMN's minimal adversarials, scored at each epsilon.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes.
    epsilons: float32 [E] radii (in `norm`, [0, 1] pixel units) to score at.
    keys: [B] PRNG keys (unused: FMN is deterministic).
    norm: "linf" or "l2".
    steps: gradient steps (one forward and backward pass each).
    gamma: initial relative epsilon step, in (0, 1).
    alpha_init: initial L2 length of the gradient step.
    alpha_final: final step length; None: alpha_init / 100.
    init_epsilon: radius of the first step's ball; None: the first-order
      estimate of the distance to the boundary (the paper's rule).

  Returns:
    An `AttackResult` (see `common.score_minimal`); `min_norm` [B] is the
    norm of the smallest adversarial found, 0 for examples misclassified from
    the start, inf where none was found.
  """
  del keys
  _check(norm, steps, gamma, alpha_init, alpha_final, init_epsilon)
  alpha_final = alpha_init / 100.0 if alpha_final is None else alpha_final
  dual = "l1" if norm == "linf" else "l2"

  def margin_sum(x):
    logits = logits_fn(x)
    return jnp.sum(common.margin(logits, labels)), logits

  grad_fn = conv_layout.canonical_convolutions(
      jax.grad(margin_sum, has_aux=True))
  worst_norm = common.lp_norm(jnp.maximum(images, 1.0 - images), norm)

  def body(step: jax.Array, state: _State) -> _State:
    progress.tick("fmn", step, steps)
    grad, logits = grad_fn(images + state.delta)
    loss = common.margin(logits, labels)  # [B] > 0 where adversarial.
    adversarial = common.is_adversarial(logits, labels, None)
    delta_norm = common.lp_norm(state.delta, norm)
    better = adversarial & (delta_norm < state.best_norm)
    best = jnp.where(better[:, None, None, None], state.delta, state.best)
    best_norm = jnp.where(better, delta_norm, state.best_norm)
    found = state.found | adversarial
    gamma_k = _cosine(gamma, _GAMMA_FINAL, step, steps)
    flat = jnp.reshape(grad, (grad.shape[0], -1))
    dual_norm = (jnp.sum(jnp.abs(flat), -1) if dual == "l1"
                 else jnp.sqrt(jnp.sum(jnp.square(flat), -1)))
    estimate = delta_norm + jnp.abs(loss) / jnp.maximum(dual_norm, _TINY)
    if init_epsilon is not None:
      estimate = jnp.where(step == 0, init_epsilon, estimate)
    epsilon = jnp.where(
        adversarial, jnp.minimum(state.epsilon * (1.0 - gamma_k), best_norm),
        jnp.where(found, state.epsilon * (1.0 + gamma_k), estimate))
    epsilon = jnp.minimum(epsilon, worst_norm)
    alpha_k = _cosine(alpha_init, alpha_final, step, steps)
    delta = state.delta + alpha_k * common.normalize_gradient(grad, "l2")
    delta = common.clip_to_ball(images, images + delta, epsilon, norm) - images
    return _State(delta, epsilon, best, best_norm, found)

  batch = labels.shape[0]
  init = _State(jnp.zeros_like(images), jnp.full((batch,), jnp.inf),
                jnp.zeros_like(images), jnp.full((batch,), jnp.inf),
                jnp.zeros((batch,), bool))
  final = jax.lax.fori_loop(0, steps, body, init)
  # The best iterate was found adversarial where it was evaluated.
  return common.score_minimal(logits_fn, images, labels, images + final.best,
                              epsilons, norm, min_norm=final.best_norm)


fmn_linf = functools.partial(fmn, norm="linf")
fmn_l2 = functools.partial(fmn, norm="l2")
