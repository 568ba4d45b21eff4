"""People's judgements turned into the metrics the stages report beside their
proxies: human-judged rectified top-1 (errors), human-plausible robust
accuracy and the effect of explanations (adversarials), human accuracy on
pixel subsets (SIS vs random).

Every metric is over judged items (tasks with at least one answer). An item's
score is the mean over the annotators who answered it (the chance a random one
of them accepts), so an unfinished session weighs only the items it answered;
a share is the mean of item scores, with a percentile bootstrap interval over
items. Fleiss' kappa is over the items every annotator answered, with a
bootstrap interval over those items. When a study judges only some of the
run's errors or adversarials, the judged share stands for all of them: the
run-level numbers extrapolate it (formulas at each function).

Randomness comes from `metric_seed(settings.seed, name)`, one NumPy seed per
metric, so every number is reproducible. Pure NumPy.
"""

from __future__ import annotations

import hashlib
from typing import Callable, NamedTuple, Sequence

import numpy as np

from jaxaudit.study import statistics
from jaxaudit.study.judgements import Judgements
from jaxaudit.study.key import StudyKey


class Settings(NamedTuple):
  """How intervals and tests are drawn.

  Attributes:
    seed: the job's seed (each metric draws from `metric_seed(seed, name)`).
    num_resamples: bootstrap resamples per interval.
    num_permutations: relabellings in the permutation test.
    level: the intervals' coverage.
  """
  seed: int = 0
  num_resamples: int = 2000
  num_permutations: int = 10000
  level: float = 0.95


class Study(NamedTuple):
  """What a stage scores: the key, the annotators' files, the settings.

  Attributes:
    key: the study's key.
    judgements: one `Judgements` per annotator (files in the order given).
    settings: interval and test settings.
  """
  key: StudyKey
  judgements: tuple[Judgements, ...]
  settings: Settings


def metric_seed(seed: int, name: str) -> int:
  """The NumPy seed of metric `name` under the job's `seed`: the first 8 bytes
  of SHA-256("seed:name"), big-endian."""
  digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
  return int.from_bytes(digest[:8], "big")


def answer_matrix(study: Study, task_ids: Sequence[str],
                  value: Callable[[Judgements, str], float | None]
                  ) -> np.ndarray:
  """float [T, A]: `value(judgements, task)` per task and annotator, NaN where
  the annotator did not answer (value returns None)."""
  out = np.full((len(task_ids), len(study.judgements)), np.nan)
  for a, judged in enumerate(study.judgements):
    for t, task in enumerate(task_ids):
      v = value(judged, task)
      if v is not None:
        out[t, a] = float(v)
  return out


def item_scores(matrix: np.ndarray) -> np.ndarray:
  """float [T']: the mean answer of each task answered at least once."""
  answered = ~np.isnan(matrix).all(axis=1)
  return np.nanmean(matrix[answered], axis=1) if answered.any() else (
      np.zeros((0,)))


def _mean(values: np.ndarray) -> float:
  return float(values.mean()) if values.size else float("nan")


def share(scores: np.ndarray, settings: Settings, name: str) -> dict:
  """{"value", "interval", "items"}: the mean item score and its bootstrap
  interval over items."""
  low, high = statistics.bootstrap_interval(
      scores, lambda x: x.mean(axis=1), seed=metric_seed(settings.seed, name),
      num_resamples=settings.num_resamples, level=settings.level,
      batched=True)
  return {"value": _mean(scores), "interval": [low, high],
          "items": int(scores.size)}


def kappa(categories: np.ndarray, num_categories: int, settings: Settings,
          name: str) -> dict:
  """Fleiss' kappa of the items every annotator answered.

  Args:
    categories: float [T, A] each answer's category index (NaN: none).
    num_categories: categories are 0 .. num_categories - 1.
    settings: interval settings.
    name: the metric's name (its seed).

  Returns:
    {"value", "interval", "items", "annotators"}: NaN with fewer than two
    annotators or no item answered by all.
  """
  full = ~np.isnan(categories).any(axis=1)
  num_annotators = categories.shape[1]
  out = {"value": float("nan"), "interval": [float("nan"), float("nan")],
         "items": int(full.sum()), "annotators": int(num_annotators)}
  if num_annotators < 2 or not full.any():
    return out
  rated = categories[full].astype(np.int64)
  counts = np.stack([(rated == c).sum(axis=1) for c in range(num_categories)],
                    axis=1)
  out["value"] = statistics.fleiss_kappa(counts)
  low, high = statistics.bootstrap_interval(
      counts, statistics.fleiss_kappa, seed=metric_seed(settings.seed, name),
      num_resamples=settings.num_resamples, level=settings.level)
  out["interval"] = [low, high]
  return out


