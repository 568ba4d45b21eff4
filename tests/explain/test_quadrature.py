"""Quadrature rules: exact where they should be, and Captum's node placement."""

import numpy as np
import pytest

from jaxaudit.errors import ParameterError
from jaxaudit.explain import quadrature


@pytest.mark.parametrize("rule", quadrature.RULES)
def test_weights_sum_to_one_and_nodes_in_unit_interval(rule):
  alphas, weights = quadrature.nodes_and_weights(rule, 7)
  assert np.isclose(weights.sum(), 1.0)
  assert alphas.min() >= 0 and alphas.max() <= 1


def test_gauss_legendre_is_exact_for_high_degree_polynomials():
  alphas, weights = quadrature.nodes_and_weights("gausslegendre", 8)
  # Degree 15 is integrated exactly by 8 nodes: int_0^1 a^15 = 1/16.
  assert np.isclose((weights * alphas ** 15).sum(), 1 / 16, rtol=1e-12)


def test_riemann_nodes_match_captum_placement_trapezoid_weights_sum_to_one():
  left, _ = quadrature.nodes_and_weights("riemann_left", 4)
  right, _ = quadrature.nodes_and_weights("riemann_right", 4)
  middle, _ = quadrature.nodes_and_weights("riemann_middle", 4)
  trapezoid, w = quadrature.nodes_and_weights("riemann_trapezoid", 4)
  np.testing.assert_allclose(left, [0, .25, .5, .75])
  np.testing.assert_allclose(right, [.25, .5, .75, 1])
  np.testing.assert_allclose(middle, [.125, .375, .625, .875])
  np.testing.assert_allclose(trapezoid, [0, 1 / 3, 2 / 3, 1])
  np.testing.assert_allclose(w, [1 / 6, 1 / 3, 1 / 3, 1 / 6])


def test_bad_rule_and_steps_name_the_field():
  with pytest.raises(ParameterError, match="ig.method"):
    quadrature.nodes_and_weights("simpson", 8)
  with pytest.raises(ParameterError, match="at least 2 steps"):
    quadrature.nodes_and_weights("riemann_left", 1)
