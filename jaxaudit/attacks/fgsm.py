"""Fast gradient sign method (Goodfellow et al. 2015), L-inf.

One gradient of the cross-entropy serves every epsilon: x + eps * sign(g).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxaudit.attacks import common


def fgsm(logits_fn: common.LogitsFn, images: jax.Array, labels: jax.Array,
         epsilons: jax.Array, keys: jax.Array, *,
         targets: jax.Array | None = None) -> common.AttackResult:
  """One signed-gradient step per epsilon.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    labels: int [B] true classes.
    epsilons: float [E] L-inf radii in [0, 1] pixel units.
    keys: [B] per-example PRNG keys (unused: FGSM is deterministic).
    targets: int [B] to step towards instead of away from `labels`.

  Returns:
    An `AttackResult` with E epsilons.
  """
  del keys
  classes = labels if targets is None else targets
  grad = jax.grad(lambda x: jnp.sum(common.cross_entropy(logits_fn(x),
                                                         classes)))(images)
  direction = jnp.sign(grad) if targets is None else -jnp.sign(grad)
  raw = jax.vmap(lambda e: jnp.clip(images + e * direction, 0.0, 1.0))(epsilons)
  return common.score_epsilons(logits_fn, images, labels, raw, epsilons, "linf",
                               targets)
