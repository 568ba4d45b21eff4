"""DeepFool's minimal perturbations on the shipped test model and real test
digits."""

import numpy as np

from attack_fixtures import L2, attack, check_in_ball, digits


def test_deepfool_finds_small_l2_adversarials():
  result = attack("deepfool", L2, norm="l2", steps=20)
  _, _, images, labels, _ = digits()
  check_in_ball(result, images, L2, "l2")
  found = np.isfinite(result.min_norm)
  assert found.mean() > 0.9, found.mean()
  # The test model falls to L2 perturbations below 1 (a 16 x 16 x 3 image).
  assert 0.0 < np.median(result.min_norm[found]) < 1.0
  # At an epsilon above an example's minimal norm its adversarial is intact.
  covered = result.min_norm[None] <= np.asarray(L2)[:, None]
  assert result.success[covered].all()
  robust = (result.adv_class == np.asarray(labels)[None]).mean(axis=1)
  assert (np.diff(robust) <= 0).all(), robust
