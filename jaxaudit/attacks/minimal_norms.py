"""What minimal-norm attacks' per-example smallest perturbations give: the
whole robust-accuracy-vs-epsilon curve and the median minimal perturbation."""

from __future__ import annotations

import numpy as np


def curve(min_norm: np.ndarray, correct: np.ndarray, labelled: np.ndarray,
          points: np.ndarray) -> list[float]:
  """Robust accuracy at each epsilon of `points`: labelled, correct, and no
  adversarial within epsilon.

  Args:
    min_norm: float [N] each example's smallest adversarial perturbation
      (inf where none was found, NaN where it was misclassified before).
    correct, labelled: bool [N].
    points: float [P] epsilons in the attack's norm.
  """
  total = max(int(labelled.sum()), 1)
  return [float((labelled & correct & ~(min_norm <= p)).sum() / total)
          for p in points]


def median(min_norm: np.ndarray, rows: np.ndarray) -> dict[str, float]:
  """The median minimal perturbation over `rows` (bool [N], the clean-correct
  examples) where one was found, and the share found."""
  found = rows & np.isfinite(min_norm)
  return {"median": float(np.median(min_norm[found])) if found.any()
                    else float("nan"),
          "found": float(found.sum() / max(rows.sum(), 1))}