def proxy_agreement(scores_by_item: np.ndarray, proxies: dict[str, np.ndarray]
                    ) -> dict[str, dict]:
  """How often each proxy's verdict matches the people's majority.

  Args:
    scores_by_item: float [T] item scores (NaN: not judged); the majority
      accepts above 0.5, rejects below; ties are left out.
    proxies: name -> bool [T] the proxy accepts.

  Returns:
    name -> {"agreement": share of decided items where they match, "items"}.
  """
  decided = ~np.isnan(scores_by_item) & (scores_by_item != 0.5)
  majority = scores_by_item > 0.5
  return {name: {"agreement": _mean((np.asarray(v, bool) == majority)[decided]
                                    .astype(np.float64)),
                 "items": int(decided.sum())}
          for name, v in proxies.items()}


def _scores_by_item(matrix: np.ndarray) -> np.ndarray:
  """float [T]: mean answer per task, NaN where none answered."""
  out = np.full((matrix.shape[0],), np.nan)
  answered = ~np.isnan(matrix).all(axis=1)
  out[answered] = np.nanmean(matrix[answered], axis=1)
  return out


def _affine(value: dict, offset: float, scale: float) -> dict:
  """offset + scale * a share, with its interval."""
  return {"value": offset + scale * value["value"],
          "interval": [offset + scale * v for v in value["interval"]]}


def error_metrics(study: Study, predictions: np.ndarray, labels: np.ndarray,
                  *, num_labelled: int, num_correct: int,
                  proxies: dict[str, np.ndarray]) -> tuple[dict, np.ndarray]:
  """Human-judged rectified top-1 from the "error" tasks.

  A judged error's top-1 is accepted by an annotator who marks the model's
  prediction correct. With E errors among N labelled examples, C correct,
  and `accepted` the mean item score over judged errors:
    rectified_top1 = (C + E * accepted) / N
  (its interval maps the share's). `label_accepted` is the share of judged
  errors whose given label people mark correct (a low one flags label noise).

  Args:
    study: the key, judgements and settings.
    predictions: int [T] the model's top-1 for each error task, in
      `study.key.ids("error")` order.
    labels: int [T] their given labels.
    num_labelled: N.
    num_correct: C.
    proxies: name -> bool [T] the proxy (label set, superclass, ...) calls
      the prediction correct.

  Returns:
    ({"rectified_top1", "top1", "accepted", "label_accepted", "kappa",
      "proxy_agreement", "judged_errors", "num_errors", "annotators"},
     float [T] each task's item score, NaN where not judged).
  """
  ids = study.key.ids("error")
  settings = study.settings
  predicted = dict(zip(ids, np.asarray(predictions).tolist()))
  given = dict(zip(ids, np.asarray(labels).tolist()))
  accept = answer_matrix(study, ids, lambda j, t: None if t not in j.errors
                         else predicted[t] in j.errors[t])
  label_ok = answer_matrix(study, ids, lambda j, t: None if t not in j.errors
                           else given[t] in j.errors[t])
  scores = _scores_by_item(accept)
  accepted = share(item_scores(accept), settings, "error.accepted")
  num_errors = num_labelled - num_correct
  top1 = num_correct / num_labelled if num_labelled else float("nan")
  rectified = (_affine(accepted, top1, num_errors / num_labelled)
               if num_labelled else {"value": float("nan"),
                                     "interval": [float("nan")] * 2})
  return {
      "rectified_top1": rectified | {"items": accepted["items"]},
      "top1": top1,
      "accepted": accepted,
      "label_accepted": share(item_scores(label_ok), settings,
                              "error.label_accepted"),
      "kappa": kappa(accept, 2, settings, "error.kappa"),
      "proxy_agreement": proxy_agreement(scores, proxies),
      "judged_errors": accepted["items"],
      "num_errors": int(num_errors),
      "annotators": [j.annotator for j in study.judgements],
  }, scores


