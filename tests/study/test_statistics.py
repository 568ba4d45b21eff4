"""Fleiss' kappa against a published worked example and hand computations;
the bootstrap intervals and the permutation test against what they must do
on samples with a known answer."""

import math

import numpy as np
import pytest

from jaxaudit.study import statistics

# Wikipedia, "Fleiss' kappa", worked example: 10 items, 14 raters, 5
# categories; p_j = 0.143, 0.200, 0.279, 0.150, 0.229; P = 0.378,
# Pe = 0.213, kappa = 0.210.
WIKIPEDIA = np.array([[0, 0, 0, 0, 14],
                      [0, 2, 6, 4, 2],
                      [0, 0, 3, 5, 6],
                      [0, 3, 9, 2, 0],
                      [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0],
                      [3, 2, 6, 3, 0],
                      [2, 5, 3, 2, 2],
                      [6, 5, 2, 1, 0],
                      [0, 2, 2, 3, 7]])


def _kappa_by_pairs(ratings):
  """Fleiss' kappa from ratings [N, n] (a category per rater) the long way:
  agreeing ordered rater pairs per item, category shares over all ratings."""
  ratings = np.asarray(ratings)
  n = ratings.shape[1]
  agree = [sum(r[i] == r[j] for i in range(n) for j in range(n) if i != j)
           / (n * (n - 1)) for r in ratings]
  _, totals = np.unique(ratings, return_counts=True)
  chance = sum((t / ratings.size) ** 2 for t in totals)
  return (np.mean(agree) - chance) / (1 - chance)


def test_kappa_matches_the_wikipedia_example():
  assert statistics.fleiss_kappa(WIKIPEDIA) == pytest.approx(0.210, abs=5e-4)
  ratings = [np.repeat(np.arange(5), row) for row in WIKIPEDIA]
  assert statistics.fleiss_kappa(WIKIPEDIA) == pytest.approx(
      _kappa_by_pairs(ratings), abs=1e-12)


def test_kappa_matches_a_hand_computation():
  # P_i = 1, 1, 1/3 -> P = 7/9; shares 5/9, 4/9 -> Pe = 41/81;
  # kappa = (63/81 - 41/81) / (40/81) = 22/40.
  assert statistics.fleiss_kappa([[3, 0], [0, 3], [2, 1]]) == pytest.approx(
      0.55, abs=1e-12)
  # Two raters who always disagree over two balanced categories: -1.
  assert statistics.fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)


def test_kappa_matches_the_pairwise_definition_on_random_ratings():
  rng = np.random.default_rng(0)
  for n, k in [(2, 2), (3, 4), (5, 3)]:
    ratings = rng.integers(0, k, size=(25, n))
    counts = np.stack([np.bincount(r, minlength=k) for r in ratings])
    assert statistics.fleiss_kappa(counts) == pytest.approx(
        _kappa_by_pairs(ratings), abs=1e-12)


def test_kappa_is_one_for_perfect_agreement_and_nan_for_one_category():
  assert statistics.fleiss_kappa([[3, 0, 0], [0, 3, 0], [3, 0, 0]]) == 1.0
  assert math.isnan(statistics.fleiss_kappa([[4, 0], [4, 0], [4, 0]]))


def test_kappa_ignores_the_order_of_items_and_categories():
  rng = np.random.default_rng(1)
  shuffled = WIKIPEDIA[rng.permutation(10)][:, rng.permutation(5)]
  assert statistics.fleiss_kappa(shuffled) == pytest.approx(
      statistics.fleiss_kappa(WIKIPEDIA), abs=1e-12)
  assert statistics.fleiss_kappa(WIKIPEDIA.astype(np.float32)) == (
      pytest.approx(statistics.fleiss_kappa(WIKIPEDIA), abs=1e-12))


@pytest.mark.parametrize("counts,match", [
    ([[3, 0], [2, 0]], "same number of raters"),
    ([[1, 0], [0, 1]], "at least 2 raters"),
    ([[3, -1], [1, 1]], "non-negative integers"),
    ([[1.5, 0.5], [1, 1]], "non-negative integers"),
    ([[np.nan, 2], [1, 1]], "non-negative integers"),
    ([3, 0], r"\[N, K\]"),
    (np.zeros((0, 3), int), r"\[N, K\]"),
    (np.ones((2, 2), bool), "integers"),
])
def test_kappa_refuses_bad_counts(counts, match):
  with pytest.raises(ValueError, match=match):
    statistics.fleiss_kappa(np.asarray(counts))


def test_permutation_test_of_identical_samples_gives_one():
  a = np.random.default_rng(2).normal(size=40)
  assert statistics.permutation_test(a, a.copy(), seed=0) == 1.0
  assert statistics.permutation_test(np.ones(5), np.ones(9), seed=0) == 1.0


