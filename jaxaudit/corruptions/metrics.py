"""What the shift stage reports of predictions under shift, from every
process's rows gathered (host NumPy, sorted by id).

Per corruption and severity (`per_point`): top-1, the rectified top-1 under
the job's judgement (an error it accepts counts as correct), the share of
errors it accepts, the expected calibration error, NLL and the flip rate
against the clean prediction. Then means per severity and per family
(`aggregates`), corruption errors and mCE where AlexNet's numbers apply
(`baseline_scores`), and the first severity at which each prediction flips.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from jaxaudit import classes
from jaxaudit.calibration import binning
from jaxaudit.corruptions import scores, spec
from jaxaudit.taxonomy import judgement

SAMPLE_NOTE = ("mCE and relative mCE compare with AlexNet's errors on the "
               "whole ImageNet validation set: on a sample easier than it "
               "(fewer errors when clean) they come out lower than the "
               "model's published numbers")
ELASTIC_NOTE = ("elastic_transform follows imagecorruptions 1.1.2, which "
                "redefined it for any image size (a displacement field "
                "scaled to the image, no random affine), not the ImageNet-C "
                "release on which AlexNet's error was measured: its CE, and "
                "the mCE through it, compare different corruptions")
# Metrics averaged per severity and per family.
AVERAGED = ("top1", "rectified_top1", "ece", "flip_rate")


def _mean(values: np.ndarray) -> float:
  return float(values.mean()) if values.size else float("nan")


def score_point(labels: np.ndarray, prediction: np.ndarray,
                confidence: np.ndarray, label_logprob: np.ndarray,
                accepted: np.ndarray, bins: int,
                clean: np.ndarray | None = None) -> dict:
  """The metrics of one set of predictions under shift.

  Args:
    labels: int [N] (-1 unlabelled: only the flip rate counts it).
    prediction, confidence, label_logprob: [N].
    accepted: bool [N] the judgement accepts the prediction for the label.
    bins: equal-width bins of the ECE.
    clean: int [N] the same images' clean predictions (None: no flip rate).
  """
  labelled = labels >= 0
  correct = (prediction == labels)[labelled]
  errors = ~correct
  out = {
      "top1": _mean(correct),
      "rectified_top1": _mean(correct | accepted[labelled]),
      "accepted_errors": _mean(accepted[labelled][errors]),
      "num_errors": int(errors.sum()),
      "ece": (binning.ece(confidence[labelled], correct, bins, "equal_width")
              if labelled.any() else float("nan")),
      "nll": _mean(-label_logprob[labelled]),
  }
  if clean is not None:
    out["flip_rate"] = _mean(prediction != clean)
  return out


def accepted_by(taxonomy: judgement.Taxonomy, labels: np.ndarray,
                prediction: np.ndarray, sets) -> np.ndarray:
  """bool [N]: labelled, and the judgement accepts the prediction."""
  return taxonomy.judge(labels, prediction, sets)["plausible"] & (labels >= 0)


def per_point(gathered: dict, names: Sequence[str], chosen: Sequence[int],
              taxonomy: judgement.Taxonomy, sets, bins: int
              ) -> tuple[dict, np.ndarray]:
  """Every corruption at every severity.

  Args:
    gathered: `label`, `clean` [N]; `prediction`, `confidence`,
      `label_logprob` [N, C, S].
    names, chosen: the C corruptions and S severities.
    taxonomy, sets: the job's judgement and its label sets of [N].
    bins: ECE bins.

  Returns:
    ({metric: {corruption: {severity: value}}}, accepted bool [N, C, S]).
  """
  labels = gathered["label"]
  accepted = np.zeros(gathered["prediction"].shape, bool)
  points: dict[str, dict] = {}
  for c, name in enumerate(names):
    for s, severity in enumerate(chosen):
      pred = gathered["prediction"][:, c, s]
      accepted[:, c, s] = accepted_by(taxonomy, labels, pred, sets)
      point = score_point(labels, pred, gathered["confidence"][:, c, s],
                          gathered["label_logprob"][:, c, s],
                          accepted[:, c, s], bins, gathered["clean"])
      for metric, value in point.items():
        points.setdefault(metric, {}).setdefault(name, {})[
            str(severity)] = value
  return points, accepted


def clean_point(gathered: dict, taxonomy: judgement.Taxonomy, sets,
                bins: int) -> dict:
  """Top-1, rectified top-1 and ECE of the clean predictions (`clean`,
  `clean_confidence` [N]), to compare with."""
  labels, clean = gathered["label"], gathered["clean"]
  labelled = labels >= 0
  correct = (clean == labels)[labelled]
  accepted = accepted_by(taxonomy, labels, clean, sets)[labelled]
  return {"top1": _mean(correct),
          "rectified_top1": _mean(correct | accepted),
          "ece": (binning.ece(gathered["clean_confidence"][labelled], correct,
                              bins, "equal_width")
                  if labelled.any() else float("nan"))}


def aggregates(points: dict, names: Sequence[str],
               chosen: Sequence[int]) -> dict:
  """Means over the corruptions per severity, per family over severities,
  and each corruption's error averaged over its severities."""
  per_severity = {m: {str(s): float(np.mean([points[m][n][str(s)]
                                             for n in names]))
                      for s in chosen} for m in AVERAGED}
  families: dict[str, list[str]] = {}
  for name in names:
    families.setdefault(spec.CORRUPTIONS[name].family, []).append(name)
  per_family = {f: {m: float(np.mean([v for n in members
                                      for v in points[m][n].values()]))
                    for m in AVERAGED} for f, members in families.items()}
  mean_error = {n: float(np.mean([1 - v for v in points["top1"][n].values()]))
                for n in names}
  return {"mean_over_corruptions": per_severity, "family": per_family,
          "mean_error": mean_error}


def baseline_scores(points: dict, names: Sequence[str],
                    chosen: Sequence[int], clean_top1: float,
                    label_space: str, parameter_set: str
                    ) -> tuple[dict, list[str]]:
  """Corruption errors, mCE and relative mCE (`scores.corruption_scores`)
  where they mean something: an ImageNet model, ImageNet parameters, all
  five severities; else no scores and a note saying why."""
  why = []
  if label_space != classes.IMAGENET1K:
    why.append(f"the model's classes are {label_space}, not ImageNet's")
  if parameter_set != "imagenet":
    why.append(f"the corruptions use the {parameter_set} parameters")
  if tuple(chosen) != tuple(range(1, spec.SEVERITIES + 1)):
    why.append("not all five severities ran")
  if why:
    return {}, ["no mCE against AlexNet: " + "; ".join(why)]
  errors = {n: [1 - points["top1"][n][str(s)] for s in chosen] for n in names}
  out = scores.corruption_scores(
      errors, 1 - clean_top1,
      {n: spec.CORRUPTIONS[n].family for n in names})
  notes = [SAMPLE_NOTE] + ([ELASTIC_NOTE] if "elastic_transform" in names
                           else [])
  if np.isnan(out["mce"]):
    notes.append("mCE needs all 15 ImageNet-C corruptions "
                 "(config.shift.corruptions)")
  return out, notes


def first_flips(prediction: np.ndarray, clean: np.ndarray,
                chosen: Sequence[int]) -> np.ndarray:
  """int [N, C]: the lowest severity whose prediction differs from the
  clean one (0: none does), from predictions [N, C, S]."""
  flipped = prediction != clean[:, None, None]
  first = np.argmax(flipped, axis=-1)
  return np.where(flipped.any(-1), np.asarray(chosen)[first], 0)
