"""Projected gradient descent (Madry et al. 2018) in the L-inf and L2 norms.

Random start in the ball, `steps` steepest-ascent steps of size
`rel_stepsize * eps`, each followed by projection into the ball and [0, 1].
Epsilons and restarts are vmapped axes; each example keeps, per epsilon, the
first restart that fools the model (else the one with the highest loss).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxaudit import conv_layout
from jaxaudit import progress
from jaxaudit.attacks import common
from jaxaudit.errors import ParameterError

LOSSES = ("ce", "margin")


def random_start(keys: jax.Array, shape: tuple[int, ...], eps: jax.Array,
                 norm: str) -> jax.Array:
  """Uniform perturbations in the eps ball, one per example key.

  Args:
    keys: [B] PRNG keys.
    shape: one example's shape (H, W, C).
    eps: scalar radius.
    norm: "linf" or "l2".

  Returns:
    [B, H, W, C] perturbations.
  """
  if norm == "linf":
    return jax.vmap(lambda k: jax.random.uniform(k, shape, minval=-eps,
                                                 maxval=eps))(keys)

  def one(key):
    direction_key, radius_key = jax.random.split(key)
    direction = jax.random.normal(direction_key, shape)
    direction /= jnp.maximum(jnp.linalg.norm(direction), 1e-12)
    size = direction.size
    radius = eps * jax.random.uniform(radius_key) ** (1.0 / size)
    return direction * radius

  return jax.vmap(one)(keys)


def _loss(logits: jax.Array, labels: jax.Array, targets: jax.Array | None,
          loss: str) -> jax.Array:
  """Per-example loss [B] that the attack ascends."""
  if targets is None:
    if loss == "ce":
      return common.cross_entropy(logits, labels)
    return common.margin(logits, labels)
  if loss == "ce":
    return -common.cross_entropy(logits, targets)
  return -common.margin(logits, targets)


def _pgd_run(logits_fn, images, labels, targets, eps, keys, *, norm, steps,
             rel_stepsize, use_random_start, loss):
  """One restart at one epsilon -> (adversarials [B, ...], loss [B],
  success [B])."""
  if use_random_start:
    start = random_start(keys, images.shape[1:], eps, norm)
    x = jnp.clip(images + start, 0.0, 1.0)
  else:
    x = images
  stepsize = rel_stepsize * eps
  loss_grad = conv_layout.canonical_convolutions(jax.grad(
      lambda z: jnp.sum(_loss(logits_fn(z), labels, targets, loss))))

  def body(i, x):
    progress.tick("pgd", i, steps)
    x = x + stepsize * common.normalize_gradient(loss_grad(x), norm)
    return common.clip_to_ball(images, x, eps, norm)

  x = jax.lax.fori_loop(0, steps, body, x)
  logits = logits_fn(x)
  return (x, _loss(logits, labels, targets, loss),
          common.is_adversarial(logits, labels, targets))


def pgd(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
        epsilons: jax.Array, keys: jax.Array, *, norm: str, steps: int = 10,
        rel_stepsize: float = 0.25, random_start: bool = True,
        restarts: int = 1, loss: str = "ce",
        targets: jax.Array | None = None) -> common.AttackResult:
  """PGD at every epsilon, with random restarts.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes.
    epsilons: float [E] radii in [0, 1] pixel units.
    keys: [B] per-example PRNG keys (random starts depend only on them).
    norm: "linf" or "l2".
    steps: gradient steps per restart.
    rel_stepsize: step size as a fraction of eps (2.5 / steps in Madry et al.).
    random_start: start uniformly in the ball (else at the image).
    restarts: independent random starts per epsilon.
    loss: "ce" (cross-entropy) or "margin" (C&W's logit margin).
    targets: int [B] target classes for a targeted attack, else None.

  Returns:
    An `AttackResult` with E epsilons.
  """
  common.check_norm(norm)
  if loss not in LOSSES:
    raise ParameterError("loss", f"unknown '{loss}'; valid: "
                         + ", ".join(LOSSES))
  if restarts < 1:
    raise ParameterError("restarts", f"must be >= 1, got {restarts}")
  if steps < 0:
    raise ParameterError("steps", f"must be >= 0, got {steps}")
  run = functools.partial(_pgd_run, logits_fn, images, labels, targets,
                          norm=norm, steps=steps, rel_stepsize=rel_stepsize,
                          use_random_start=random_start, loss=loss)
  restart_keys = jax.vmap(lambda r: jax.vmap(
      lambda k: jax.random.fold_in(k, r))(keys))(jnp.arange(restarts))
  per_restart = jax.vmap(run, in_axes=(None, 0))  # [R, B, ...]
  x, losses, success = jax.vmap(per_restart, in_axes=(0, None))(
      epsilons, restart_keys)  # [E, R, B, ...]
  best = jnp.argmax(jnp.where(success, jnp.inf, losses), axis=1)  # [E, B]
  raw = jnp.take_along_axis(x, best[:, None, :, None, None, None], axis=1)[:, 0]
  return common.score_epsilons(logits_fn, images, labels, raw, epsilons, norm,
                               targets)


pgd_linf = functools.partial(pgd, norm="linf")
pgd_l2 = functools.partial(pgd, norm="l2")
