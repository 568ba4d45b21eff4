"""Agreement, intervals and a test for the human study's metrics.

Fleiss' kappa measures how much the annotators agree beyond chance; percentile
bootstrap intervals (resampling items) put an interval on any statistic of the
judged items; the permutation test and the bootstrap interval of a difference
in means compare two conditions (acceptance with and without the explanation
overlay). Randomness comes only from a NumPy Generator seeded by the caller,
so a report's numbers are reproducible. Draws go in blocks of at most
`_BLOCK_ELEMENTS` elements, so memory stays bounded for any sample size. An
empty sample gives NaN, as every summary over an empty group does.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

_BLOCK_ELEMENTS = 1 << 22


def fleiss_kappa(counts: np.ndarray) -> float:
  """Fleiss' kappa of N items each rated by the same number of raters.

  Args:
    counts: [N, K] non-negative integer counts: counts[i, j] raters put item i
      in category j; every row has the same sum n >= 2.

  Returns:
    (P - Pe) / (1 - Pe) for the mean observed agreement P and the chance
    agreement Pe. NaN when every rating is in one category: then P = Pe = 1
    and kappa is undefined (no variation to agree on).

  Raises:
    ValueError: `counts` is not [N >= 1, K >= 1] non-negative integers with
      equal row sums of at least 2.
  """
  counts = np.asarray(counts)
  if counts.ndim != 2 or 0 in counts.shape:
    raise ValueError(f"counts must be [N, K] with N, K >= 1, got shape "
                     f"{counts.shape}")
  if counts.dtype.kind not in "iuf":
    raise ValueError(f"counts must be integers, got dtype {counts.dtype}")
  counts = counts.astype(np.float64)
  if not (np.all(np.isfinite(counts)) and np.all(counts == np.round(counts))
          and np.all(counts >= 0)):
    raise ValueError("counts must be non-negative integers")
  raters = counts.sum(axis=1)
  if np.any(raters != raters[0]):
    raise ValueError("every item needs the same number of raters, got "
                     f"{sorted(set(raters.astype(int).tolist()))}")
  n = raters[0]
  if n < 2:
    raise ValueError(f"kappa needs at least 2 raters per item, got {int(n)}")
  totals = counts.sum(axis=0)
  if np.count_nonzero(totals) == 1:
    return float("nan")
  observed = np.mean((counts * (counts - 1)).sum(axis=1) / (n * (n - 1)))
  shares = totals / totals.sum()
  chance = np.sum(shares * shares)
  return float((observed - chance) / (1.0 - chance))


def _check_settings(name: str, count: int, level: float | None) -> None:
  if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
    raise ValueError(f"{name} must be an integer, got {count!r}")
  if count < 1:
    raise ValueError(f"{name} must be at least 1, got {count}")
  if level is not None and not 0.0 < level < 1.0:
    raise ValueError(f"level must lie in (0, 1), got {level}")


def _blocks(total: int, row_elements: int) -> Iterator[int]:
  """Sizes of blocks of rows, summing to `total`, of bounded element count."""
  size = max(1, _BLOCK_ELEMENTS // max(1, row_elements))
  for start in range(0, total, size):
    yield min(size, total - start)


def _percentile_interval(stats: np.ndarray,
                         level: float) -> tuple[float, float]:
  """The central `level` interval of `stats`, NaNs left out."""
  stats = stats[~np.isnan(stats)]
  if not stats.size:
    return float("nan"), float("nan")
  low, high = np.quantile(stats, [(1.0 - level) / 2, (1.0 + level) / 2])
  return float(low), float(high)


def _one_dimensional(name: str, values: np.ndarray) -> np.ndarray:
  values = np.asarray(values, np.float64)
  if values.ndim != 1:
    raise ValueError(f"{name} must be 1-D, got shape {values.shape}")
  return values


def bootstrap_interval(values: np.ndarray,
                       statistic: Callable[[np.ndarray], float], *, seed: int,
                       num_resamples: int = 2000, level: float = 0.95,
                       batched: bool = False) -> tuple[float, float]:
  """Percentile bootstrap interval of a statistic, resampling items.

  Args:
    values: [N, ...] one entry per item (e.g. [N] acceptances, or [N, K]
      rating counts for `fleiss_kappa`).
    statistic: a resample [N, ...] -> a number. With `batched`, it gets
      resamples [R, N, ...] and returns [R] numbers (e.g.
      `lambda x: x.mean(axis=1)`), which avoids a Python loop.
    seed: seeds the NumPy Generator that draws the resamples.
    num_resamples: resamples drawn (with replacement, N items each).
    level: the interval's coverage.
    batched: see `statistic`; both ways see the same resamples.

  Returns:
    (low, high), the (1 - level) / 2 and (1 + level) / 2 quantiles of the
    statistic over the resamples, leaving out resamples where it is NaN;
    (nan, nan) for no items or when it is NaN on every resample.
  """
  _check_settings("num_resamples", num_resamples, level)
  values = np.asarray(values)
  if values.ndim == 0:
    raise ValueError("values must have an item axis, got a scalar")
  n = len(values)
  if not n:
    return float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  stats = []
  for size in _blocks(num_resamples, values.size):
    resamples = values[rng.integers(0, n, size=(size, n))]
    if batched:
      block = np.asarray(statistic(resamples), np.float64)
      if block.shape != (size,):
        raise ValueError(f"a batched statistic must return [{size}] values "
                         f"for [{size}, ...] resamples, got {block.shape}")
      stats.append(block)
    else:
      stats.append(np.array([statistic(r) for r in resamples], np.float64))
  return _percentile_interval(np.concatenate(stats), level)


def permutation_test(a: np.ndarray, b: np.ndarray, *, seed: int,
                     num_permutations: int = 10000) -> float:
  """Two-sided permutation test of a difference in means.

  Args:
    a: [Na] one sample (e.g. acceptances with the overlay).
    b: [Nb] the other (e.g. acceptances without it).
    seed: seeds the NumPy Generator that draws the permutations.
    num_permutations: random relabellings of the pooled sample.

  Returns:
    (count + 1) / (num_permutations + 1), where count is the number of
    relabellings whose |mean(a') - mean(b')| reaches the observed
    |mean(a) - mean(b)| (up to a relative 1e-9 for rounding; identical
    samples give 1). NaN when a sample is empty.
  """
  _check_settings("num_permutations", num_permutations, None)
  a, b = _one_dimensional("a", a), _one_dimensional("b", b)
  if not (a.size and b.size):
    return float("nan")
  observed = abs(a.mean() - b.mean()) * (1.0 - 1e-9)
  pooled = np.concatenate([a, b])
  rng = np.random.default_rng(seed)
  count = 0
  for size in _blocks(num_permutations, pooled.size):
    shuffled = rng.permuted(np.tile(pooled, (size, 1)), axis=1)
    diffs = shuffled[:, :a.size].mean(axis=1) - shuffled[:, a.size:].mean(
        axis=1)
    count += int(np.count_nonzero(np.abs(diffs) >= observed))
  return (count + 1) / (num_permutations + 1)


def difference_interval(a: np.ndarray, b: np.ndarray, *, seed: int,
                        num_resamples: int = 2000,
                        level: float = 0.95) -> tuple[float, float]:
  """Percentile bootstrap interval of mean(a) - mean(b).

  The two samples are resampled independently (each item with replacement
  within its own sample), as for two groups of judgements.

  Args:
    a: [Na] one sample.
    b: [Nb] the other.
    seed: seeds the NumPy Generator that draws the resamples.
    num_resamples: resample pairs drawn.
    level: the interval's coverage.

  Returns:
    (low, high) quantiles of the resampled differences; (nan, nan) when a
    sample is empty.
  """
  _check_settings("num_resamples", num_resamples, level)
  a, b = _one_dimensional("a", a), _one_dimensional("b", b)
  if not (a.size and b.size):
    return float("nan"), float("nan")
  rng = np.random.default_rng(seed)
  diffs = []
  for size in _blocks(num_resamples, a.size + b.size):
    mean_a = a[rng.integers(0, a.size, size=(size, a.size))].mean(axis=1)
    mean_b = b[rng.integers(0, b.size, size=(size, b.size))].mean(axis=1)
    diffs.append(mean_a - mean_b)
  return _percentile_interval(np.concatenate(diffs), level)
