"""Batched gradient backward selection (BGSIS, Carter et al. 2021), one compiled loop.

Starting from the full mask, each step takes the gradient of the target class's
log-probability with respect to the feature mask and removes the k_t
remaining features (a fixed schedule, `removal_schedule`) whose removal is predicted to cost the least (the smallest
gradient: removing feature i changes the mask by -1, so to first order the score
moves by -grad_i). The log keeps the gradient finite where float32 softmax
saturates at 1; it orders features exactly as the probability's gradient does,
since d log p = dp / p with p > 0 per example. Features removed later rank
higher; rank 0 is the last one removed.

Each step's forward pass also scores the features still kept, which are the
top-ranked F - (k_0 + ... + k_{t-1}) features: the confidence curve along the ranking
comes at no extra cost. The gradient runs through
`conv_layout.canonical_convolutions`, which keeps XLA:CPU's convolutions fast
inside the loop.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import conv_layout
from jaxaudit import progress
from jaxaudit.sis import masks


class SelectionState(NamedTuple):
  """Loop state: mask float32 [B, F] (1 = kept); removed_at int32 [B, F] (the
  removal position, F for features still kept)."""
  mask: jax.Array
  removed_at: jax.Array


class BackwardSelection(NamedTuple):
  """BGSIS result.

  Attributes:
    ranks: int32 [B, F], a permutation of 0..F-1 per example; 0 = most important.
    kept: int32 [T], features kept at each step (F, F - k, ...).
    curve: float32 [B, T], p(target) with only the `kept[t]` top-ranked features.
  """
  ranks: jax.Array
  kept: jax.Array
  curve: jax.Array


def removal_schedule(num_features: int, step_fraction: float,
                     min_step_fraction: float) -> np.ndarray:
  """Features removed at each step: `step_fraction` of those remaining, at
  least `min_step_fraction` of all (and at least one).

  `step_fraction=0` gives equal steps; a positive one takes fine steps where few
  features remain, where the small subsets the stage measures are decided.

  Returns:
    int32 [T] removals summing to `num_features`.
  """
  floor = max(1, int(round(min_step_fraction * num_features)))
  removals, remaining = [], num_features
  while remaining > 0:
    k = min(remaining, max(floor, int(round(step_fraction * remaining))))
    removals.append(k)
    remaining -= k
  return np.asarray(removals, np.int32)


def kept_counts(removals: np.ndarray) -> np.ndarray:
  """int32 [T]: features kept before each step (F, F - k_0, ...)."""
  total = int(np.sum(removals))
  return (total - np.concatenate([[0], np.cumsum(removals)[:-1]])).astype(np.int32)


def backward_selection(log_prob_fn: Callable[[jax.Array], jax.Array],
                       images: jax.Array, targets: jax.Array,
                       baseline: jax.Array, *, block_size: int,
                       removals: tuple[int, ...]) -> BackwardSelection:
  """Ranks every feature of every image by backward selection.

  Args:
    log_prob_fn: images float32 [B, H, W, 3] -> log-probabilities [B, K];
      per-example (no cross-example interaction such as batch statistics).
    images: float32 [B, H, W, 3] in [0, 1].
    targets: int [B] class whose probability is kept high.
    baseline: float32 [3] pixel for removed features.
    block_size: feature side in pixels (1 = single pixels).
    removals: features removed at each step (`removal_schedule`), sum F.

  Returns:
    `BackwardSelection` with ranks [B, F], kept [T] and the confidence curve [B, T],
    T = len(removals).
  """
  batch = images.shape[0]
  side = masks.grid_side(images.shape[1], block_size)
  f = side * side
  if sum(removals) != f:
    raise ValueError(f"removals sum to {sum(removals)}, not {f} features")
  removals_arr = np.asarray(removals, np.int32)
  kept = kept_counts(removals_arr)
  per_step = int(removals_arr.max())

  def target_log_prob(mask):
    log_probs = log_prob_fn(masks.apply_mask(images, mask, baseline, block_size))
    picked = jnp.take_along_axis(log_probs, targets[:, None], axis=1)[:, 0]
    return picked.sum(), picked

  grad_fn = conv_layout.canonical_convolutions(
      jax.grad(target_log_prob, has_aux=True))
  rows = jnp.arange(batch)[:, None]

  def step(state: SelectionState,
           xs: tuple[jax.Array, jax.Array, jax.Array]):
    k, start, count = xs
    progress.tick("backward selection", k, len(removals_arr))
    grad, log_p = grad_fn(state.mask)
    remaining = state.mask > 0
    score = jnp.where(remaining, -grad, -jnp.inf)
    _, idx = jax.lax.top_k(score, per_step)
    order = jnp.arange(per_step, dtype=jnp.int32)
    valid = jnp.take_along_axis(remaining, idx, axis=1) & (order < count)
    position = start + order
    old = jnp.take_along_axis(state.removed_at, idx, axis=1)
    removed_at = state.removed_at.at[rows, idx].set(
        jnp.where(valid, position[None, :], old))
    mask = state.mask.at[rows, idx].set(
        jnp.where(valid, 0.0, jnp.take_along_axis(state.mask, idx, axis=1)))
    return SelectionState(mask, removed_at), jnp.exp(log_p)

  init = SelectionState(jnp.ones((batch, f), jnp.float32),
                        jnp.full((batch, f), f, jnp.int32))
  starts = jnp.asarray(f - kept)
  final, curve = jax.lax.scan(
      step, init, (jnp.arange(len(removals_arr)), starts,
                   jnp.asarray(removals_arr)))
  return BackwardSelection(ranks=f - 1 - final.removed_at, kept=jnp.asarray(kept),
                   curve=curve.T)


def sis_size(curve: jax.Array, kept: jax.Array,
             threshold: float) -> tuple[jax.Array, jax.Array]:
  """The smallest top-ranked set on the curve with p(target) >= threshold.

  As in Carter et al., an SIS exists only where the full image meets the
  threshold (curve[:, 0], all features kept): an image the model is less
  confident in has none, whatever its subsets score. The resolution is one
  selection step (k_t features): the curve is evaluated where the selection
  left it.

  Args:
    curve: float32 [B, T] p(target) with `kept[t]` features.
    kept: int32 [T].
    threshold: confidence the subset must keep.

  Returns:
    (size int32 [B], found bool [B]); found = the full image meets the
    threshold; size = F (all features) where it does not.
  """
  found = curve[:, 0] >= threshold
  meets = (curve >= threshold) & found[:, None]
  sizes = jnp.where(meets, kept[None, :], kept[0])
  return sizes.min(axis=1), found
