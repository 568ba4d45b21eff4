"""DeepFool's minimal perturbations on the pretrained CIFAR ResNet-20."""

import numpy as np
import pytest

from attack_fixtures import attack, check_in_ball, cifar

L2 = (0.05, 0.1, 0.25, 1.0)


@pytest.mark.slow
def test_deepfool_finds_small_l2_adversarials():
  result = attack("deepfool", L2, steps=8, candidates=4)
  _, _, images, labels, _ = cifar()
  check_in_ball(result, images, L2, "l2")
  found = np.isfinite(result.min_norm)
  assert found.mean() > 0.9, found.mean()
  # Standard CIFAR nets fall to L2 perturbations of a few hundredths.
  assert 0.0 <= np.median(result.min_norm[found]) < 0.25
  # At an epsilon above an example's minimal norm its adversarial is intact.
  covered = result.min_norm[None] <= np.asarray(L2)[:, None]
  assert result.success[covered].all()
  robust = (result.adv_class == np.asarray(labels)[None]).mean(axis=1)
  assert (np.diff(robust) <= 0).all(), robust
