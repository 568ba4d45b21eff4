"""Error categories, shares and the multinomial bootstrap."""

import numpy as np
import pytest

from jaxaudit.taxonomy import metaclass, plausibility, rectified


def test_every_category_on_a_hand_made_multi_label_set():
  superclass, _ = metaclass.imagenet_metaclasses()
  #        correct, multi, near-dup, fine (dogs), real, unlabelled
  labels = np.array([281, 281, 836, 162, 0, -1])
  preds = np.array([281, 282, 837, 161, 999, 3])
  sets = [[281], [281, 282], [836], [162], [0], []]
  plaus = plausibility.plausibility(labels, preds, sets, superclass,
                                    max_distance=4)
  cats = rectified.categorize(labels, preds, plaus)
  assert cats.tolist() == ["correct", "multi_object", "near_duplicate_class",
                           "fine_grained", "real_error", "unlabelled"]
  shares = rectified.category_shares(cats)
  assert shares == {"multi_object": 0.25, "near_duplicate_class": 0.25,
                    "fine_grained": 0.25, "real_error": 0.25}


def test_wordnet_distance_alone_makes_an_error_fine_grained():
  labels, preds = np.array([281]), np.array([285])  # tabby -> Egyptian cat
  for distance, category in ((4, "fine_grained"), (1, "real_error"),
                             (-1, "real_error")):
    plaus = plausibility.plausibility(labels, preds, None, None,
                                      max_distance=distance)
    assert rectified.categorize(labels, preds, plaus)[0] == category
    # The same pair is a plausible (adversarial) label exactly when it is a
    # forgivable mistake: one judgement.
    assert plaus["plausible"][0] == (category != "real_error")


def test_shares_sum_to_one_or_are_zero_without_errors():
  cats = np.array(["real_error", "fine_grained", "fine_grained", "correct"],
                  dtype=object)
  assert sum(rectified.category_shares(cats).values()) == pytest.approx(1.0)
  assert set(rectified.category_shares(cats[3:]).values()) == {0.0}


def test_multinomial_bootstrap_matches_resampling_examples():
  rng = np.random.default_rng(0)
  plain = rng.random(400) < 0.6
  rect = plain | (rng.random(400) < 0.5)
  out = rectified.accuracy_with_ci(plain, rect, 4000, 0.95,
                                   np.random.default_rng(1))
  assert out["top1"] == plain.mean() and out["rectified_top1"] == rect.mean()
  resampled = rng.integers(0, 400, (4000, 400))
  explicit = rect[resampled].mean(1) - plain[resampled].mean(1)
  expected = np.percentile(explicit, [2.5, 97.5])
  np.testing.assert_allclose(out["ci"]["gain"], expected, atol=0.01)
  low, high = out["ci"]["rectified_top1"]
  assert low < out["rectified_top1"] < high
  assert out["ci"]["gain"][0] >= 0  # rect >= plain on every example.


def test_category_intervals_contain_the_shares():
  cats = np.array(["correct"] * 50 + ["real_error"] * 30 + ["fine_grained"] * 20
                  + ["unlabelled"] * 5, dtype=object)
  ci = rectified.shares_with_ci(cats, 2000, 0.9, np.random.default_rng(0))
  shares = rectified.category_shares(cats)
  for c in rectified.CATEGORIES:
    assert ci[c][0] <= shares[c] <= ci[c][1]
  assert ci["multi_object"] == [0.0, 0.0]
  assert 0.25 < ci["fine_grained"][0] < 0.4 < ci["fine_grained"][1] < 0.55
