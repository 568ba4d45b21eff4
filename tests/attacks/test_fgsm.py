"""FGSM on the shipped test model and real test digits."""

import numpy as np

from attack_fixtures import LINF, attack, check_in_ball, clean_accuracy, digits


def test_fgsm_stays_in_ball_and_lowers_accuracy():
  result = attack("fgsm", LINF)
  _, _, images, labels, _ = digits()
  check_in_ball(result, images, LINF, "linf")
  robust = (result.adv_class == np.asarray(labels)[None]).mean(axis=1)
  assert (robust <= clean_accuracy()).all()
  assert (np.diff(robust) <= 0).all(), robust
  assert robust[-1] < 0.5 * clean_accuracy(), robust
  np.testing.assert_array_equal(result.success,
                                result.adv_class != np.asarray(labels)[None])
