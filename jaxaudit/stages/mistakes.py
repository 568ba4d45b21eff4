"""Mistakes: rectified accuracy under multi-label truth, and what kind each
top-1 error is (Stock & Cisse 2018, "ConvNets and ImageNet beyond accuracy").

Truth sources (each gives `top1` and `rectified_top1` over the same examples):
  the multi-label source (`config.mistakes.multilabel`, see
    `jaxaudit.taxonomy.label_sets`): a prediction is correct when it is in the
    image's label set; images with an empty set are left out (ReaL's
    convention) and counted in `excluded`.
  "superclass" (`config.mistakes.superclass`): correct when the prediction is
    in the label's superclass (imagenet-x's 100 metaclasses, a WordNet depth,
    or a user's JSON {class: group}).

Every top-1 error gets one category (`jaxaudit.taxonomy.rectified`). When the
attack stage ran earlier in the same job (list it before `mistakes` in
`config.stages`), its `arrays["adv_class"]` (int [N] or [N, V], sorted by id,
-1 where no adversarial class) are judged with the same truth: how many
adversarial labels a person would accept.
"""

from __future__ import annotations

import collections

import jax
import ml_collections
import numpy as np

from jaxaudit import classes
from jaxaudit.stages import forward
from jaxaudit.stages.base import StageContext, StageOutput
from jaxaudit.taxonomy import label_sets as label_sets_lib
from jaxaudit.taxonomy import mistakes_report, plausibility, rectified
from jaxaudit.taxonomy import superclasses

_MULTILABEL_ABOUT = {"demo": "the demo photos' acceptable classes",
                     "real": "ImageNet ReaL labels (Beyer et al. 2020)",
                     "tfds": "the TFDS record's multi-label field"}


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # auto | none | demo | real | tfds | a .json/.csv path (label_sets.py).
      "multilabel": "auto",
      # auto (metaclasses on ImageNet-1k, the shipped groups on CIFAR-10) |
      # metaclass | wordnet | none | a .json path {class: group name}.
      "superclass": "auto",
      "wordnet_depth": 7,  # superclass="wordnet": ancestor at this depth.
      "fine_grained_distance": 4,  # WordNet distance still "fine-grained".
      "bootstrap_samples": 1000,
      "confidence": 0.95,
      "num_confusions": 20,
      "gallery_size": 12,  # images per error category in the report.
  })


def _seed(rng: jax.Array) -> np.random.Generator:
  return np.random.default_rng(np.asarray(jax.random.key_data(rng)).tolist())


def analyse(arrays: dict, sets: list[list[int]] | None, multilabel: str | None,
            superclass: np.ndarray | None, label_space: str, cfg,
            rng: np.random.Generator,
            names: tuple[str, ...]) -> tuple[dict, dict]:
  """Metrics and per-example columns from the global forward arrays.

  Args:
    arrays: `forward.forward(ctx)` (global, sorted by id).
    sets: per example label sets, or None.
    multilabel: the resolved multi-label source name (None: none).
    superclass: int [K] group per class, or None.
    label_space: the model's label space.
    cfg: `config.mistakes`.
    rng: NumPy generator for the bootstraps.
    names: the model's class names.

  Returns:
    (summary, columns aligned with arrays["id"]).
  """
  labels, preds = arrays["label"], arrays["prediction"]
  plaus = plausibility.plausibility(labels, preds, sets, superclass,
                                    label_space)
  categories = rectified.categorize(labels, preds, plaus,
                                    int(cfg.fine_grained_distance))
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


