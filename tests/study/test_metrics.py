"""The human metrics on small studies whose numbers are worked out by hand:
item scores over the annotators who answered (an unfinished session weighs
only its items), run-level extrapolation, kappa over fully answered items,
proxy agreement without ties, the explanation effect, subset accuracy without
unlabelled images."""

import numpy as np
import pytest

from jaxaudit.study import design
from jaxaudit.study import metrics
from jaxaudit.study import statistics
from jaxaudit.study.judgements import Adversarial, Judgements
from jaxaudit.study.key import AdversarialSource, KeyTask, StudyKey

RUN = "run-x"
SEED = 5
ANNOTATORS = ("a", "b", "c")
CANDIDATES = tuple((c, str(c)) for c in range(4))
SETTINGS = metrics.Settings(seed=1, num_resamples=500, num_permutations=999)


def _key(errors=0, adversarials=0, subsets=0):
  tasks = {}
  for i in range(errors):
    tasks[f"e{i}"] = KeyTask("error", 10 + i, None, CANDIDATES)
  for i in range(adversarials):
    tasks[f"a{i}"] = KeyTask("adversarial", 20 + i, None, (), "cat")
  for i in range(subsets):
    for variant in ("sis", "random"):
      tasks[f"s{i}{variant}"] = KeyTask("subset", 30 + i, variant,
                                        CANDIDATES)
  return StudyKey(RUN, SEED, ANNOTATORS, tasks,
                  AdversarialSource("pgd", 0.1, "0.1", "saliency")
                  if adversarials else None, 0.05 if subsets else None)


def _judgements(annotator, errors=None, adversarial=None, subsets=None):
  return Judgements("f", RUN, annotator, errors or {}, adversarial or {},
                    subsets or {})


def test_rectified_top1_from_item_means_over_who_answered():
  key = _key(errors=3)
  # Predictions 1, 2, 3; labels 0, 0, 0.
  files = (
      _judgements("a", errors={"e0": (1,), "e1": (2,), "e2": ()}),
      _judgements("b", errors={"e0": (1,), "e1": (0,), "e2": (0, 3)}),
      _judgements("c", errors={"e0": (), "e1": (2,)}),  # Unfinished.
  )
  study = metrics.Study(key, files, SETTINGS)
  proxy = np.array([True, False, False])
  summary, scores = metrics.error_metrics(
      study, np.array([1, 2, 3]), np.array([0, 0, 0]), num_labelled=20,
      num_correct=14, proxies={"superclass": proxy})
  # Item scores: e0 2/3, e1 2/3, e2 1/2 (c did not answer e2).
  np.testing.assert_allclose(scores, [2 / 3, 2 / 3, 1 / 2])
  accepted = (2 / 3 + 2 / 3 + 1 / 2) / 3
  assert summary["accepted"]["value"] == pytest.approx(accepted)
  assert summary["rectified_top1"]["value"] == pytest.approx(
      (14 + 6 * accepted) / 20)
  low, high = summary["rectified_top1"]["interval"]
  share_low, share_high = summary["accepted"]["interval"]
  assert low == pytest.approx(0.7 + 0.3 * share_low)
  assert high == pytest.approx(0.7 + 0.3 * share_high)
  assert summary["label_accepted"]["value"] == pytest.approx((0 + 1 / 3
                                                              + 1 / 2) / 3)
  assert summary["top1"] == 0.7 and summary["num_errors"] == 6
  assert summary["judged_errors"] == 3
  # Kappa over e0 and e1 only (c skipped e2): both rated (1 reject, 2 accept).
  assert summary["kappa"]["items"] == 2
  p_item = (1 * 0 + 2 * 1) / (3 * 2)
  p_chance = (2 / 6) ** 2 + (4 / 6) ** 2
  assert summary["kappa"]["value"] == pytest.approx(
      (p_item - p_chance) / (1 - p_chance))
  # Majority accepts e0 and e1 (2/3), e2 is a tie and left out.
  assert summary["proxy_agreement"]["superclass"] == {"agreement": 0.5,
                                                      "items": 2}


