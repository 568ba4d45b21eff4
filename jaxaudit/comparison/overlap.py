"""How much two models' feature subsets share.

A subset is a bool mask over a model's feature grid (`jaxaudit.sis.masks`:
side g, F = g * g features). Models of different input sizes or block sizes
have different grids over the same field of view, so both masks are first
put on the finer grid (each fine cell takes the coarse cell under its
centre), then compared by intersection over union.
"""

from __future__ import annotations

import math

import numpy as np

from jaxaudit.comparison import agreement


def ranked_subset(ranks: np.ndarray, counts: np.ndarray) -> np.ndarray:
  """The top-ranked features.

  Args:
    ranks: int [B, F], 0 = most important.
    counts: int [B] (or a scalar) features to keep.

  Returns:
    bool [B, F].
  """
  return np.asarray(ranks) < np.asarray(counts).reshape(-1, 1)


def on_grid(mask: np.ndarray, side: int) -> np.ndarray:
  """Masks on a square grid of `side` (>= their own), by the cell under each
  fine cell's centre.

  Args:
    mask: bool [B, g * g].
    side: the target grid side G.

  Returns:
    bool [B, G * G].
  """
  mask = np.asarray(mask, bool)
  g = int(round(mask.shape[-1] ** 0.5))
  if g * g != mask.shape[-1]:
    raise ValueError(f"overlap: {mask.shape[-1]} features are not a square grid")
  cells = ((np.arange(side) + 0.5) * g / side).astype(np.int64)
  grid = mask.reshape(-1, g, g)[:, cells][:, :, cells]
  return grid.reshape(len(mask), side * side)


def iou(mask_a: np.ndarray, mask_b: np.ndarray) -> np.ndarray:
  """Intersection over union of two models' masks, per example.

  Args:
    mask_a: bool [B, Fa]; mask_b: bool [B, Fb] (square grids, any sides).

  Returns:
    float64 [B]; 0 where both are empty.
  """
  side = max(int(round(m.shape[-1] ** 0.5)) for m in (mask_a, mask_b))
  a, b = on_grid(mask_a, side), on_grid(mask_b, side)
  union = (a | b).sum(-1)
  return np.where(union > 0, (a & b).sum(-1) / np.maximum(union, 1), 0.0)


def chance_iou(count_a: int, count_b: int, num_features: int) -> float:
  """The expected IoU of two independent uniformly random subsets of
  `count_a` and `count_b` of `num_features` features: E[X / (a + b - X)]
  with X hypergeometric, summed exactly (in log space). For f = a / F = b / F
  it is about f / (2 - f), higher on coarse grids.
  """
  a, b, n = int(count_a), int(count_b), int(num_features)
  if not 0 < a <= n or not 0 < b <= n:
    raise ValueError(f"overlap: counts {a}, {b} of {n} features")
  total = agreement.log_comb(n, b)
  expected = 0.0
  for x in range(max(1, a + b - n), min(a, b) + 1):
    weight = math.exp(agreement.log_comb(a, x) + agreement.log_comb(n - a, b - x) - total)
    expected += weight * x / (a + b - x)
  return expected


def chance_iou_across(count_a: int, side_a: int, count_b: int,
                      side_b: int) -> float:
  """`chance_iou` for subsets on two grids (sides g_a, g_b), on the finer
  grid G where each compare: a subset of k cells of g covers about
  k (G / g)^2 of its cells (exact when G / g is a whole number)."""
  side = max(side_a, side_b)
  scaled = [min(side * side, max(1, round(k * (side / g) ** 2)))
            for k, g in ((count_a, side_a), (count_b, side_b))]
  return chance_iou(scaled[0], scaled[1], side * side)
