"""What every attribution method returns, and the target-logit gradient they share.

Attributions explain the *logit* of a target class, not its probability: logits
are what the network computes before the softmax couples the classes, and with
them the completeness axiom of integrated gradients (attributions sum to
f(x) - f(baseline)) is checked on the quantity that is integrated.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit import conv_layout

LogitsFn = Callable[[jax.Array], jax.Array]  # images [B, H, W, 3] -> [B, K].


class Attribution(NamedTuple):
  """A method's output for a batch.

  Attributes:
    attributions: float32 [B, H, W, 3], one value per input pixel and channel.
    scalars: per-example diagnostics, name -> float32 [B] (e.g. IG completeness).
  """
  attributions: jax.Array
  scalars: dict[str, jax.Array]


# (logits_fn, images [B, H, W, 3], targets int [B], keys [B]) -> Attribution.
AttributionFn = Callable[[LogitsFn, jax.Array, jax.Array, jax.Array],
                         Attribution]


def target_logits(logits_fn: LogitsFn, images: jax.Array,
                  targets: jax.Array) -> jax.Array:
  """The logit of each example's target class.

  Args:
    logits_fn: images -> logits [B, K].
    images: float32 [B, H, W, 3].
    targets: int [B].

  Returns:
    float32 [B].
  """
  logits = logits_fn(images)
  return jnp.take_along_axis(logits, targets[:, None], axis=-1)[:, 0]


def target_gradients(logits_fn: LogitsFn, images: jax.Array,
                     targets: jax.Array) -> jax.Array:
  """d logit[target] / d image for every example (examples are independent).

  Args:
    logits_fn: images -> logits [B, K]; examples must not interact (eval mode).
    images: float32 [B, H, W, 3].
    targets: int [B].

  Returns:
    Gradients float32 [B, H, W, 3]. The convolutions get HWIO kernels
    (`conv_layout`), ~5-10x faster on XLA:CPU inside the methods' scans.
  """
  grad = jax.grad(lambda x: target_logits(logits_fn, x, targets).sum())
  return conv_layout.canonical_convolutions(grad)(images)


def pixel_map(attributions: jax.Array) -> jax.Array:
  """Per-pixel importance: sum over channels of |attribution|, [B, H, W]."""
  return jnp.abs(attributions).sum(-1)
