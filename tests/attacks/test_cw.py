"""Carlini-Wagner L2 on the shipped test model and real test digits."""

import numpy as np

from attack_fixtures import L2, attack, check_in_ball, digits


def test_cw_finds_adversarials_with_small_norm():
  result = attack("cw_l2", L2, steps=30, binary_search_steps=3, stepsize=0.05,
                  initial_const=1.0)
  _, _, images, labels, _ = digits()
  check_in_ball(result, images, L2, "l2")
  found = np.isfinite(result.min_norm)
  assert found.mean() > 0.8, found.mean()
  assert np.median(result.min_norm[found]) < 1.25
  covered = result.min_norm[None] <= np.asarray(L2)[:, None]
  assert result.success[covered].all()
  wrong = result.adv_class != np.asarray(labels)[None]
  np.testing.assert_array_equal(result.success, wrong)
