"""Exact backward selection (Carter et al. 2019, 2021): the procedure BGSIS approximates.

At each step every remaining feature is scored by the model's confidence in the
target class with that feature removed, and the feature whose removal leaves the
highest confidence goes (ties: the lowest feature index, as the authors'
`sufficient_input_subsets` does). An image of F features costs F (F + 1) / 2
forward passes: 32,896 for CIFAR-10 on 2 x 2-pixel features (256), 2,080 for
ImageNet on an 8 x 8 block grid (64).

Compiled as one `lax.scan` over the F steps; inside a step a `fori_loop` walks
the remaining features in chunks of `chunk` candidates, so one forward pass
scores [B * chunk] masked images (batched over the candidates and the images)
and no pass is spent on features already removed beyond the last partial chunk.
Every image of a batch has the same number of remaining features at every step,
so the chunk count is shared. Confidence is compared as log-probability, which
orders candidates as the probability does and stays distinct where float32
softmax saturates at 1.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import conv_layout
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks


def backward_selection(log_prob_fn: Callable[[jax.Array], jax.Array],
                       images: jax.Array, targets: jax.Array,
                       baseline: jax.Array, *, block_size: int,
                       chunk: int) -> bgsis.BackwardSelection:
  """Ranks every feature of every image by exact backward selection.

  Args:
    log_prob_fn: images float32 [B', H, W, 3] -> log-probabilities [B', K], per
      example (called with B' = B * chunk).
    images: float32 [B, H, W, 3] in [0, 1].
    targets: int [B] class whose probability is kept high.
    baseline: float32 [3] pixel for removed features.
    block_size: feature side in pixels.
    chunk: candidates scored per forward pass and image.

  Returns:
    `bgsis.BackwardSelection`: ranks int32 [B, F] (0 = removed last), kept
    int32 [F] (F, F - 1, ..., 1) and curve float32 [B, F], p(target) with
    the `kept[t]` top-ranked features (curve[:, 0]: the full image).
  """
  batch, height = images.shape[:2]
  side = masks.grid_side(height, block_size)
  f = side * side
  chunk = max(1, min(int(chunk), f))
  padded = -(-f // chunk) * chunk
  rows = jnp.arange(batch)

  def target_log_prob(x: jax.Array, classes: jax.Array) -> jax.Array:
    log_probs = log_prob_fn(x)
    return jnp.take_along_axis(log_probs, classes[:, None], axis=1)[:, 0]

  def score_chunk(mask: jax.Array, candidates: jax.Array) -> jax.Array:
    """mask [B, F], candidates int [B, C] -> log p(target) [B, C], each
    candidate removed from its image's mask."""
    trial = mask[:, None, :] * (1.0 - jax.nn.one_hot(candidates, f))
    x = masks.apply_mask(jnp.repeat(images, chunk, axis=0),
                         trial.reshape(batch * chunk, f), baseline, block_size)
    return target_log_prob(x, jnp.repeat(targets, chunk)).reshape(batch, chunk)

  score = conv_layout.canonical_convolutions(score_chunk)

  def step(state: bgsis.SelectionState, t: jax.Array):
    remaining = f - t
    # Remaining features first, in index order (a stable sort of the removed
    # flags), padded to whole chunks.
    order = jnp.argsort(state.mask <= 0, axis=1, stable=True).astype(jnp.int32)
    order = jnp.pad(order, ((0, 0), (0, padded - f)))

    def body(j, best):
      best_value, best_feature = best
      candidates = jax.lax.dynamic_slice_in_dim(order, j * chunk, chunk, 1)
      valid = j * chunk + jnp.arange(chunk) < remaining
      values = jnp.where(valid[None, :], score(state.mask, candidates),
                         -jnp.inf)
      pick = jnp.argmax(values, axis=1)
      value = values[rows, pick]
      better = value > best_value
      return (jnp.where(better, value, best_value),
              jnp.where(better, candidates[rows, pick], best_feature))

    init = (jnp.full((batch,), -jnp.inf), jnp.zeros((batch,), jnp.int32))
    num_chunks = (remaining + chunk - 1) // chunk
    value, feature = jax.lax.fori_loop(0, num_chunks, body, init)
    mask = state.mask.at[rows, feature].set(0.0)
    removed_at = state.removed_at.at[rows, feature].set(t)
    return bgsis.SelectionState(mask, removed_at), value

  init = bgsis.SelectionState(jnp.ones((batch, f), jnp.float32),
                              jnp.full((batch, f), f, jnp.int32))
  final, values = jax.lax.scan(step, init, jnp.arange(f, dtype=jnp.int32))
  full = target_log_prob(images, targets)
  curve = jnp.exp(jnp.concatenate([full[:, None], values[:-1].T], axis=1))
  kept = np.arange(f, 0, -1, dtype=np.int32)
  return bgsis.BackwardSelection(ranks=f - 1 - final.removed_at,
                                 kept=jnp.asarray(kept), curve=curve)
