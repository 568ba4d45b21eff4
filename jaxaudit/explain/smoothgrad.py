"""SmoothGrad (Smilkov et al., 2017): gradients averaged over noisy copies.

The noise samples are the axis of a `lax.scan`, so memory is that of one
gradient whatever the number of samples. Each example draws its noise from its
own key, so results do not depend on batching or devices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jaxaudit import progress
from jaxaudit.errors import ParameterError
from jaxaudit.explain.attribution import (Attribution, AttributionFn, LogitsFn,
                                          target_gradients)


def smoothgrad(logits_fn: LogitsFn, images: jax.Array, targets: jax.Array,
               keys: jax.Array, *, samples: int, noise: float) -> jax.Array:
  """Mean gradient of the target logit over `samples` Gaussian perturbations.

  Args:
    logits_fn: images -> logits [B, K].
    images: float32 [B, H, W, 3] in [0, 1].
    targets: int [B].
    keys: per-example PRNG keys [B].
    samples: number of noisy copies.
    noise: noise standard deviation, as a fraction of the [0, 1] pixel range.

  Returns:
    float32 [B, H, W, 3].
  """

  def step(total, index):
    progress.tick("smoothgrad", index, samples)
    sample_keys = jax.vmap(lambda k: jax.random.fold_in(k, index))(keys)
    eps = jax.vmap(lambda k: jax.random.normal(k, images.shape[1:],
                                               images.dtype))(sample_keys)
    grads = target_gradients(logits_fn, images + noise * eps, targets)
    return total + grads, None

  total, _ = jax.lax.scan(step, jnp.zeros_like(images), jnp.arange(samples))
  return total / samples


def from_config(config: ml_collections.ConfigDict) -> AttributionFn:
  """`config.explain.smoothgrad.{samples, noise}`."""
  cfg = config.smoothgrad
  if cfg.samples < 1:
    raise ParameterError("smoothgrad.samples", f"must be >= 1, got "
                         f"{cfg.samples}")
  return lambda logits_fn, images, targets, keys: Attribution(
      smoothgrad(logits_fn, images, targets, keys, samples=cfg.samples,
                 noise=cfg.noise), {})
