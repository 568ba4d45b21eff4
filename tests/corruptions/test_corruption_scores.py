"""mCE and relative mCE against their definition's fixed points: AlexNet
scores exactly 1 on both, a model with half AlexNet's error on every
corruption scores 0.5, and a model whose corruptions cost nothing over its
clean error has relative mCE 0."""

import math

import pytest

from jaxaudit import classes
from jaxaudit.corruptions import metrics, scores, spec, tables

FAMILIES = {name: entry.family for name, entry in spec.CORRUPTIONS.items()}


def _flat(value_of):
  return {name: [value_of(name)] * 5
          for name in tables.ALEXNET_CORRUPTION_ERROR}


def test_alexnet_scores_one():
  out = scores.corruption_scores(
      _flat(tables.ALEXNET_CORRUPTION_ERROR.get),
      tables.ALEXNET_CLEAN_ERROR, FAMILIES)
  assert out["mce"] == pytest.approx(1.0)
  assert out["relative_mce"] == pytest.approx(1.0)
  assert set(out["family_ce"]) == {"noise", "blur", "weather", "digital"}


def test_half_the_error_scores_half_and_free_corruptions_score_zero():
  half = scores.corruption_scores(
      _flat(lambda c: tables.ALEXNET_CORRUPTION_ERROR[c] / 2), 0.2, FAMILIES)
  assert half["mce"] == pytest.approx(0.5)
  free = scores.corruption_scores(_flat(lambda c: 0.3), 0.3, FAMILIES)
  assert free["relative_mce"] == pytest.approx(0.0)
  assert free["mce"] > 0


def test_mce_needs_all_fifteen_and_ignores_the_extra_four():
  errors = _flat(lambda c: 0.5)
  errors.pop("fog")
  errors["spatter"] = [0.9] * 5
  out = scores.corruption_scores(errors, 0.2, FAMILIES)
  assert math.isnan(out["mce"]) and math.isnan(out["relative_mce"])
  assert "spatter" not in out["ce"] and len(out["ce"]) == 14


def _points(top1: float, names) -> dict:
  return {"top1": {n: {str(s): top1 for s in range(1, 6)} for n in names}}


def test_baseline_scores_say_when_they_apply_and_what_they_compare():
  """Scores only for an ImageNet model on ImageNet parameters at all five
  severities; the notes say the sample bias and, with elastic transform
  among the corruptions, that imagecorruptions' differs from ImageNet-C's."""
  names = list(tables.ALEXNET_CORRUPTION_ERROR)
  out, notes = metrics.baseline_scores(_points(0.6, names), names,
                                       range(1, 6), 0.8, classes.IMAGENET1K,
                                       "imagenet")
  assert out["ce"]["fog"] == pytest.approx(
      0.4 / tables.ALEXNET_CORRUPTION_ERROR["fog"])
  assert math.isfinite(out["mce"])
  assert notes == [metrics.SAMPLE_NOTE, metrics.ELASTIC_NOTE]
  others = [n for n in names if n != "elastic_transform"]
  out, notes = metrics.baseline_scores(_points(0.6, others), others,
                                       range(1, 6), 0.8, classes.IMAGENET1K,
                                       "imagenet")
  assert math.isnan(out["mce"]) and metrics.ELASTIC_NOTE not in notes
  out, notes = metrics.baseline_scores(_points(0.6, names), names, [1, 3],
                                       0.8, "cifar10", "cifar")
  assert out == {}
  assert notes == ["no mCE against AlexNet: the model's classes are "
                   "cifar10, not ImageNet's; the corruptions use the cifar "
                   "parameters; not all five severities ran"]
