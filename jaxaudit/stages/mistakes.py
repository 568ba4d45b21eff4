"""Mistakes: rectified accuracy under multi-label truth, and what kind each
top-1 error is (Stock & Cisse 2018, "ConvNets and ImageNet beyond accuracy").

Truth sources come from the job's taxonomy (`config.taxonomy`,
`jaxaudit.taxonomy.judgement`); each gives `top1` and `rectified_top1` over
the same examples:
  the multi-label source: a prediction is correct when it is in the image's
    label set; images with an empty set are left out (ReaL's convention) and
    counted in `excluded`.
  "superclass": correct when the prediction is in the label's superclass.

Every top-1 error gets one category (`jaxaudit.taxonomy.rectified`); an error
is forgivable exactly when the judgement calls the prediction plausible, the
rule the attack stage applies to adversarial labels.
"""

from __future__ import annotations

import collections

import jax
import ml_collections
import numpy as np

from jaxaudit.artifacts import Contract, Need
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import human as human_report
from jaxaudit.report import mistakes as report
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import local_rows, study_rows
from jaxaudit.study import metrics
from jaxaudit.study.metrics import Study
from jaxaudit.taxonomy import judgement, rectified


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # People's judgements of the study's error tasks (comma-separated
      # files or folders from python -m jaxaudit.annotate's page), scored
      # into a finished run: jaxaudit.study_inputs.
      "judgements": "",
      "bootstrap_samples": 1000,
      "confidence": 0.95,
      "num_confusions": 20,
      "gallery_size": 12,  # images per error category in the report.
  })


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  del dims
  cfg = config.mistakes
  if cfg.bootstrap_samples < 1:
    raise ConfigError("config.mistakes.bootstrap_samples must be >= 1")
  if not 0 < cfg.confidence < 1:
    raise ConfigError("config.mistakes.confidence must be in (0, 1), got "
                      f"{cfg.confidence}")


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  del config, dims
  return Contract(consumes=(Need("evaluate.prediction"),
                            Need("evaluate.top5_probs")))


def _seed(rng: jax.Array) -> np.random.Generator:
  return np.random.default_rng(np.asarray(jax.random.key_data(rng)).tolist())


def analyse(arrays: dict, sets: list[list[int]] | None,
            taxonomy: judgement.Taxonomy, cfg,
            rng: np.random.Generator) -> tuple[dict, dict]:
  """Metrics and per-example columns from the gathered predictions.

  Args:
    arrays: `label` and `prediction` [N] (all examples, sorted by id).
    sets: per example label sets, or None.
    taxonomy: the job's judgement.
    cfg: `config.mistakes`.
    rng: NumPy generator for the bootstraps.

  Returns:
    (summary, columns aligned with the arrays).
  """
  labels, preds = arrays["label"], arrays["prediction"]
  names, multilabel = taxonomy.class_names, taxonomy.multilabel_name
  superclass = taxonomy.groups
  plaus = taxonomy.judge(labels, preds, sets)
  categories = rectified.categorize(labels, preds, plaus)
  labelled = labels >= 0
  plain = preds == labels
  columns = dict(plaus, category=categories)
  samples, level = int(cfg.bootstrap_samples), float(cfg.confidence)
  per_source, excluded = {}, {}
  if sets is not None:
    has_set = labelled & np.asarray([len(s) > 0 for s in sets], bool)
    excluded[multilabel] = int((labelled & ~has_set).sum())
    per_source[multilabel] = rectified.accuracy_with_ci(
        plain[has_set], plaus["in_label_set"][has_set], samples, level, rng)
    columns[f"correct_{multilabel}"] = np.where(has_set, plaus["in_label_set"],
                                                False)
  if superclass is not None:
    per_source["superclass"] = rectified.accuracy_with_ci(
        plain[labelled], plaus["same_superclass"][labelled], samples, level,
        rng)
    columns["correct_superclass"] = plaus["same_superclass"] & labelled
  summary = {
      "num_examples": int(labelled.sum()),
      "top1": {k: v["top1"] for k, v in per_source.items()},
      "rectified_top1": {k: v["rectified_top1"] for k, v in per_source.items()},
      "confidence_intervals": {k: v["ci"] for k, v in per_source.items()},
      "examples_per_source": {k: v["num_examples"]
                              for k, v in per_source.items()},
      "excluded_empty_label_set": excluded,
      "num_errors": int((labelled & ~plain).sum()),
      "error_categories": rectified.category_shares(categories),
      "error_category_intervals": rectified.shares_with_ci(categories, samples,
                                                           level, rng),
      "per_class_rectified_top1": _per_class(labels, columns, multilabel,
                                             names),
      "confusions": _confusions(labels, preds, categories, plaus, names,
                                int(cfg.num_confusions)),
  }
  return summary, columns


