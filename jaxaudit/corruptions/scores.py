"""Corruption errors, mCE and relative mCE (Hendrycks & Dietterich 2019).

A model's corruption error on corruption c is its top-1 error summed over
the five severities, divided by AlexNet's; the mCE averages it over the 15
ImageNet-C corruptions. The relative CE first subtracts each model's clean
error (how much the corruption costs, not how good the model is). The
AlexNet numbers are `tables.ALEXNET_CORRUPTION_ERROR` and
`tables.ALEXNET_CLEAN_ERROR`; they are ImageNet's, so these scores mean
something for an ImageNet model on ImageNet images only (and on a sample
easier than the validation set they come out low).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from jaxaudit.corruptions import tables


def corruption_scores(errors: Mapping[str, Sequence[float]],
                      clean_error: float,
                      families: Mapping[str, str]) -> dict:
  """CE and relative CE per ImageNet-C corruption, their means, per family.

  Args:
    errors: corruption -> top-1 error at severities 1-5 (corruptions
      without an AlexNet baseline, the four extra ones, are left out).
    clean_error: the model's top-1 error on the clean images.
    families: corruption -> its family ("noise", "blur", ...).

  Returns:
    {"ce": {c: CE}, "relative_ce": {c: relative CE}, "mce", "relative_mce"
    (NaN unless all 15 corruptions are given), "family_ce":
    {family: mean CE of its corruptions given}}.
  """
  baseline = tables.ALEXNET_CORRUPTION_ERROR
  ce, relative = {}, {}
  for name, by_severity in errors.items():
    if name not in baseline:
      continue
    mean = float(np.mean(by_severity))
    ce[name] = mean / baseline[name]
    relative[name] = ((mean - clean_error)
                      / (baseline[name] - tables.ALEXNET_CLEAN_ERROR))
  complete = set(ce) == set(baseline)
  by_family: dict[str, list[float]] = {}
  for name, value in ce.items():
    by_family.setdefault(families[name], []).append(value)
  return {
      "ce": ce, "relative_ce": relative,
      "mce": float(np.mean(list(ce.values()))) if complete else float("nan"),
      "relative_mce": (float(np.mean(list(relative.values())))
                       if complete else float("nan")),
      "family_ce": {f: float(np.mean(v)) for f, v in by_family.items()}}
