"""What a model predicts from a subset of features: top-ranked versus random.

The per-example compute of the SIS stage: BGSIS ranking, SIS size, predictions
on top-ranked and uniformly random subsets of fixed size, and where the SIS lies.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxaudit import sharding
from jaxaudit.sis import bgsis
from jaxaudit.sis import exact
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


class ExactSettings(NamedTuple):
  """Static settings of `compare_exact`.

  Attributes:
    block_size: feature side in pixels of both selections (the same grid).
    num_features: F, features on that grid.
    chunk: candidates per forward pass and image in exact selection.
    removals: BGSIS's features removed per step on that grid.
    threshold: p(target) the SIS must keep.
    counts: features kept for the subset predictions, one per fraction.
  """
  block_size: int
  num_features: int
  chunk: int
  removals: tuple[int, ...]
  threshold: float
  counts: tuple[int, ...]


def subset_counts(fractions: tuple[float, ...], num_features: int) -> tuple[int, ...]:
  """Features kept for each fraction: ceil(fraction * F), at least one."""
  return tuple(max(1, math.ceil(f * num_features - 1e-9)) for f in fractions)


def predict_kept(logits_fn: Callable[[jax.Array], jax.Array], images: jax.Array,
                 targets: jax.Array, ranks: jax.Array, counts: tuple[int, ...],
                 baseline: jax.Array, block_size: int
                 ) -> tuple[jax.Array, jax.Array]:
  """Predictions with only the top-ranked features kept, for each count.

  Args:
    logits_fn: images [B, H, W, 3] -> logits [B, K].
    images: float32 [B, H, W, 3].
    targets: int [B] the class whose confidence is reported.
    ranks: int32 [B, F] (0 = kept first).
    counts: features kept, one entry per prediction.
    baseline: float32 [3].
    block_size: feature side in pixels.

  Returns:
    (predicted classes int32 [B, C], p(target) float32 [B, C]) for
    C = len(counts).
  """

  def one(count):
    mask = masks.top_ranked(ranks, count)
    logits = logits_fn(masks.apply_mask(images, mask, baseline, block_size))
    probs = jax.nn.softmax(logits, -1)
    return (jnp.argmax(logits, -1).astype(jnp.int32),
            jnp.take_along_axis(probs, targets[:, None], axis=1)[:, 0])

  predictions, confidences = jax.lax.map(one, jnp.asarray(counts, jnp.int32))
  return predictions.T, confidences.T


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
    [B, F], `curve` [B, T] (curve[:, 0]: the full image's confidence),
    `sis_size` [B] (features), `sis_found` [B] (the full image meets the
    threshold), `border_share` [B] (share of SIS pixels in the band),
    `subset_prediction` [B, C] and `subset_confidence` [B, C] (p(target) on
    the top-ranked subsets), `random_prediction` [B, S, C] for C counts and S
    seeds.
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
  subset, confidence = predict_kept(logits_fn, images, targets, sel.ranks,
                                    settings.counts, baseline, block)
  num_features = sel.ranks.shape[-1]

  def random_seed(seed):
    keys = sharding.example_keys(jax.random.fold_in(rng, seed), ids)
    ranks = masks.random_ranks(keys, num_features)
    return predict_kept(logits_fn, images, targets, ranks, settings.counts,
                        baseline, block)[0]

  randoms = jax.lax.map(random_seed, jnp.arange(settings.num_random))
  return {"target": targets, "ranks": sel.ranks, "curve": sel.curve,
          "sis_size": size, "sis_found": found, "border_share": border,
          "subset_prediction": subset, "subset_confidence": confidence,
          "random_prediction": jnp.moveaxis(randoms, 0, 1)}


def _top_overlap(a: jax.Array, b: jax.Array, count: int) -> jax.Array:
  """Share of the `count` top-ranked features two rankings [B, F] share: [B]."""
  return ((a < count) & (b < count)).sum(-1) / count


def _spearman(a: jax.Array, b: jax.Array) -> jax.Array:
  """Spearman correlation of two rankings (permutations) [B, F]: [B]."""
  f = a.shape[-1]
  d = (a - b).astype(jnp.float32)
  return 1.0 - 6.0 * (d * d).sum(-1) / (f * (f * f - 1.0))


def compare_exact(logits_fn: Callable[[jax.Array], jax.Array],
                  images: jax.Array, baseline: jax.Array,
                  settings: ExactSettings) -> dict[str, jax.Array]:
  """Exact backward selection against BGSIS on the same images and features.

  Args:
    logits_fn: images [B', H, W, 3] -> logits [B', K], per example.
    images: float32 [B, H, W, 3] in [0, 1].
    baseline: float32 [3].
    settings: `ExactSettings`.

  Returns:
    Per-example arrays, for "exact" and "bgsis" each (`<method>_...`): `ranks`
    [B, F], `sis_size` [B], `subset_prediction` and `subset_confidence`
    [B, C]; shared: `target` [B], `sis_found` [B] (the full image meets the
    threshold), `top_overlap` [B, C] (share of the top-ranked features the two
    keep in common at each count), `sis_jaccard` [B] (of the two SIS) and
    `spearman` [B] (rank correlation).
  """
  block = settings.block_size
  targets = jnp.argmax(logits_fn(images), -1).astype(jnp.int32)
  log_prob_fn = lambda x: jax.nn.log_softmax(logits_fn(x), -1)
  selections = {
      "exact": exact.backward_selection(log_prob_fn, images, targets, baseline,
                                        block_size=block, chunk=settings.chunk),
      "bgsis": bgsis.backward_selection(log_prob_fn, images, targets, baseline,
                                        block_size=block,
                                        removals=settings.removals)}
  out = {"target": targets}
  sis_masks = {}
  for name, sel in selections.items():
    size, found = bgsis.sis_size(sel.curve, sel.kept, settings.threshold)
    prediction, confidence = predict_kept(logits_fn, images, targets,
                                          sel.ranks, settings.counts, baseline,
                                          block)
    sis_masks[name] = masks.top_ranked(sel.ranks, size) > 0
    out.update({f"{name}_ranks": sel.ranks, f"{name}_sis_size": size,
                f"{name}_subset_prediction": prediction,
                f"{name}_subset_confidence": confidence, "sis_found": found})
  a, b = selections["exact"].ranks, selections["bgsis"].ranks
  out["top_overlap"] = jnp.stack([_top_overlap(a, b, c)
                                  for c in settings.counts], -1)
  both = (sis_masks["exact"] & sis_masks["bgsis"]).sum(-1)
  either = (sis_masks["exact"] | sis_masks["bgsis"]).sum(-1)
  out["sis_jaccard"] = both / jnp.maximum(either, 1)
  out["spearman"] = _spearman(a, b)
  return out


def mean_or_nan(values: np.ndarray) -> float:
  """The mean, NaN for no values (a summary over an empty group)."""
  return float(np.mean(values)) if np.size(values) else float("nan")


def median_or_nan(values: np.ndarray) -> float:
  """The median, NaN for no values."""
  return float(np.median(values)) if np.size(values) else float("nan")


def summarize_exact(arrays: dict[str, np.ndarray], names: list[str],
                    settings: ExactSettings) -> dict:
  """The comparison's summary from `compare_exact`'s per-example outputs.

  Args:
    arrays: `compare_exact` outputs gathered over the compared images (ranks
      not needed) plus `label` int [N] (-1 = unknown).
    names: a name per subset count (e.g. "5%").
    settings: the comparison's settings.

  Returns:
    JSON-ready: per method ("exact", "bgsis") the median SIS size and
    fraction (images with an SIS), subset accuracy, agreement with the
    full-image prediction and confidence; the overlap of the two rankings.
  """
  label, target, found = arrays["label"], arrays["target"], arrays["sis_found"]
  labelled = label >= 0
  methods = {}
  for method in ("exact", "bgsis"):
    prediction = arrays[f"{method}_subset_prediction"]
    sizes = arrays[f"{method}_sis_size"][found]
    methods[method] = {
        "sis_size_median": median_or_nan(sizes),
        "sis_fraction_median": median_or_nan(sizes) / settings.num_features,
        "subset_accuracy": {n: mean_or_nan(prediction[labelled, c]
                                     == label[labelled])
                            for c, n in enumerate(names)},
        "subset_agreement": {n: mean_or_nan(prediction[:, c] == target)
                             for c, n in enumerate(names)},
        "subset_confidence": {
            n: mean_or_nan(arrays[f"{method}_subset_confidence"][:, c])
            for c, n in enumerate(names)}}
  f = settings.num_features
  return {
      "num_examples": int(len(target)),
      "block_size": settings.block_size,
      "num_features": f,
      "forward_passes_per_image": f * (f + 1) // 2,
      "bgsis_steps": len(settings.removals),
      "sis_found_share": mean_or_nan(found),
      **methods,
      "top_overlap": {n: mean_or_nan(arrays["top_overlap"][:, c])
                      for c, n in enumerate(names)},
      "sis_jaccard_median": median_or_nan(arrays["sis_jaccard"][found]),
      "spearman_mean": mean_or_nan(arrays["spearman"]),
  }
