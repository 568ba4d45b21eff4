"""FGSM on the pretrained CIFAR ResNet-20 and real CIFAR-10 images."""

import numpy as np

from attack_fixtures import attack, check_in_ball, cifar, clean_accuracy

EPS = (0.5 / 255, 1 / 255, 2 / 255, 4 / 255)


def test_fgsm_stays_in_ball_and_lowers_accuracy():
  result = attack("fgsm", EPS)
  _, _, images, labels, _ = cifar()
  check_in_ball(result, images, EPS, "linf")
  robust = (result.adv_class == np.asarray(labels)[None]).mean(axis=1)
  assert (robust <= clean_accuracy()).all()
  assert (np.diff(robust) <= 0).all(), robust
  assert robust[-1] < 0.5 * clean_accuracy(), robust
  np.testing.assert_array_equal(result.success,
                                result.adv_class != np.asarray(labels)[None])
