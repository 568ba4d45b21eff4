"""MMD-critic (Kim, Khanna & Koyejo, NeurIPS 2016) on model features.

Prototypes are the points that best summarise a set (greedy maximisation of
the MMD-based J); criticisms are the points the prototypes represent worst
(largest |witness| with a log-det diversity term). Exact: the selections equal
a dense float64 implementation of the formulas; scalable: kernel row sums in
sharded tiles, greedy steps scored from running sums in `lax.fori_loop`.

  idx = jaxaudit.criticism.select_prototypes(features, 8, gamma=None)
  crit = jaxaudit.criticism.select_criticisms(features, idx, 8, gamma=None)
"""

from __future__ import annotations

import numpy as np

from jaxaudit.criticism.groups import GroupSelection, select_groups
from jaxaudit.criticism.kernel import median_gamma

__all__ = ["GroupSelection", "median_gamma", "select_criticisms", "select_groups",
           "select_prototypes"]


def _check_features(features) -> np.ndarray:
  features = np.asarray(features)
  if features.ndim != 2 or not len(features):
    raise ValueError(f"features must be a non-empty [n, d] array, got shape "
                     f"{features.shape}")
  return features


def select_prototypes(features: np.ndarray, num_prototypes: int,
                      gamma: float | None = None, **options) -> np.ndarray:
  """Greedy MMD-critic prototypes of one set of points.

  Args:
    features: [n, d] points (float32; float64 computes in float64 under
      `jax.enable_x64(True)`).
    num_prototypes: m, 1 <= m <= n.
    gamma: RBF kernel width in exp(-gamma ||x - y||^2); None = 1 / median
      squared pairwise distance (`median_gamma`).
    **options: `mesh`, `block_size` of `select_groups`.

  Returns:
    int64 [m] row indices in selection order.
  """
  features = _check_features(features)
  if not 1 <= num_prototypes <= len(features):
    raise ValueError(f"num_prototypes must be in [1, {len(features)}], got "
                     f"{num_prototypes}")
  return select_groups(features, np.zeros(len(features), np.int64),
                       num_prototypes, 0, gamma, **options).prototypes[0]


def select_criticisms(features: np.ndarray, prototype_indices: np.ndarray,
                      num_criticisms: int, gamma: float | None = None,
                      regularizer: str = "logdet", **options) -> np.ndarray:
  """Greedy MMD-critic criticisms of one set of points given its prototypes.

  Args:
    features: [n, d] points.
    prototype_indices: int [m] distinct row indices of the prototypes.
    num_criticisms: c, 0 <= c <= n - m.
    gamma: as in `select_prototypes` (use the same value).
    regularizer: "logdet" (diversity term log det K[C, C]) or "none".
    **options: `mesh`, `block_size` of `select_groups`.

  Returns:
    int64 [<= c] row indices in selection order (fewer than c only when every
    remaining candidate would make K[C, C] singular).
  """
  features = _check_features(features)
  protos = np.asarray(prototype_indices, np.int64).reshape(-1)
  if (len(np.unique(protos)) != len(protos) or protos.min(initial=0) < 0
      or protos.max(initial=0) >= len(features)):
    raise ValueError(f"prototype_indices must be distinct rows in "
                     f"[0, {len(features)}), got {protos.tolist()}")
  if not 0 <= num_criticisms <= len(features) - len(protos):
    raise ValueError(f"num_criticisms must be in [0, "
                     f"{len(features) - len(protos)}], got {num_criticisms}")
  return select_groups(features, np.zeros(len(features), np.int64), 0,
                       num_criticisms, gamma, regularizer, prototypes=[protos],
                       **options).criticisms[0]