def adversarial_metrics(study: Study, *, num_labelled: int, num_robust: int,
                        num_flipped: int, proxies: dict[str, np.ndarray]
                        ) -> tuple[dict, np.ndarray]:
  """Human-plausible robust accuracy and the effect of explanations.

  An annotator accepts an adversarial when the adversarial label is
  acceptable for the image. With R robust and F flipped examples among N
  labelled, and `accepted` the mean item score over judged adversarials (in
  both conditions):
    human_plausible_robust_accuracy = (R + F * accepted) / N.
  The explanation effect is the acceptance of answers given with the overlay
  minus those given without, each answer one observation: a bootstrap
  interval of the difference (the two groups resampled apart) and a
  two-sided permutation test. Each group lists its answers task by task in
  the key's order, and within a task in the order of `study.judgements`
  (the resamples, hence the interval and p-value, depend on that order).

  Args:
    study: the key, judgements and settings.
    num_labelled: N.
    num_robust: R (at the study's attack and epsilon).
    num_flipped: F.
    proxies: name -> bool [T] the proxy calls the adversarial label
      plausible, in `study.key.ids("adversarial")` order.

  Returns:
    ({"human_plausible_robust_accuracy", "robust_accuracy", "accepted",
      "explanation_effect", "kappa", "proxy_agreement", "judged_adversarials",
      "num_flipped", "annotators"},
     float [T] each task's item score, NaN where not judged).
  """
  ids = study.key.ids("adversarial")
  settings = study.settings
  accept = answer_matrix(study, ids, lambda j, t: None if t not in j.adversarial
                         else j.adversarial[t].acceptable)
  overlay = answer_matrix(study, ids, lambda j, t: None
                          if t not in j.adversarial
                          else j.adversarial[t].overlay)
  answered = ~np.isnan(accept)
  with_overlay = accept[answered & (overlay == 1.0)]
  without = accept[answered & (overlay == 0.0)]
  accepted = share(item_scores(accept), settings, "adversarial.accepted")
  robust = num_robust / num_labelled if num_labelled else float("nan")
  plausible = (_affine(accepted, robust, num_flipped / num_labelled)
               if num_labelled else {"value": float("nan"),
                                     "interval": [float("nan")] * 2})
  low, high = statistics.difference_interval(
      with_overlay, without,
      seed=metric_seed(settings.seed, "adversarial.effect"),
      num_resamples=settings.num_resamples, level=settings.level)
  effect = {
      "difference": _mean(with_overlay) - _mean(without),
      "interval": [low, high],
      "p_value": statistics.permutation_test(
          with_overlay, without,
          seed=metric_seed(settings.seed, "adversarial.permutation"),
          num_permutations=settings.num_permutations),
      "accepted_with_overlay": _mean(with_overlay),
      "accepted_without_overlay": _mean(without),
      "answers_with_overlay": int(with_overlay.size),
      "answers_without_overlay": int(without.size),
  }
  return {
      "human_plausible_robust_accuracy": plausible | {
          "items": accepted["items"]},
      "robust_accuracy": robust,
      "accepted": accepted,
      "explanation_effect": effect,
      "kappa": kappa(accept, 2, settings, "adversarial.kappa"),
      "proxy_agreement": proxy_agreement(_scores_by_item(accept), proxies),
      "judged_adversarials": accepted["items"],
      "num_flipped": int(num_flipped),
      "annotators": [j.annotator for j in study.judgements],
  }, _scores_by_item(accept)


def subset_metrics(study: Study, labels: dict[str, int],
                   model_correct: dict[str, float],
                   model_prediction: dict[str, int]
                   ) -> tuple[dict, dict[str, float]]:
  """People's accuracy on pixel subsets against the model's.

  A person is right on a subset task when the class seen is the image's
  given label ("none" is wrong); tasks of unlabelled images are left out.
  People's accuracy per variant ("sis", "random") is the mean item score;
  the model's is its accuracy on the same images' subsets of the same size
  (on the random variant, over the sis stage's own random draws).
  `agreement_with_model` is how often people see the class the model
  predicts from the SIS pixels.

  Args:
    study: the key, judgements and settings.
    labels: task id -> given label (-1 = unknown).
    model_correct: task id -> the model's accuracy on that task's subset.
    model_prediction: "sis" task id -> the model's class from the SIS pixels.

  Returns:
    ({"fraction", "human_accuracy": {variant: share},
      "model_accuracy": {variant: value over the judged items},
      "none_share": {variant: share of answers naming no class},
      "agreement_with_model": share, "kappa", "annotators"},
     labelled task id -> its item score, NaN where not judged).
  """
  settings = study.settings
  out = {"fraction": study.key.subset_fraction, "human_accuracy": {},
         "model_accuracy": {}, "none_share": {}}
  scores = {}
  classes = sorted({c for t in study.key.tasks.values() if t.kind == "subset"
                    for c, _ in t.candidates})
  category = {c: i for i, c in enumerate(classes)}
  for variant in ("sis", "random"):
    ids = [t for t in study.key.ids("subset", variant) if labels[t] >= 0]
    right = answer_matrix(study, ids, lambda j, t: None if t not in j.subsets
                          else j.subsets[t] == labels[t])
    none = answer_matrix(study, ids, lambda j, t: None if t not in j.subsets
                         else j.subsets[t] is None)
    judged = ~np.isnan(right).all(axis=1)
    out["human_accuracy"][variant] = share(item_scores(right), settings,
                                           f"subset.{variant}")
    out["model_accuracy"][variant] = _mean(
        np.asarray([model_correct[t] for t in ids], np.float64)[judged])
    out["none_share"][variant] = _mean(none[~np.isnan(none)])
    scores.update(zip(ids, _scores_by_item(right).tolist()))
  sis_ids = study.key.ids("subset", "sis")
  agree = answer_matrix(study, sis_ids, lambda j, t: None
                        if t not in j.subsets
                        else j.subsets[t] == model_prediction[t])
  out["agreement_with_model"] = share(item_scores(agree), settings,
                                      "subset.agreement")
  all_ids = study.key.ids("subset")
  seen = answer_matrix(study, all_ids, lambda j, t: None if t not in j.subsets
                       else (len(classes) if j.subsets[t] is None
                             else category[j.subsets[t]]))
  out["kappa"] = kappa(seen, len(classes) + 1, settings, "subset.kappa")
  out["annotators"] = [j.annotator for j in study.judgements]
  return out, scores
