"""Carlini-Wagner L2 on the pretrained CIFAR ResNet-20."""

import numpy as np
import pytest

from attack_fixtures import attack, check_in_ball, cifar

L2 = (0.1, 0.5)


@pytest.mark.slow
def test_cw_finds_adversarials_with_small_norm():
  result = attack("cw_l2", L2, binary_search_steps=2, steps=8,
                  initial_const=1.0)
  _, _, images, labels, _ = cifar()
  check_in_ball(result, images, L2, "l2")
  found = np.isfinite(result.min_norm)
  assert found.mean() > 0.8, found.mean()
  assert np.median(result.min_norm[found]) < 0.5
  covered = result.min_norm[None] <= np.asarray(L2)[:, None]
  assert result.success[covered].all()
  wrong = result.adv_class != np.asarray(labels)[None]
  np.testing.assert_array_equal(result.success, wrong)
