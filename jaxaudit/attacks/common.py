"""What every attack shares: the result type, norms, projections, scoring.

Attacks work in pixel space: images are float32 `[B, H, W, 3]` in [0, 1] and the
model's normalisation sits inside `logits_fn`, so an epsilon means the same for
every model. Results follow Foolbox 3: `raw` adversarials as the attack found
them, `clipped` ones projected into each epsilon ball and the pixel range, and
`success` per epsilon, judged on `clipped`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit.errors import ParameterError

LogitsFn = Callable[[jax.Array], jax.Array]  # [B, H, W, 3] -> [B, K]
NORMS = ("linf", "l2")
_TINY = 1e-12


class AttackResult(NamedTuple):
  """One attack on a batch at E epsilons.

  Attributes:
    raw: float32 [E, B, H, W, 3] adversarials as the attack returned them.
    clipped: float32 [E, B, H, W, 3] `raw` projected into the epsilon ball
      around the images and into [0, 1].
    success: bool [E, B] `clipped` is adversarial (misclassified, or the
      target class for targeted attacks).
    norm: float32 [E, B] perturbation norm of `clipped` (the attack's norm).
    adv_class: int32 [E, B] the model's class for `clipped`.
    min_norm: float32 [B] the smallest adversarial perturbation found: for
      minimal attacks (DeepFool, C&W) the norm of the unclipped adversarial,
      for fixed-epsilon attacks the norm at the smallest successful epsilon;
      +inf where no adversarial was found.
  """
  raw: jax.Array
  clipped: jax.Array
  success: jax.Array
  norm: jax.Array
  adv_class: jax.Array
  min_norm: jax.Array


def check_norm(norm: str) -> None:
  """Raises `ParameterError` unless `norm` is one of `NORMS`."""
  if norm not in NORMS:
    raise ParameterError("norm", f"unknown '{norm}'; valid: "
                         + ", ".join(NORMS))


def epsilon_rows(epsilons: jax.Array, batch: int) -> jax.Array:
  """Radii float [E] (every example at every epsilon) or [E, B] (one per
  epsilon and example) -> [E, B].

  Raises:
    ParameterError: any other shape.
  """
  epsilons = jnp.asarray(epsilons)
  if epsilons.ndim == 1:
    epsilons = epsilons[:, None]
  if epsilons.ndim != 2 or epsilons.shape[1] not in (1, batch):
    raise ParameterError("epsilons", f"must be [E] or [E, {batch}], got "
                         f"shape {tuple(epsilons.shape)}")
  return jnp.broadcast_to(epsilons, (epsilons.shape[0], batch))


def lp_norm(delta: jax.Array, norm: str) -> jax.Array:
  """Per-example norm of perturbations [..., H, W, C] -> [...]."""
  axes = (-3, -2, -1)
  if norm == "linf":
    return jnp.max(jnp.abs(delta), axis=axes)
  return jnp.sqrt(jnp.sum(jnp.square(delta), axis=axes))


def _per_example(value: jax.Array, like: jax.Array) -> jax.Array:
  """[B] -> [B, 1, 1, 1] to broadcast against images [B, H, W, C]."""
  return jnp.reshape(value, value.shape + (1,) * (like.ndim - value.ndim))


def project(delta: jax.Array, eps: jax.Array, norm: str) -> jax.Array:
  """Projects perturbations [B, H, W, C] into the ball of radius eps (scalar
  or [B])."""
  eps = jnp.asarray(eps, delta.dtype)
  if norm == "linf":
    eps = _per_example(jnp.broadcast_to(eps, delta.shape[:1]), delta)
    return jnp.clip(delta, -eps, eps)
  factor = jnp.minimum(1.0, eps / jnp.maximum(lp_norm(delta, "l2"), _TINY))
  return delta * _per_example(factor, delta)


def clip_to_ball(images: jax.Array, adversarials: jax.Array, eps: jax.Array,
                 norm: str) -> jax.Array:
  """`adversarials` [B, H, W, C] moved into the eps ball around `images` and
  into [0, 1] (clipping to [0, 1] keeps them in the ball)."""
  return jnp.clip(images + project(adversarials - images, eps, norm), 0.0, 1.0)


def normalize_gradient(grad: jax.Array, norm: str) -> jax.Array:
  """Steepest-ascent direction of unit norm: sign for L-inf, g / |g|_2 for L2."""
  if norm == "linf":
    return jnp.sign(grad)
  return grad / _per_example(jnp.maximum(lp_norm(grad, "l2"), _TINY), grad)


def is_adversarial(logits: jax.Array, labels: jax.Array,
                   targets: jax.Array | None) -> jax.Array:
  """[..., K] logits -> bool [...]: misclassified, or the target if given."""
  predicted = jnp.argmax(logits, axis=-1)
  if targets is None:
    return predicted != labels
  return predicted == targets


def cross_entropy(logits: jax.Array, classes: jax.Array) -> jax.Array:
  """Per-example cross-entropy [B] of logits [B, K] against classes [B]."""
  log_probs = jax.nn.log_softmax(logits)
  return -jnp.take_along_axis(log_probs, classes[:, None], axis=-1)[:, 0]


def margin(logits: jax.Array, classes: jax.Array) -> jax.Array:
  """Best other logit minus the logit of `classes` [B]; > 0 = misclassified."""
  own = jnp.take_along_axis(logits, classes[:, None], axis=-1)[:, 0]
  others = jnp.where(jax.nn.one_hot(classes, logits.shape[-1], dtype=bool),
                     -jnp.inf, logits)
  return jnp.max(others, axis=-1) - own


def score_epsilons(logits_fn: LogitsFn, images: jax.Array, labels: jax.Array,
                   raw: jax.Array, epsilons: jax.Array, norm: str,
                   targets: jax.Array | None = None) -> AttackResult:
  """Clips raw adversarials to each epsilon and scores them (Foolbox style).

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: clean images [B, H, W, 3] in [0, 1].
    labels: int [B] true (or reference) classes.
    raw: [E, B, H, W, 3] the attack's adversarials, one per epsilon.
    epsilons: float [E] radii in the attack's norm, or [E, B] (a radius per
      epsilon and example).
    norm: "linf" or "l2".
    targets: int [B] target classes for targeted attacks, else None.

  Returns:
    An `AttackResult`; `min_norm` is the norm at the smallest successful
    epsilon (inf if none).
  """
  clipped = jax.vmap(lambda x, e: clip_to_ball(images, x, e, norm))(raw,
                                                                    epsilons)
  logits = jax.vmap(logits_fn)(clipped)
  success = is_adversarial(logits, labels, targets)
  norms = lp_norm(clipped - images, norm)
  min_norm = jnp.min(jnp.where(success, norms, jnp.inf), axis=0)
  return AttackResult(raw=raw, clipped=clipped, success=success, norm=norms,
                      adv_class=jnp.argmax(logits, -1).astype(jnp.int32),
                      min_norm=min_norm)


def score_minimal(logits_fn: LogitsFn, images: jax.Array, labels: jax.Array,
                  raw: jax.Array, epsilons: jax.Array, norm: str,
                  min_norm: jax.Array | None = None) -> AttackResult:
  """Scores one minimal adversarial per example [B, H, W, 3] at E epsilons.

  `min_norm` is the norm of `raw` itself where it is adversarial (inf where
  the attack gave up). An attack that evaluated `raw` inside its loop passes
  that float [B] (inf where none was adversarial) and saves a forward pass.
  """
  raw = jnp.clip(raw, 0.0, 1.0)
  eps_count = epsilons.shape[0]
  result = score_epsilons(logits_fn, images, labels,
                          jnp.broadcast_to(raw, (eps_count,) + raw.shape),
                          epsilons, norm)
  if min_norm is None:
    found = is_adversarial(logits_fn(raw), labels, None)
    min_norm = jnp.where(found, lp_norm(raw - images, norm), jnp.inf)
  return result._replace(min_norm=min_norm)
