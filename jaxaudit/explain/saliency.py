"""Vanilla gradient saliency (Simonyan et al., 2014) and gradient x input."""

from __future__ import annotations

import jax
import ml_collections

from jaxaudit.explain.attribution import (Attribution, AttributionFn, LogitsFn,
                                          target_gradients)


def vanilla_gradient(logits_fn: LogitsFn, images: jax.Array,
                     targets: jax.Array) -> jax.Array:
  """d logit[target] / d image, float32 [B, H, W, 3]."""
  return target_gradients(logits_fn, images, targets)


def gradient_x_input(logits_fn: LogitsFn, images: jax.Array,
                     targets: jax.Array) -> jax.Array:
  """Gradient times input (Shrikumar et al., 2016), float32 [B, H, W, 3].

  It is integrated gradients from a black baseline with a single right-Riemann
  step; exact for a function linear in the input.
  """
  return images * target_gradients(logits_fn, images, targets)


def vanilla_from_config(config: ml_collections.ConfigDict) -> AttributionFn:
  del config
  return lambda logits_fn, images, targets, keys: Attribution(
      vanilla_gradient(logits_fn, images, targets), {})


def gradient_x_input_from_config(
    config: ml_collections.ConfigDict) -> AttributionFn:
  del config
  return lambda logits_fn, images, targets, keys: Attribution(
      gradient_x_input(logits_fn, images, targets), {})
