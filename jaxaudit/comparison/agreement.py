"""Two models' right and wrong answers on the same examples.

Both models see the same labelled examples, so their accuracies differ only
where exactly one of them is right; the exact McNemar test asks whether those
discordant examples split evenly (the null of equal accuracy), as a paired
comparison of two checkpoints should.
"""

from __future__ import annotations

import math

import numpy as np


def log_comb(n: int, k: int) -> float:
  """log C(n, k), exact to float precision for any n."""
  return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def pair_counts(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, int]:
  """Counts of the four outcomes.

  Args:
    correct_a, correct_b: bool [N] over the same labelled examples.

  Returns:
    {"both_right", "only_a", "only_b", "both_wrong"}.
  """
  a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
  return {"both_right": int((a & b).sum()), "only_a": int((a & ~b).sum()),
          "only_b": int((~a & b).sum()), "both_wrong": int((~a & ~b).sum())}


def mcnemar_p(only_a: int, only_b: int) -> float:
  """Two-sided exact McNemar p-value: the binomial probability, under p =
  1/2, of a split of the n = only_a + only_b discordant examples at least as
  uneven as the one seen (1 when n = 0).

  Summed in log space, so any n is exact to float precision.
  """
  n = only_a + only_b
  if n == 0:
    return 1.0
  k = min(only_a, only_b)
  log_terms = [log_comb(n, i) - n * math.log(2.0) for i in range(k + 1)]
  top = max(log_terms)
  tail = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
  return min(1.0, 2.0 * tail)
