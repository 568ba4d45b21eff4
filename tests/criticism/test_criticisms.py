"""Greedy criticisms equal the dense float64 NumPy witness + log-det search."""

import numpy as np
import pytest

from criticism_data import digit_features  # noqa: F401 (fixture)
from benchmarks import mmd_critic_reference as ref
from jaxaudit import criticism

MIN_MARGIN = 1e-7  # See test_prototypes.py.


@pytest.mark.parametrize("seed,scale", [(0, 1.0), (3, 2.0)])
@pytest.mark.parametrize("regularizer", ["logdet", "none"])
def test_clustered_data_with_outliers(seed, scale, regularizer):
  x = ref.clustered_features(1200, 32, 6, 12, seed)
  gamma = float(np.float32(criticism.median_gamma(x) * scale))
  kernel = ref.kernel_matrix(x, gamma)
  protos, _ = ref.prototypes(kernel, 16)
  expected, margins = ref.criticisms(kernel, protos, 16, regularizer)
  assert margins.min() > MIN_MARGIN
  got = criticism.select_criticisms(x, protos, 16, gamma, regularizer,
                                    block_size=256)
  np.testing.assert_array_equal(got, expected)
  if regularizer == "logdet":  # The planted outliers are what is criticised.
    assert set(range(1188, 1200)) <= set(got.tolist())


def test_real_digit_features(digit_features):
  x = digit_features[0]
  gamma = float(np.float32(criticism.median_gamma(x)))
  kernel = ref.kernel_matrix(x, gamma)
  protos = criticism.select_prototypes(x, 10, gamma)
  expected, margins = ref.criticisms(kernel, protos, 20)
  assert margins.min() > MIN_MARGIN
  got = criticism.select_criticisms(x, protos, 20, gamma)
  np.testing.assert_array_equal(got, expected)
  assert not set(got.tolist()) & set(protos.tolist())


def test_log_det_stops_at_a_singular_kernel():
  points = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
  x = np.repeat(points, 2, axis=0)  # 4 points, each twice.
  got = criticism.select_criticisms(x, [0], 7, 0.1)
  expected, _ = ref.criticisms(ref.kernel_matrix(x, 0.1), np.asarray([0]), 7)
  np.testing.assert_array_equal(got, expected)
  assert sorted((got // 2).tolist()) == [0, 1, 2, 3]  # one of each pair.
  assert len(criticism.select_criticisms(x, [0], 7, 0.1, "none")) == 7


def test_bad_arguments():
  x = np.zeros((4, 2), np.float32)
  with pytest.raises(ValueError, match="prototype_indices"):
    criticism.select_criticisms(x, [0, 0], 1)
  with pytest.raises(ValueError, match="num_criticisms"):
    criticism.select_criticisms(x, [0], 4)
  with pytest.raises(ValueError, match="regularizer"):
    criticism.select_criticisms(x, [0], 1, 1.0, "trace")
