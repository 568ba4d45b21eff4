"""Direct float64 NumPy MMD-critic: the dense kernel, the formulas as written.

The cross-check for `jaxaudit.criticism` (tests and `benchmarks/criticism.py`).
Like the authors' code it builds the dense n x n kernel; each step rescans the
kernel entries of the chosen points against every candidate, evaluates J(T) (or
the criticism objective) for every candidate, and forms a fresh log-determinant
for every candidate. Ties go to the lowest index (`np.argmax`).

Each search also returns its margins: at every step, the winning objective minus
the runner-up's. Any two correct implementations agree where the margins exceed
their rounding errors; tests check that their data is of that kind.
"""

from __future__ import annotations

import numpy as np


def kernel_matrix(features: np.ndarray, gamma: float) -> np.ndarray:
  """Dense K [n, n] = exp(-gamma ||x_i - x_j||^2) in float64."""
  x = np.asarray(features, np.float64)
  x = x - x.mean(0)
  sq = (x * x).sum(-1)
  kernel = x @ x.T  # In place from here: one n x n buffer at the peak.
  kernel *= -2
  kernel += sq[:, None]
  kernel += sq[None, :]
  np.maximum(kernel, 0.0, out=kernel)
  np.fill_diagonal(kernel, 0.0)
  kernel *= -gamma
  return np.exp(kernel, out=kernel)


def _margin(objective: np.ndarray) -> float:
  if len(objective) < 2:
    return np.inf
  top = np.partition(objective, len(objective) - 2)[-2:]
  return float(top[1] - top[0])


def prototypes(kernel: np.ndarray,
               num_prototypes: int) -> tuple[np.ndarray, np.ndarray]:
  """Greedy argmax of J(S + {c}) over candidates c not in S.

  Returns:
    (int64 [m] chosen indices in order, float64 [m] margins).
  """
  n = len(kernel)
  col_sums = kernel.sum(0)
  selected: list[int] = []
  margins: list[float] = []
  for _ in range(num_prototypes):
    candidates = np.setdiff1d(np.arange(n), selected)
    if not len(candidates):
      break
    t = len(selected) + 1
    cross = col_sums[selected].sum() + col_sums[candidates]
    within = (kernel[np.ix_(selected, selected)].sum()
              + 2 * kernel[np.ix_(selected, candidates)].sum(0)
              + kernel[candidates, candidates])
    objective = 2 * cross / (n * t) - within / t**2
    selected.append(int(candidates[np.argmax(objective)]))
    margins.append(_margin(objective))
  return np.asarray(selected, np.int64), np.asarray(margins)


def witness(kernel: np.ndarray, prototype_indices: np.ndarray) -> np.ndarray:
  """w(x_l) = 1/n sum_i k(x_l, x_i) - 1/m sum_{j in S} k(x_l, x_j) [n]."""
  return kernel.mean(1) - kernel[:, prototype_indices].mean(1)


def criticisms(kernel: np.ndarray, prototype_indices: np.ndarray,
               num_criticisms: int,
               regularizer: str = "logdet") -> tuple[np.ndarray, np.ndarray]:
  """Greedy argmax of sum_{C + {c}} |w| + log det K[C + {c}, C + {c}].

  Returns:
    (int64 [<= c] chosen indices in order, float64 margins).
  """
  n = len(kernel)
  gain = np.abs(witness(kernel, prototype_indices))
  selected: list[int] = []
  margins: list[float] = []
  for _ in range(num_criticisms):
    candidates = np.setdiff1d(np.arange(n),
                              np.concatenate([prototype_indices, selected]))
    if not len(candidates):
      break
    sets = np.concatenate(
        [np.tile(np.asarray(selected, np.int64), (len(candidates), 1)),
         candidates[:, None]], axis=1)
    objective = gain[sets].sum(1)
    if regularizer == "logdet":
      sign, logdet = np.linalg.slogdet(
          kernel[sets[:, :, None], sets[:, None, :]])
      objective = np.where(sign > 0, objective + logdet, -np.inf)
      if not np.isfinite(objective).any():
        break
    selected.append(int(candidates[np.argmax(objective)]))
    margins.append(_margin(objective[np.isfinite(objective)]))
  return np.asarray(selected, np.int64), np.asarray(margins)


def mmd2(kernel: np.ndarray, prototype_indices: np.ndarray) -> float:
  """MMD^2 between all points and the prototypes."""
  s = np.asarray(prototype_indices)
  return float(kernel.mean() - 2 * kernel[:, s].mean()
               + kernel[np.ix_(s, s)].mean())


def clustered_features(n: int, dim: int, num_clusters: int, num_outliers: int,
                       seed: int) -> np.ndarray:
  """Gaussian clusters of unequal size and spread plus far outliers [n, dim].

  float32, the dtype models emit; the last `num_outliers` rows are outliers.
  """
  rng = np.random.default_rng(seed)
  centres = rng.normal(0, 4, (num_clusters, dim))
  weights = rng.dirichlet(np.full(num_clusters, 2.0))
  which = rng.choice(num_clusters, n - num_outliers, p=weights)
  spread = rng.uniform(0.5, 2.0, num_clusters)[which, None]
  inliers = centres[which] + spread * rng.normal(size=(len(which), dim))
  outliers = rng.normal(0, 8, (num_outliers, dim))
  return np.concatenate([inliers, outliers]).astype(np.float32)
