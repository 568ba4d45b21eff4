"""Paired right/wrong counts and the exact McNemar test against hand counts
and binomial tails summed exactly in fractions: a one-sided 0 vs 5 split is
2 / 32, an even split is 1, no discordant examples is 1, and (40, 70) matches
2 * sum_{i <= 40} C(110, i) / 2^110; the p-value is symmetric in its
arguments and never exceeds 1."""

import fractions
import math

import numpy as np
import pytest

from jaxaudit.comparison import agreement


def _exact_p(only_a, only_b):
  """2 * P(X <= min) for X ~ Binomial(n, 1/2), in exact fractions, capped."""
  n = only_a + only_b
  if n == 0:
    return 1.0
  tail = fractions.Fraction(sum(math.comb(n, i)
                                for i in range(min(only_a, only_b) + 1)), 2 ** n)
  return float(min(fractions.Fraction(1), 2 * tail))


def test_pair_counts_on_a_hand_example():
  a = np.array([True, True, False, False, True, False, True])
  b = np.array([True, False, True, False, True, False, False])
  # Both right: 0, 4; only a: 1, 6; only b: 2; both wrong: 3, 5.
  assert agreement.pair_counts(a, b) == {
      "both_right": 2, "only_a": 2, "only_b": 1, "both_wrong": 2}
  # Swapping the models swaps only_a and only_b; 0/1 ints count like bools.
  assert agreement.pair_counts(b.astype(int), a.astype(int)) == {
      "both_right": 2, "only_a": 1, "only_b": 2, "both_wrong": 2}
  counts = agreement.pair_counts(a, b)
  assert sum(counts.values()) == len(a)
  assert all(isinstance(v, int) for v in counts.values())


def test_pair_counts_of_no_examples_are_zero():
  empty = np.zeros(0, bool)
  assert agreement.pair_counts(empty, empty) == {
      "both_right": 0, "only_a": 0, "only_b": 0, "both_wrong": 0}


def test_hand_computed_tails():
  # 0 vs 5: the only split as uneven on that side is 0 itself, 1 / 2^5.
  assert agreement.mcnemar_p(0, 5) == pytest.approx(2 / 32, rel=1e-12)
  # 1 vs 6: (C(7, 0) + C(7, 1)) / 2^7 = 8 / 128, doubled.
  assert agreement.mcnemar_p(1, 6) == pytest.approx(16 / 128, rel=1e-12)
  # 2 vs 8: (1 + 10 + 45) / 1024 = 56 / 1024, doubled.
  assert agreement.mcnemar_p(8, 2) == pytest.approx(112 / 1024, rel=1e-12)
  # 0 vs 1: the lone discordant example says nothing: 2 * 1/2 = 1.
  assert agreement.mcnemar_p(0, 1) == 1.0


@pytest.mark.parametrize("m", [1, 2, 7, 50, 500])
def test_an_even_split_is_one(m):
  assert agreement.mcnemar_p(m, m) == 1.0


def test_no_discordant_examples_is_one():
  assert agreement.mcnemar_p(0, 0) == 1.0


@pytest.mark.parametrize("only_a, only_b", [
    (40, 70), (0, 40), (3, 30), (10, 11), (200, 260), (0, 1000), (300, 1000),
    (480, 520)])
def test_matches_the_exact_fraction_sum(only_a, only_b):
  # (0, 1000): 2^-999, still a normal double (from n ~ 1075 the true tail
  # underflows to 0 in any float64).
  got = agreement.mcnemar_p(only_a, only_b)
  assert got == pytest.approx(_exact_p(only_a, only_b), rel=1e-9)
  assert 0.0 < got <= 1.0


def test_forty_against_seventy():
  # 2 * sum_{i <= 40} C(110, i) / 2^110 = 0.0054474... (exact fractions).
  want = 2 * fractions.Fraction(sum(math.comb(110, i) for i in range(41)),
                                2 ** 110)
  assert agreement.mcnemar_p(40, 70) == pytest.approx(float(want), rel=1e-10)
  assert 0.00544 < agreement.mcnemar_p(40, 70) < 0.00545


@pytest.mark.parametrize("seed", range(3))
def test_symmetric_in_its_arguments(seed):
  rng = np.random.default_rng(seed)
  for only_a, only_b in rng.integers(0, 300, size=(40, 2)):
    only_a, only_b = int(only_a), int(only_b)
    assert agreement.mcnemar_p(only_a, only_b) == agreement.mcnemar_p(
        only_b, only_a)


def test_more_uneven_splits_of_the_same_n_are_less_likely():
  ps = [agreement.mcnemar_p(k, 60 - k) for k in range(31)]
  assert all(p < q for p, q in zip(ps, ps[1:]))
  assert ps[-1] == 1.0
