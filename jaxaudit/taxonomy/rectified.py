"""Rectified accuracy and a taxonomy of top-1 errors (Stock & Cisse 2018).

A top-1 "mistake" is often forgivable: the image shows several objects, or the
predicted class is one a person cannot tell from the label. Each error gets
exactly one category, checked in this order:

  multi_object: the prediction is in the image's multi-label set.
  near_duplicate_class: (label, prediction) is a known duplicate class pair
    (`plausibility.NEAR_DUPLICATE_WNIDS`).
  fine_grained: same superclass, or close in WordNet (the judgement's
    `close_in_wordnet`).
  real_error: none of the above.

An error is forgivable (not `real_error`) exactly when the judgement calls the
prediction `plausible`: the same rule the attack stage applies to adversarial
labels.

Confidence intervals are nonparametric bootstraps over examples. Resampling N
examples with replacement draws the counts of each outcome type from a
multinomial with the observed frequencies, so the bootstrap draws those counts
directly (exact, and O(samples x outcomes) instead of O(samples x N)).
"""

from __future__ import annotations

import numpy as np

CORRECT = "correct"
UNLABELLED = "unlabelled"
CATEGORIES = ("multi_object", "near_duplicate_class", "fine_grained",
              "real_error")


def categorize(labels: np.ndarray, predictions: np.ndarray,
               plaus: dict[str, np.ndarray]) -> np.ndarray:
  """Each example's category.

  Args:
    labels: int [N] (-1 = unknown).
    predictions: int [N] top-1 classes.
    plaus: `plausibility.plausibility(labels, predictions, ...)`.

  Returns:
    object [N]: "correct", "unlabelled" or one of `CATEGORIES`.
  """
  labels = np.asarray(labels)
  out = np.full(len(labels), CATEGORIES[-1], dtype=object)
  rules = ((plaus["same_superclass"] | plaus["close_in_wordnet"],
            "fine_grained"),
           (plaus["near_duplicate"], "near_duplicate_class"),
           (plaus["in_label_set"], "multi_object"),
           (np.asarray(predictions) == labels, CORRECT),
           (labels < 0, UNLABELLED))
  for mask, name in rules:  # Later rules take precedence.
    out[mask] = name
  return out


def category_shares(categories: np.ndarray) -> dict[str, float]:
  """Share of each category among the errors (sums to 1; 0s if no errors)."""
  counts = np.asarray([(categories == c).sum() for c in CATEGORIES], float)
  total = counts.sum()
  return {c: float(n / total) if total else 0.0
          for c, n in zip(CATEGORIES, counts)}


def bootstrap_counts(outcomes: np.ndarray, num_outcomes: int, samples: int,
                     rng: np.random.Generator) -> np.ndarray:
  """Outcome counts of `samples` bootstrap resamples of the examples.

  Args:
    outcomes: int [N] each example's outcome in [0, num_outcomes).
    num_outcomes: K.
    samples: B.
    rng: NumPy generator.

  Returns:
    int64 [B, K] counts (each row sums to N).
  """
  n = len(outcomes)
  freq = np.bincount(outcomes, minlength=num_outcomes).astype(float)
  if n == 0:
    return np.zeros((samples, num_outcomes), np.int64)
  return rng.multinomial(n, freq / n, size=samples)


def interval(values: np.ndarray, confidence: float) -> list[float]:
  """Percentile interval [low, high] of bootstrap values (NaNs ignored)."""
  values = values[np.isfinite(values)]
  if not values.size:
    return [float("nan"), float("nan")]
  tail = 50 * (1 - confidence)
  return [float(np.percentile(values, tail)),
          float(np.percentile(values, 100 - tail))]


def accuracy_with_ci(plain: np.ndarray, rectified: np.ndarray, samples: int,
                     confidence: float, rng: np.random.Generator) -> dict:
  """Plain and rectified accuracy over the same examples, with paired CIs.

  Args:
    plain: bool [N] prediction equals the label.
    rectified: bool [N] prediction acceptable under the truth source.
    samples, confidence: bootstrap size and level.
    rng: NumPy generator.

  Returns:
    {"num_examples", "top1", "rectified_top1", "ci": {"top1", "rectified_top1",
    "gain"}} where gain = rectified - plain.
  """
  plain, rectified = np.asarray(plain, bool), np.asarray(rectified, bool)
  n = len(plain)
  counts = bootstrap_counts(2 * plain + rectified, 4, samples, rng) / max(n, 1)
  boot = {"top1": counts[:, 2] + counts[:, 3],
          "rectified_top1": counts[:, 1] + counts[:, 3],
          "gain": counts[:, 1] - counts[:, 2]}
  return {
      "num_examples": n,
      "top1": float(plain.mean()) if n else float("nan"),
      "rectified_top1": float(rectified.mean()) if n else float("nan"),
      "ci": {k: interval(v, confidence) if n else [float("nan")] * 2
             for k, v in boot.items()},
  }


def shares_with_ci(categories: np.ndarray, samples: int, confidence: float,
                   rng: np.random.Generator) -> dict[str, list[float]]:
  """Bootstrap CIs of `category_shares` (resampling all labelled examples)."""
  labelled = categories[categories != UNLABELLED]
  names = (CORRECT,) + CATEGORIES
  outcomes = np.asarray([names.index(c) for c in labelled], np.int64)
  counts = bootstrap_counts(outcomes, len(names), samples, rng)
  errors = counts[:, 1:].sum(axis=1).astype(float)
  with np.errstate(invalid="ignore", divide="ignore"):
    return {c: interval(counts[:, 1 + k] / errors, confidence)
            for k, c in enumerate(CATEGORIES)}
