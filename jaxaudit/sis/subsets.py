"""What a model predicts from a subset of features: top-ranked versus random.

The per-example compute of the SIS stage: BGSIS ranking, SIS size, predictions
on top-ranked and uniformly random subsets of fixed size, and where the SIS lies.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxaudit import sharding
from jaxaudit.sis import bgsis
from jaxaudit.sis import masks


class SisSettings(NamedTuple):
  """Static settings of `analyse` (hashable, closed over by jit).

  Attributes:
    block_size: feature side in pixels.
    removals: features removed at each selection step.
    threshold: p(target) the SIS must keep.
    counts: features kept for the subset predictions, one per fraction.
    num_random: random subsets (seeds) per count.
  """
  block_size: int
  removals: tuple[int, ...]
  threshold: float
  counts: tuple[int, ...]
  num_random: int


def subset_counts(fractions: tuple[float, ...], num_features: int) -> tuple[int, ...]:
  """Features kept for each fraction: ceil(fraction * F), at least one."""
  return tuple(max(1, math.ceil(f * num_features - 1e-9)) for f in fractions)


def predict_kept(logits_fn: Callable[[jax.Array], jax.Array], images: jax.Array,
                 ranks: jax.Array, counts: tuple[int, ...], baseline: jax.Array,
                 block_size: int) -> jax.Array:
  """Predictions with only the top-ranked features kept, for each count.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3].
    ranks: int32 [B, F] (0 = kept first).
    counts: features kept, one entry per prediction.
    baseline: float32 [3].
    block_size: feature side in pixels.

  Returns:
    int32 [B, len(counts)] predicted classes.
  """

  def one(count):
    mask = masks.top_ranked(ranks, count)
    logits = logits_fn(masks.apply_mask(images, mask, baseline, block_size))
    return jnp.argmax(logits, -1).astype(jnp.int32)

  return jax.lax.map(one, jnp.asarray(counts, jnp.int32)).T


def analyse(logits_fn: Callable[[jax.Array], jax.Array], images: jax.Array,
            ids: jax.Array, rng: jax.Array, baseline: jax.Array,
            band: jax.Array, settings: SisSettings) -> dict[str, jax.Array]:
  """BGSIS and subset predictions for one batch.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K], per example.
    images: float32 [B, H, W, 3] in [0, 1].
    ids: int [B] global example ids (seed the random subsets).
    rng: PRNG key for the random subsets.
    baseline: float32 [3].
    band: float32 [F] pixels of each feature inside the border band.
    settings: `SisSettings`.

  Returns:
    Per-example arrays: `target` [B] (the full-image prediction), `ranks`
    [B, F], `curve` [B, T], `sis_size` [B] (features), `sis_found` [B],
    `border_share` [B] (share of SIS pixels in the band), `subset_prediction`
    [B, C], `random_prediction` [B, S, C] for C counts and S seeds.
  """
  block = settings.block_size
  targets = jnp.argmax(logits_fn(images), -1).astype(jnp.int32)
  log_prob_fn = lambda x: jax.nn.log_softmax(logits_fn(x), -1)
  sel = bgsis.backward_selection(log_prob_fn, images, targets, baseline,
                                 block_size=block, removals=settings.removals)
  size, found = bgsis.sis_size(sel.curve, sel.kept, settings.threshold)
  sis_mask = masks.top_ranked(sel.ranks, size)
  pixels = sis_mask * (block * block)
  border = (sis_mask * band).sum(-1) / jnp.maximum(pixels.sum(-1), 1.0)
  subset = predict_kept(logits_fn, images, sel.ranks, settings.counts,
                        baseline, block)
  num_features = sel.ranks.shape[-1]

  def random_seed(seed):
    keys = sharding.example_keys(jax.random.fold_in(rng, seed), ids)
    ranks = masks.random_ranks(keys, num_features)
    return predict_kept(logits_fn, images, ranks, settings.counts, baseline,
                        block)

  randoms = jax.lax.map(random_seed, jnp.arange(settings.num_random))
  return {"target": targets, "ranks": sel.ranks, "curve": sel.curve,
          "sis_size": size, "sis_found": found, "border_share": border,
          "subset_prediction": subset,
          "random_prediction": jnp.moveaxis(randoms, 0, 1)}
