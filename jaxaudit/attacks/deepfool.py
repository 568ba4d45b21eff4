"""DeepFool (Moosavi-Dezfooli et al. 2016): a minimal L2 or L-inf perturbation.

At each step the classifier is linearised around x; among the `candidates`
top-scoring classes the nearest linearised decision boundary is crossed (times
1 + overshoot). An example stops moving once it is misclassified, so results do
not depend on the rest of its batch. The loop is a `while_loop` that ends when
every example is misclassified or after `steps` steps; its body's convolutions
get XLA:CPU's fast layouts (`jaxaudit.conv_layout`). As in Foolbox 3, the class-difference gradients come from one forward pass and a
batched backward pass per step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit import conv_layout
from jaxaudit import progress
from jaxaudit.attacks import common
from jaxaudit.errors import ParameterError


class _State(NamedTuple):
  step: jax.Array  # int scalar.
  x: jax.Array  # [B, H, W, 3] current images.
  total: jax.Array  # [B, H, W, 3] accumulated perturbation.
  active: jax.Array  # bool [B] not yet adversarial.


def deepfool_minimal(logits_fn: common.LogitsFn, images: jax.Array,
                     labels: jax.Array, *, norm: str = "l2", steps: int = 50,
                     candidates: int = 10,
                     overshoot: float = 0.02) -> jax.Array:
  """DeepFool's adversarials, unclipped in norm.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes (examples already misclassified stay put).
    norm: "l2" or "linf".
    steps: maximum linearisation steps.
    candidates: how many top-scoring classes (including the label) to consider.
    overshoot: relative overshoot past the linearised boundary.

  Returns:
    [B, H, W, 3] adversarials in [0, 1] (not adversarial where it gave up).
  """
  common.check_norm(norm)
  num_classes = jax.eval_shape(logits_fn, images[:1]).shape[-1]
  k = min(candidates, num_classes)
  if k < 2:
    raise ParameterError("candidates", f"must be >= 2, got {candidates}")
  top = jax.lax.top_k(logits_fn(images), k)[1]  # [B, k]
  # Class 0 is the label, then the other top classes (the label may not be
  # among them when the example is misclassified; it is frozen then).
  others = top[:, :k - 1]
  others = jnp.where(others == labels[:, None], top[:, k - 1:k], others)
  differences = (jax.nn.one_hot(others, num_classes)
                 - jax.nn.one_hot(labels, num_classes)[:, None, :])
  differences = jnp.moveaxis(differences, 1, 0)  # [k - 1, B, K]
  dual = "l1" if norm == "linf" else "l2"

  def body(state: _State) -> _State:
    progress.tick("deepfool", state.step, steps)
    logits, pullback = jax.vjp(logits_fn, state.x)
    active = state.active & ~common.is_adversarial(logits, labels, None)
    losses = jnp.einsum("cbk,bk->bc", differences, logits)  # [B, k - 1] < 0.
    grads = jax.vmap(lambda d: pullback(d)[0])(differences)  # [k-1, B, ...]
    grads = jnp.moveaxis(grads, 0, 1)  # [B, k - 1, H, W, 3]
    if dual == "l2":
      grad_norms = jnp.sqrt(jnp.sum(jnp.square(grads), axis=(-3, -2, -1)))
    else:
      grad_norms = jnp.sum(jnp.abs(grads), axis=(-3, -2, -1))
    distances = jnp.abs(losses) / (grad_norms + 1e-8)  # [B, k - 1]
    best = jnp.argmin(distances, axis=1)
    # + 1e-4 (as Foolbox): steps just past the linearised boundary, so
    # examples whose distance rounds to zero still cross it.
    distance = jnp.take_along_axis(distances, best[:, None], 1)[:, 0] + 1e-4
    grad = jnp.take_along_axis(grads, best[:, None, None, None, None], 1)[:, 0]
    grad_norm = jnp.take_along_axis(grad_norms, best[:, None], 1)[:, 0]
    if norm == "l2":
      step = (distance / (grad_norm + 1e-8))[:, None, None, None] * grad
    else:
      step = distance[:, None, None, None] * jnp.sign(grad)
    move = active[:, None, None, None]
    total = jnp.where(move, state.total + step, state.total)
    x = jnp.where(move, jnp.clip(images + (1.0 + overshoot) * total, 0.0, 1.0),
                  state.x)
    return _State(state.step + 1, x, total, active)

  def cond(state: _State) -> jax.Array:
    return (state.step < steps) & jnp.any(state.active)

  init = _State(jnp.zeros((), jnp.int32), images, jnp.zeros_like(images),
                jnp.ones(labels.shape, bool))
  return jax.lax.while_loop(
      cond, conv_layout.canonical_convolutions(body), init).x


def deepfool(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
             epsilons: jax.Array, keys: jax.Array, *, norm: str = "l2",
             steps: int = 50, candidates: int = 10,
             overshoot: float = 0.02) -> common.AttackResult:
  """DeepFool scored at each epsilon (Foolbox's minimisation-attack style).

  Args:
    logits_fn, images, labels, norm, steps, candidates, overshoot: see
      `deepfool_minimal`.
    epsilons: float [E] radii (in `norm`) to clip the minimal adversarial to.
    keys: [B] PRNG keys (unused: DeepFool is deterministic).

  Returns:
    An `AttackResult`; `min_norm` is DeepFool's minimal perturbation.
  """
  del keys
  raw = deepfool_minimal(logits_fn, images, labels, norm=norm, steps=steps,
                         candidates=candidates, overshoot=overshoot)
  return common.score_minimal(logits_fn, images, labels, raw, epsilons, norm)
