"""Deletion and insertion curves (Petsiuk et al., RISE, 2018) of an attribution.

Pixels are ranked by a per-pixel importance map. Deletion replaces the top
k/K of the pixels with a black image and follows the target-class probability
as k goes from 0 to K: a faithful map makes it fall fast (low AUC). Insertion
starts from a blurred copy of the image (zeros would be out of distribution and
make every curve start near the chance level of "black image") and puts the top
pixels back: a faithful map makes it rise fast (high AUC). A random order is the
reference both should beat. The K + 1 points are a `lax.scan`, each point one
forward pass of the 2B deleted and inserted images.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit.explain.attribution import LogitsFn


class Curves(NamedTuple):
  """Target probability after removing / adding the top fraction of pixels.

  Attributes:
    deletion: float32 [B, K + 1], fraction k / K removed at column k.
    insertion: float32 [B, K + 1], fraction k / K restored at column k.
  """
  deletion: jax.Array
  insertion: jax.Array


def pixel_ranks(scores: jax.Array) -> jax.Array:
  """Rank of every pixel, 0 for the most important.

  Args:
    scores: float [B, H, W].

  Returns:
    int32 [B, H, W]; ties are broken by position (stable order).
  """
  batch = scores.shape[0]
  flat = scores.reshape(batch, -1)
  order = jnp.argsort(-flat, axis=-1, stable=True)
  ranks = jnp.zeros_like(order).at[jnp.arange(batch)[:, None], order].set(
      jnp.arange(flat.shape[1])[None, :])
  return ranks.reshape(scores.shape).astype(jnp.int32)


def random_scores(keys: jax.Array, shape: tuple[int, int]) -> jax.Array:
  """Uniform random per-pixel scores [B, H, W] from per-example keys [B]."""
  return jax.vmap(lambda k: jax.random.uniform(k, shape))(keys)


def deletion_insertion(logits_fn: LogitsFn, images: jax.Array,
                       ranks: jax.Array, targets: jax.Array,
                       deletion_baseline: jax.Array,
                       insertion_baseline: jax.Array, steps: int) -> Curves:
  """Deletion and insertion curves of the target-class probability.

  Args:
    logits_fn: images -> logits [N, K].
    images: float32 [B, H, W, 3].
    ranks: int [B, H, W] pixel order (0 first), from `pixel_ranks`.
    targets: int [B].
    deletion_baseline: float32 [B, H, W, 3] that removed pixels become.
    insertion_baseline: float32 [B, H, W, 3] that not-yet-added pixels show.
    steps: K, the number of increments.

  Returns:
    `Curves` with K + 1 points each.
  """
  num_pixels = ranks.shape[1] * ranks.shape[2]
  counts = jnp.round(jnp.arange(steps + 1) * num_pixels / steps)
  batch = images.shape[0]
  both_targets = jnp.concatenate([targets, targets])

  def point(carry, count):
    chosen = (ranks < count)[..., None]
    deleted = jnp.where(chosen, deletion_baseline, images)
    inserted = jnp.where(chosen, images, insertion_baseline)
    probs = jax.nn.softmax(logits_fn(jnp.concatenate([deleted, inserted])))
    target_probs = jnp.take_along_axis(probs, both_targets[:, None], -1)[:, 0]
    return carry, (target_probs[:batch], target_probs[batch:])

  _, (deletion, insertion) = jax.lax.scan(point, None, counts)
  return Curves(deletion.T, insertion.T)


def area_under_curve(curve: jax.Array) -> jax.Array:
  """Trapezoid area of curves [..., K + 1] sampled evenly on [0, 1] -> [...]."""
  steps = curve.shape[-1] - 1
  return (curve[..., 1:] + curve[..., :-1]).sum(-1) / (2 * steps)