def _per_class(labels, columns, multilabel, names) -> dict[str, float]:
  key = (f"correct_{multilabel}" if f"correct_{multilabel}" in columns
         else "correct_superclass")
  if key not in columns:
    return {}
  return {names[c]: float(columns[key][labels == c].mean())
          for c in np.unique(labels[labels >= 0])}


def _confusions(labels, preds, categories, plaus, names, limit) -> list[dict]:
  wrong = (labels >= 0) & (preds != labels)
  pairs = collections.Counter(zip(labels[wrong].tolist(),
                                  preds[wrong].tolist()))
  first = {}
  for i in np.flatnonzero(wrong):
    first.setdefault((int(labels[i]), int(preds[i])), i)
  top = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
  return [{"true": names[t], "predicted": names[p], "count": n,
           "wordnet_distance": int(plaus["wordnet_distance"][first[(t, p)]]),
           "category": str(categories[first[(t, p)]])}
          for (t, p), n in top]


def run(ctx: StageContext) -> StageOutput:
  """Rectified accuracy, error categories and galleries; see module doc."""
  cfg = ctx.config.mistakes
  with config_field("config.taxonomy"):
    taxonomy = judgement.build(ctx.config.taxonomy, ctx.labels,
                               ctx.data)
  arrays = ctx.executor.gather({
      "label": ctx.data.labels,
      "prediction": ctx.artifacts["evaluate.prediction"],
      "top1_prob": ctx.artifacts["evaluate.top5_probs"][:, 0]})
  sets = taxonomy.label_sets(ctx.data, arrays["id"])
  summary, columns = analyse(arrays, sets, taxonomy, cfg, _seed(ctx.rng))
  summary["truth_sources"] = {k: v for k, v in taxonomy.sources().items()
                              if k in summary["rectified_top1"]}
  summary["notes"] = taxonomy.notes()
  groups = taxonomy.superclasses
  sections = report.sections(arrays, columns, sets, summary,
                             [] if groups is None else groups.names,
                             taxonomy.groups, ctx.model.class_names,
                             ctx.data.fetch, cfg.gallery_size)
  if ctx.study is not None:
    summary["human"], columns["human_top1_accepted"] = _human(
        ctx.study, arrays, columns, taxonomy)
    sections.append(human_report.error_section(
        summary["human"], summary["rectified_top1"],
        {k: v["rectified_top1"]
         for k, v in summary["confidence_intervals"].items()}))
  return StageOutput(summary=summary,
                     records=_records(ctx, arrays, columns, sets,
                                      taxonomy.groups),
                     sections=sections)


def _human(study: Study, arrays: dict, columns: dict,
           taxonomy: judgement.Taxonomy) -> tuple[dict, np.ndarray]:
  """People's rectified top-1 (`metrics.error_metrics`) and, per example,
  float [N] the share of annotators accepting the top-1 (NaN: not judged)."""
  ids = study.key.ids("error")
  rows = study_rows(arrays["id"], [study.key.tasks[t].example_id for t in ids])
  labels, preds = arrays["label"], arrays["prediction"]
  if np.any((labels[rows] < 0) | (preds[rows] == labels[rows])):
    raise DataError("the study's error tasks are not this run's top-1 errors "
                    "(config.study.key)")
  labelled = labels >= 0
  proxies = {name: columns[column][rows]
             for name, column in taxonomy.proxy_columns().items()}
  summary, scores = metrics.error_metrics(
      study, preds[rows], labels[rows], num_labelled=int(labelled.sum()),
      num_correct=int((labelled & (preds == labels)).sum()), proxies=proxies)
  accepted = np.full(len(labels), np.nan)
  accepted[rows] = scores
  return summary, accepted


def _records(ctx, arrays, columns, sets, superclass) -> dict:
  rows = local_rows(arrays["id"], ctx.data.ids)
  names = np.asarray(ctx.model.class_names, dtype=object)
  preds = arrays["prediction"][rows]
  records = {
      "id": ctx.data.ids,
      "file": ctx.data.files,
      "label": ctx.data.labels,
      "prediction": preds,
      "prediction_name": names[preds],
      "label_set": [[] if sets is None else list(sets[r]) for r in rows],
      "category": columns["category"][rows],
      "wordnet_distance": columns["wordnet_distance"][rows],
      "in_label_set": columns["in_label_set"][rows],
      "near_duplicate": columns["near_duplicate"][rows],
  }
  if superclass is not None:
    records["same_superclass"] = columns["same_superclass"][rows]
  if "human_top1_accepted" in columns:
    records["human_top1_accepted"] = columns["human_top1_accepted"][rows]
  for key in sorted(k for k in columns if k.startswith("correct_")):
    records[key] = columns[key][rows]
  return records