def test_permutation_test_of_separated_samples_gives_the_floor():
  a, b = np.arange(30.0), np.arange(100.0, 130.0)
  assert statistics.permutation_test(a, b, seed=0) == 1 / 10001
  assert statistics.permutation_test(
      b, a, seed=1, num_permutations=999) == 1 / 1000


def test_permutation_test_matches_the_exact_null_distribution():
  # Of the 6 splits of {0, 1, 2, 3} in pairs, 2 reach |difference| = 2.
  p = statistics.permutation_test(np.array([0.0, 1.0]), np.array([2.0, 3.0]),
                                  seed=3, num_permutations=20000)
  assert p == pytest.approx(1 / 3, abs=0.015)


def test_permutation_test_is_seeded_and_calibrated_under_the_null():
  rng = np.random.default_rng(4)
  a, b = rng.random(20) < 0.5, rng.random(25) < 0.6
  p = statistics.permutation_test(a, b, seed=5)
  assert statistics.permutation_test(a, b, seed=5) == p
  ps = np.array([statistics.permutation_test(rng.normal(size=12),
                                             rng.normal(size=12), seed=s,
                                             num_permutations=199)
                 for s in range(200)])
  # Under the null the p-values are about uniform.
  assert 0.0 <= np.mean(ps < 0.05) <= 0.11
  assert 0.4 <= np.mean(ps < 0.5) <= 0.6


def test_permutation_test_of_an_empty_sample_is_nan():
  assert math.isnan(statistics.permutation_test(np.ones(3), np.ones(0),
                                                seed=0))


def _mean_batched(x):
  return x.mean(axis=1)


def test_bootstrap_interval_covers_the_mean_and_narrows_with_data():
  rng = np.random.default_rng(6)
  widths = []
  for n in (40, 4000):
    values = (rng.random(n) < 0.7).astype(np.float64)
    low, high = statistics.bootstrap_interval(values, np.mean, seed=0)
    assert low < values.mean() < high
    # About the normal approximation's 2 * 1.96 * sd / sqrt(n).
    expected = 2 * 1.96 * values.std() / math.sqrt(n)
    assert high - low == pytest.approx(expected, rel=0.2)
    widths.append(high - low)
  assert widths[1] < widths[0] / 5


def test_bootstrap_interval_is_seeded_and_batching_sees_the_same_resamples():
  values = np.random.default_rng(7).normal(size=(50,))
  first = statistics.bootstrap_interval(values, np.mean, seed=1)
  assert statistics.bootstrap_interval(values, np.mean, seed=1) == first
  assert statistics.bootstrap_interval(values, np.mean, seed=2) != first
  batched = statistics.bootstrap_interval(values, _mean_batched, seed=1,
                                          batched=True)
  assert batched == pytest.approx(first, abs=1e-12)
  narrow = statistics.bootstrap_interval(values, np.mean, seed=1, level=0.5)
  assert first[0] < narrow[0] < narrow[1] < first[1]


def test_bootstrap_interval_of_kappa_over_items():
  low, high = statistics.bootstrap_interval(
      WIKIPEDIA, statistics.fleiss_kappa, seed=0, num_resamples=500)
  assert low < statistics.fleiss_kappa(WIKIPEDIA) < high


def test_bootstrap_interval_degenerate_cases():
  assert all(math.isnan(x) for x in statistics.bootstrap_interval(
      np.zeros(0), np.mean, seed=0))
  assert all(math.isnan(x) for x in statistics.bootstrap_interval(
      np.ones(5), lambda x: float("nan"), seed=0, num_resamples=10))
  assert statistics.bootstrap_interval(np.full(7, 0.25), np.mean,
                                       seed=0) == (0.25, 0.25)
  with pytest.raises(ValueError, match="level"):
    statistics.bootstrap_interval(np.ones(3), np.mean, seed=0, level=1.0)
  with pytest.raises(ValueError, match="num_resamples"):
    statistics.bootstrap_interval(np.ones(3), np.mean, seed=0,
                                  num_resamples=0)
  with pytest.raises(ValueError, match=r"\[4\] values"):
    statistics.bootstrap_interval(np.ones(3), np.mean, seed=0,
                                  num_resamples=4, batched=True)


def test_difference_interval_covers_the_difference_and_has_its_width():
  rng = np.random.default_rng(8)
  a = (rng.random(300) < 0.6).astype(np.float64)
  b = (rng.random(200) < 0.4).astype(np.float64)
  low, high = statistics.difference_interval(a, b, seed=0)
  assert 0 < low < a.mean() - b.mean() < high
  expected = 2 * 1.96 * math.sqrt(a.var() / a.size + b.var() / b.size)
  assert high - low == pytest.approx(expected, rel=0.2)
  assert statistics.difference_interval(a, b, seed=0) == (low, high)
  flipped = statistics.difference_interval(b, a, seed=0)
  assert flipped[1] < 0


def test_difference_interval_of_an_empty_sample_is_nan():
  assert all(math.isnan(x) for x in statistics.difference_interval(
      np.ones(0), np.ones(4), seed=0))