def test_kappa_needs_two_annotators_and_full_items():
  key = _key(errors=2)
  study = metrics.Study(key, (_judgements("a", errors={"e0": (1,)}),),
                        SETTINGS)
  summary, _ = metrics.error_metrics(study, np.array([1, 1]),
                                     np.array([0, 0]), num_labelled=4,
                                     num_correct=2, proxies={})
  assert np.isnan(summary["kappa"]["value"])
  assert summary["kappa"]["annotators"] == 1
  assert summary["judged_errors"] == 1
  assert summary["accepted"]["value"] == 1.0


def test_adversarial_metrics_and_the_explanation_effect():
  key = _key(adversarials=4)
  rules = design.overlay_rules(key.ids("adversarial"), list(ANNOTATORS), SEED)
  accept = {"a": [1, 1, 0, 0], "b": [1, 0, 0, 0], "c": [1, 1, 1, 0]}
  files = tuple(_judgements(a, adversarial={
      t: Adversarial(bool(accept[a][i]), rules[t](a))
      for i, t in enumerate(key.ids("adversarial"))}) for a in ANNOTATORS)
  study = metrics.Study(key, files, SETTINGS)
  summary, scores = metrics.adversarial_metrics(
      study, num_labelled=10, num_robust=3, num_flipped=5,
      proxies={"plausible": np.array([True, True, False, True])})
  np.testing.assert_allclose(scores, [1, 2 / 3, 1 / 3, 0])
  assert summary["accepted"]["value"] == pytest.approx(0.5)
  assert summary["human_plausible_robust_accuracy"]["value"] == (
      pytest.approx((3 + 5 * 0.5) / 10))
  assert summary["robust_accuracy"] == 0.3
  with_overlay, without = [], []
  for a in ANNOTATORS:
    for i, t in enumerate(key.ids("adversarial")):
      (with_overlay if rules[t](a) else without).append(accept[a][i])
  effect = summary["explanation_effect"]
  assert effect["answers_with_overlay"] == len(with_overlay)
  assert effect["answers_without_overlay"] == len(without)
  assert effect["difference"] == pytest.approx(np.mean(with_overlay)
                                               - np.mean(without))
  assert effect["p_value"] == statistics.permutation_test(
      np.array(with_overlay, float), np.array(without, float),
      seed=metrics.metric_seed(1, "adversarial.permutation"),
      num_permutations=999)
  # Majority: accept, accept, reject, reject; the proxy says yes, yes, no, yes.
  assert summary["proxy_agreement"]["plausible"]["agreement"] == 0.75


def test_subset_accuracy_leaves_unlabelled_images_out():
  key = _key(subsets=3)
  labels = {"s0sis": 1, "s0random": 1, "s1sis": 2, "s1random": 2,
            "s2sis": -1, "s2random": -1}
  files = (
      _judgements("a", subsets={"s0sis": 1, "s0random": None, "s1sis": 2,
                                "s1random": 3, "s2sis": 0, "s2random": 0}),
      _judgements("b", subsets={"s0sis": 1, "s0random": 1, "s1sis": 0,
                                "s1random": None}),
  )
  study = metrics.Study(key, files, SETTINGS)
  summary, scores = metrics.subset_metrics(
      study, labels,
      model_correct={"s0sis": 1.0, "s0random": 0.5, "s1sis": 0.0,
                     "s1random": 0.0, "s2sis": 1.0, "s2random": 1.0},
      model_prediction={"s0sis": 1, "s1sis": 0, "s2sis": 0})
  assert summary["human_accuracy"]["sis"]["value"] == pytest.approx(
      (1 + 0.5) / 2)
  assert summary["human_accuracy"]["random"]["value"] == pytest.approx(
      (0.5 + 0) / 2)
  assert summary["model_accuracy"] == {"sis": 0.5, "random": 0.25}
  assert summary["none_share"]["random"] == pytest.approx(2 / 4)
  assert summary["none_share"]["sis"] == 0.0
  assert set(scores) == {"s0sis", "s0random", "s1sis", "s1random"}
  # People see the model's SIS class: s0 (1, 1), s1 (2 vs 0, 0 = 0), s2 (0).
  assert summary["agreement_with_model"]["value"] == pytest.approx(
      (1 + 0.5 + 1) / 3)
  assert summary["fraction"] == 0.05


def test_metric_seeds_are_fixed_and_distinct():
  assert metrics.metric_seed(0, "error.accepted") == metrics.metric_seed(
      0, "error.accepted")
  assert len({metrics.metric_seed(s, n) for s in (0, 1)
              for n in ("error.accepted", "error.kappa")}) == 4