def attack_plausibility(ctx: StageContext, arrays: dict,
                        sets: list[list[int]] | None,
                        superclass: np.ndarray | None) -> dict:
  """How many of the attack stage's adversarial labels a person accepts.

  Reads `ctx.outputs["attack"].arrays["adv_class"]` (int [N] or [N, V], rows
  sorted by id like `arrays`, -1 = none) and optional names of the V columns:
  `["variant"]` [V] strings, else `["eps"]` [V] floats.

  Returns:
    {variant: {"num_adversarial", "plausible", "in_label_set",
    "same_superclass", "near_duplicate"}} (shares), or {} if unavailable.
  """
  attack = ctx.outputs.get("attack")
  adv = None if attack is None else attack.arrays.get("adv_class")
  if adv is None:
    return {}
  adv = np.asarray(adv).reshape(len(adv), -1)
  if len(adv) != len(arrays["id"]):
    return {}
  variants = [f"variant_{v}" for v in range(adv.shape[1])]
  for key, fmt in (("variant", "{}"), ("eps", "eps={:g}")):
    names = attack.arrays.get(key)
    if names is not None and len(names) == adv.shape[1]:
      variants = [fmt.format(v) for v in np.asarray(names).tolist()]
      break
  labels = arrays["label"]
  out = {}
  for v, name in enumerate(variants):
    flipped = (adv[:, v] >= 0) & (labels >= 0) & (adv[:, v] != labels)
    rows = np.flatnonzero(flipped)
    plaus = plausibility.plausibility(
        labels[rows], adv[rows, v],
        None if sets is None else [sets[i] for i in rows], superclass,
        ctx.model.label_space)
    out[name] = {"num_adversarial": int(len(rows))}
    for key in ("plausible", "in_label_set", "same_superclass",
                "near_duplicate"):
      out[name][key] = float(plaus[key].mean()) if len(rows) else float("nan")
  return out


def run(ctx: StageContext) -> StageOutput:
  """Rectified accuracy, error categories and galleries; see module doc."""
  cfg = ctx.config.mistakes
  space = ctx.model.label_space
  groups = superclasses.resolve(cfg.superclass, ctx.model.class_names,
                                cfg.wordnet_depth, "config.mistakes.superclass")
  superclass = None if groups is None else groups.groups
  group_names = [] if groups is None else groups.names
  arrays = forward.forward(ctx)
  names = ctx.model.class_names
  multilabel = label_sets_lib.resolve_source(ctx.data, cfg.multilabel, names)
  sets = (None if multilabel is None else label_sets_lib.label_sets_for(
      ctx.data, multilabel, ids=arrays["id"], class_names=names))
  if multilabel is not None and multilabel not in label_sets_lib.SOURCES:
    multilabel = "file"
  summary, columns = analyse(arrays, sets, multilabel, superclass, space, cfg,
                             _seed(ctx.rng), ctx.model.class_names)
  summary["truth_sources"] = {
      **({multilabel: _MULTILABEL_ABOUT.get(multilabel, cfg.multilabel)}
         if sets is not None else {}),
      **({"superclass": groups.about} if groups is not None else {})}
  summary["notes"] = _notes(sets, superclass, space)
  summary["attack_plausibility"] = attack_plausibility(ctx, arrays, sets,
                                                       superclass)
  sections = mistakes_report.sections(ctx, arrays, columns, sets, summary,
                                      group_names, superclass)
  return StageOutput(summary=summary,
                     records=_records(ctx, arrays, columns, sets, superclass),
                     sections=sections)


def _notes(sets, superclass, space: str) -> list[str]:
  notes = []
  if sets is None:
    notes.append("no multi-label truth applies to this data "
                 "(config.mistakes.multilabel): multi_object is never used")
  if superclass is None:
    notes.append(f"{superclasses.NO_TAXONOMY}: no superclasses "
                 "(config.mistakes.superclass: a .json of {class: group})")
  if space != classes.IMAGENET1K:
    notes.append(f"the {space} label space has no WordNet hierarchy or "
                 "near-duplicate list: fine_grained comes from superclasses "
                 "only, near_duplicate_class needs ImageNet-1k")
  return notes


def _records(ctx, arrays, columns, sets, superclass) -> dict:
  position = {int(i): k for k, i in enumerate(arrays["id"])}
  rows = np.asarray([position[int(i)] for i in ctx.data.ids], np.int64)
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
  for key in sorted(k for k in columns if k.startswith("correct_")):
    records[key] = columns[key][rows]
  return records
