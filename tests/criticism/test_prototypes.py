"""Greedy prototypes equal the dense float64 NumPy implementation of J(T)."""

import jax
import numpy as np
import pytest

from criticism_data import digit_features  # noqa: F401 (fixture)
from benchmarks import mmd_critic_reference as ref
from jaxaudit import criticism

# The reference's winning margins on the test data exceed float32 rounding of
# the scores (~1e-8 here) by far; below this, equality would be luck.
MIN_MARGIN = 1e-7


def _gamma(x, scale=1.0):
  return float(np.float32(criticism.median_gamma(x) * scale))


@pytest.mark.parametrize("seed,scale", [(0, 1.0), (1, 0.5), (2, 2.0)])
def test_clustered_data_with_outliers(seed, scale):
  x = ref.clustered_features(1200, 32, 6, 12, seed)
  gamma = _gamma(x, scale)
  expected, margins = ref.prototypes(ref.kernel_matrix(x, gamma), 16)
  assert margins.min() > MIN_MARGIN
  got = criticism.select_prototypes(x, 16, gamma, block_size=256)
  np.testing.assert_array_equal(got, expected)


def test_real_digit_features(digit_features):
  x, labels = digit_features
  gamma = _gamma(x)
  expected, margins = ref.prototypes(ref.kernel_matrix(x, gamma), 20)
  assert margins.min() > MIN_MARGIN
  np.testing.assert_array_equal(criticism.select_prototypes(x, 20, gamma),
                                expected)
  np.testing.assert_array_equal(criticism.select_prototypes(x, 20), expected)
  # The features separate the digits: 20 prototypes summarise all ten.
  assert set(labels[expected].tolist()) == set(range(10))


def test_float64_mode_matches_too():
  x = ref.clustered_features(400, 16, 4, 5, seed=7).astype(np.float64)
  gamma = criticism.median_gamma(x)
  expected, _ = ref.prototypes(ref.kernel_matrix(x, gamma), 12)
  with jax.enable_x64(True):
    got = criticism.select_prototypes(x, 12, gamma)
  np.testing.assert_array_equal(got, expected)


def test_ties_go_to_the_lowest_index():
  x = ref.clustered_features(150, 8, 3, 0, seed=4)
  doubled = np.concatenate([x, x])
  got = criticism.select_prototypes(doubled, 6, _gamma(x), block_size=64)
  expected, _ = ref.prototypes(ref.kernel_matrix(doubled, _gamma(x)), 6)
  np.testing.assert_array_equal(got, expected)
  assert (got < 150).all()


@pytest.mark.slow
def test_mmd2_falls_as_prototypes_are_added():
  x = ref.clustered_features(500, 16, 5, 5, seed=5)
  gamma = _gamma(x)
  kernel = ref.kernel_matrix(x, gamma)
  values = []
  for m in (1, 4, 16):
    selection = criticism.select_groups(x, np.zeros(500, int), m, 0, gamma)
    np.testing.assert_allclose(
        selection.mmd2[0], ref.mmd2(kernel, selection.prototypes[0]),
        atol=1e-6)
    values.append(selection.mmd2[0])
  assert values[0] > values[1] > values[2] > 0


def test_bad_arguments():
  with pytest.raises(ValueError, match="num_prototypes"):
    criticism.select_prototypes(np.zeros((3, 2)), 4)
  with pytest.raises(ValueError, match=r"\[n, d\]"):
    criticism.select_prototypes(np.zeros(3), 1)
