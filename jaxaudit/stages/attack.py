"""Attacks: robust accuracy under gradient attacks, plain and plausibility-adjusted.

Each attack `config.attack.attacks` names runs over every example at every
epsilon of its `config.attack.<name>` section, by its registry entry's runner
(`jaxaudit.attacks.ATTACKS`, `jaxaudit.attacks.runners`): one compiled step
per batch shape with the epsilons a traced argument, or, for a composition
(AutoAttack), each sub-attack on the (example, epsilon) rows the earlier ones
left robust, re-batched. As in the paper, only images the model classifies
correctly can be flipped: an example is robust at an epsilon when it was
correct and the model still predicts its label; it is plausibly robust when it
is robust or the adversarial label is one a person would accept (Stock &
Cisse 2018), by the job's one judgement (`config.taxonomy`,
`jaxaudit.taxonomy.judgement`). Misclassified images are counted apart.
Minimal-norm attacks also give the whole robust-accuracy-vs-epsilon curve
from their per-example minimal perturbations. `summary.timing.attacks` holds
each attack's compilations and seconds.

Artifacts, per attack A with E epsilons: `attack.adv_class.A` [N, E] (-1 where
no correctly classified image was flipped), `attack.success.A` [N, E] (flipped
from correct), `attack.min_norm.A` [N] (the smallest adversarial perturbation
found: inf if none, NaN for images misclassified before) and, on request of a
later stage (and always for the gallery attack), `attack.adversarial.A`
[N, S, S, 3]: the adversarial at the largest epsilon, written to disk once and
read back batch by batch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from jaxaudit import attacks as attacks_lib
from jaxaudit.artifacts import ArtifactSpec, Contract, Need
from jaxaudit.attacks import minimal_norms, runners, trust
from jaxaudit.attacks.plan import AttackPlan, check_traceable, plans
from jaxaudit.data.pixels import unit_images
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import attack as report
from jaxaudit.report import human as human_report
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import local_rows, study_rows
from jaxaudit.study import metrics
from jaxaudit.study.metrics import Study
from jaxaudit.taxonomy import judgement

_FLIP_REASONS = ("plausible", "in_label_set", "same_superclass",
                 "near_duplicate", "close_in_wordnet")
_ADVERSARIAL = runners.ADVERSARIAL


def default_config() -> ml_collections.ConfigDict:
  """Small enough for EfficientNet-Lite0 on a 2-core CPU (its input gradient
  costs about 0.04 s per image there, a compile about 10 s);
  `configs/*_attack.py` hold the full sweeps. One section per registered
  attack, with its entry's defaults."""
  return ml_collections.ConfigDict({
      # People's judgements of the study's adversarial tasks (comma-separated
      # files or folders from python -m jaxaudit.annotate's page), scored
      # into a finished run: jaxaudit.study_inputs.
      "judgements": "",
      "attacks": "fgsm,pgd_linf,deepfool,fmn_l2",
      "batch_size": 0,  # 0 = config.batch_size.
      # Its largest epsilon fills the gallery (the first attack that keeps
      # adversarials if it is not among config.attack.attacks).
      "gallery_attack": "pgd_linf",
      "gallery_size": 6,
      "tolerance": 0.0,  # Slack of the trust checks (accuracy units).
      # Points of each minimal-norm attack's robust-accuracy-vs-epsilon curve.
      "curve_points": 16,
      **{name: dict(attacks_lib.ATTACKS.get(name).defaults)
         for name in attacks_lib.ATTACKS.names()},
  })


def gallery_attack(config: ml_collections.ConfigDict) -> str:
  """The attack whose adversarials fill the gallery ("" = none)."""
  names = [p.name for p in plans(config) if p.spec.keeps_adversarials]
  if config.attack.gallery_attack in names:
    return config.attack.gallery_attack
  return names[0] if names else ""


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  """Names, epsilons and every attack's settings (traced abstractly on a
  tiny input, so a bad value fails here, naming its field)."""
  if config.attack.gallery_size < 0:
    raise ConfigError("config.attack.gallery_size must be >= 0")
  for plan in plans(config):
    with config_field(f"config.attack.{plan.name}"):
      check_traceable(plan, dims.num_classes)


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  size = dims.input_size
  produces = []
  for plan in plans(config):
    name, num_eps = plan.name, len(plan.eps)
    produces += [
        ArtifactSpec(f"attack.adv_class.{name}", (num_eps,), "int64"),
        ArtifactSpec(f"attack.success.{name}", (num_eps,), "bool"),
        ArtifactSpec(f"attack.min_norm.{name}", (), "float32")]
    if plan.spec.keeps_adversarials:
      produces.append(ArtifactSpec(f"attack.{_ADVERSARIAL}.{name}",
                                   (size, size, 3), "float32", large=True))
  return Contract(consumes=(Need("evaluate.prediction"),
                            Need("evaluate.logits")),
                  produces=tuple(produces))


def _accuracy(values: np.ndarray, labelled: np.ndarray) -> float:
  return float(values[labelled].mean()) if labelled.any() else float("nan")


def _flip_fields(taxonomy: judgement.Taxonomy, labels: np.ndarray,
                 other: np.ndarray, sets, flipped: np.ndarray
                 ) -> dict[str, np.ndarray]:
  """The judgement of `other` where `flipped` (False / -1 elsewhere)."""
  judged = taxonomy.judge(labels, other, sets)
  return {k: np.where(flipped, v, -1 if k == "wordnet_distance" else False)
          for k, v in judged.items()}


def _trust_probe(ctx: StageContext, attack_labels: np.ndarray) -> list[str]:
  """Zero gradients, probability-like outputs, determinism (`attacks.trust`)."""
  model = ctx.model

  def step(params, batch):
    return trust.probe_columns(model.logits_fn(params),
                               unit_images(batch["image"]), batch["label"],
                               batch["reference"])

  local = ctx.executor.run("trust", step, ctx.params,
                           {"image": ctx.data.images, "label": attack_labels,
                            "reference": ctx.artifacts["evaluate.logits"]},
                           batch_size=ctx.batch_size)
  gathered = ctx.executor.gather(local)
  return trust.model_warnings(gathered["zero_gradient"],
                              gathered["probability_like"],
                              gathered["change"], gathered["scale"])


class _Examples(NamedTuple):
  """What every attack's scoring shares: the attacked labels of this
  process's examples, and every process's labels and predictions."""
  attack_labels: np.ndarray  # int32 [n] label, else the prediction
  correct_local: np.ndarray  # bool [n]
  gathered: dict  # id, label, prediction [N] over every process
  labels: np.ndarray  # [N]
  labelled: np.ndarray  # bool [N]
  correct: np.ndarray  # bool [N]
  rows: np.ndarray  # [n] positions of this process's examples in [N]
  sets: Any  # the taxonomy's label sets of [N]


def _examples(ctx: StageContext, taxonomy: judgement.Taxonomy) -> _Examples:
  prediction = ctx.artifacts["evaluate.prediction"]
  # Unlabelled examples are attacked away from the model's own prediction.
  attack_labels = np.where(ctx.data.labels >= 0, ctx.data.labels,
                           prediction).astype(np.int32)
  gathered = ctx.executor.gather({"label": ctx.data.labels,
                                  "prediction": prediction})
  labels = gathered["label"]
  return _Examples(attack_labels, prediction == attack_labels, gathered,
                   labels, labels >= 0, gathered["prediction"] == labels,
                   local_rows(gathered["id"], ctx.data.ids),
                   taxonomy.label_sets(ctx.data, gathered["id"]))


def _base_summary(ex: _Examples, taxonomy: judgement.Taxonomy) -> dict:
  clean = _flip_fields(taxonomy, ex.labels, ex.gathered["prediction"],
                       ex.sets, ex.labelled & ~ex.correct)
  summary = {
      "num_examples": int(ex.labelled.sum()),
      "clean_accuracy": _accuracy(ex.correct, ex.labelled),
      "plausible_clean_accuracy": _accuracy(ex.correct | clean["plausible"],
                                            ex.labelled),
      "misclassified_before_attack": int((ex.labelled & ~ex.correct).sum()),
      "robust_accuracy": {}, "plausible_robust_accuracy": {},
      "plausibility_of_flips": {}, "median_min_perturbation": {},
      "minimal_norm_curve": {}, "epsilons": {}, "robust_accuracy_after": {},
      "plausibility_sources": taxonomy.sources(),
      "timing": {"attacks": {}},
  }
  if not summary["plausibility_sources"]:
    summary["notes"] = [f"{judgement.NO_TAXONOMY}: plausible robust accuracy "
                        "equals robust accuracy (config.taxonomy)"]
  return summary


def _attack(ctx: StageContext, plan: AttackPlan, ex: _Examples,
            store: bool) -> runners.RunOutput:
  """One attack over this process's examples, by its runner; only correctly
  classified images count as flipped (the paper's flips)."""
  job = runners.Job(
      name=plan.name, executor=ctx.executor, logits_fn=ctx.model.logits_fn,
      params=ctx.params, rng=jax.random.fold_in(ctx.rng, 0),
      images=ctx.data.images, labels=ex.attack_labels,
      ids=ctx.data.ids, correct=ex.correct_local,
      labelled=ctx.data.labels >= 0, epsilons=plan.eps,
      epsilon_labels=plan.eps_labels, batch_size=ctx.batch_size, store=store)
  with config_field(f"config.attack.{plan.name}"):
    output = plan.spec.run(plan.settings, job)
  local = dict(output.results)
  local["success"] = local["success"] & ex.correct_local[:, None]
  local["min_norm"] = np.where(ex.correct_local, local["min_norm"], np.nan)
  return output._replace(results=local)


def _score(ctx: StageContext, plan: AttackPlan, ex: _Examples,
           taxonomy: judgement.Taxonomy, local: dict, summary: dict,
           studied: tuple[str, str] | None) -> tuple[dict, list[dict]]:
  """Robust, plausible robust accuracy and flip judgements per epsilon into
  `summary`; returns the gathered results and this process's records."""
  name = plan.name
  result = dict(ctx.executor.gather(
      {k: v for k, v in local.items() if k != _ADVERSARIAL}),
      eps=plan.eps, eps_labels=plan.eps_labels, norm_type=plan.norm)
  plain, plausible, flips, records = {}, {}, {}, []
  for e, eps_label in enumerate(plan.eps_labels):
    flipped = result["success"][:, e]
    adv = np.where(flipped, result["adv_class"][:, e], ex.labels)
    fields = _flip_fields(taxonomy, ex.labels, adv, ex.sets, flipped)
    robust = ex.correct & ~flipped
    plain[eps_label] = _accuracy(robust, ex.labelled)
    plausible[eps_label] = _accuracy(robust | fields["plausible"],
                                     ex.labelled)
    flips[eps_label] = {"num_flipped": int(flipped.sum()), **{
        k: float(fields[k][flipped].mean()) if flipped.any() else float("nan")
        for k in _FLIP_REASONS}}
    records.append(_record_rows(ctx, name, result, e, ex, robust, fields,
                                local))
    if studied == (name, eps_label):
      summary["human"], accepted = _human(
          ctx.study, taxonomy, ex.gathered["id"], flipped, robust,
          ex.labelled, fields)
      records[-1]["human_adversarial_accepted"] = accepted[ex.rows]
  summary["robust_accuracy"][name] = plain
  summary["plausible_robust_accuracy"][name] = plausible
  summary["plausibility_of_flips"][name] = flips
  summary["epsilons"][name] = dict(zip(plan.eps_labels, plan.eps.tolist()))
  if plan.spec.minimal:
    summary["median_min_perturbation"][name] = minimal_norms.median(
        result["min_norm"], ex.labelled & ex.correct)
    points = np.linspace(0.0, float(plan.eps[-1]),
                         int(ctx.config.attack.curve_points) + 1)
    summary["minimal_norm_curve"][name] = {
        "norm": plan.norm, "epsilons": points.tolist(),
        "robust_accuracy": minimal_norms.curve(result["min_norm"], ex.correct,
                                  ex.labelled, points)}
  return result, records


def _artifacts(name: str, local: dict) -> dict:
  out = {f"attack.adv_class.{name}": np.where(
             local["success"], local["adv_class"], -1).astype(np.int64),
         f"attack.success.{name}": local["success"].astype(bool),
         f"attack.min_norm.{name}": local["min_norm"].astype(np.float32)}
  if _ADVERSARIAL in local:
    out[f"attack.{_ADVERSARIAL}.{name}"] = local[_ADVERSARIAL]
  return out


def run(ctx: StageContext) -> StageOutput:
  """Runs every configured attack; see the module docstring."""
  with config_field("config.taxonomy"):
    taxonomy = judgement.build(ctx.config.taxonomy, ctx.labels, ctx.data)
  ex = _examples(ctx, taxonomy)
  summary = _base_summary(ex, taxonomy)
  gallery_name = gallery_attack(ctx.config)
  studied = _studied_point(ctx) if ctx.study is not None else None
  records, results, artifacts, warnings = [], {}, {}, []
  for plan in plans(ctx.config):
    store = plan.spec.keeps_adversarials and (
        plan.name == gallery_name
        or f"attack.{_ADVERSARIAL}.{plan.name}" in ctx.needed)
    output = _attack(ctx, plan, ex, store)
    results[plan.name], chunk = _score(ctx, plan, ex, taxonomy,
                                       output.results, summary, studied)
    records += chunk
    artifacts.update(_artifacts(plan.name, output.results))
    warnings += output.warnings
    summary["timing"]["attacks"][plan.name] = output.timing
    if output.details:
      summary["robust_accuracy_after"][plan.name] = output.details[
          "robust_accuracy_after"]
  curves = {name: {"norm_type": r["norm_type"],
                   "curve": lambda p, m=r["min_norm"]: minimal_norms.curve(
                       m, ex.correct, ex.labelled, [p])[0]}
            for name, r in results.items()
            if attacks_lib.ATTACKS.get(name).minimal}
  summary["warnings"] = (
      trust.attack_warnings(summary, results, ctx.config.attack.tolerance,
                            curves)
      + trust.minimal_norm_warnings(
          {name: (results[name]["norm_type"], results[name]["min_norm"])
           for name in curves}, ex.labelled & ex.correct)
      + warnings + _trust_probe(ctx, ex.attack_labels))
  sections = report.sections(summary, results, list(results),
                             *_gallery(ctx, results, ex.gathered, artifacts))
  if studied is not None:
    for chunk in records:
      chunk.setdefault("human_adversarial_accepted",
                       np.full(len(chunk["id"]), np.nan))
    sections.append(human_report.adversarial_section(
        summary["human"], *studied,
        summary["plausible_robust_accuracy"][studied[0]][studied[1]]
        if summary["plausibility_sources"] else None))
  return StageOutput(
      summary=summary,
      records={k: np.concatenate([r[k] for r in records]) for k in records[0]},
      sections=sections,
      artifacts=artifacts)


def _studied_point(ctx: StageContext) -> tuple[str, str]:
  """(attack, epsilon label) of the study's adversarial tasks."""
  source = ctx.study.key.adversarial
  for plan in plans(ctx.config):
    for value, label in zip(plan.eps.tolist(), plan.eps_labels):
      if (plan.name == source.attack and label == source.epsilon_label
          and np.isclose(value, source.epsilon)):
        return source.attack, label
  raise DataError(f"the study's adversarials come from {source.attack} at "
                  f"{source.epsilon_label}, which this run's attack stage "
                  "does not run (config.study.key)")


def _human(study: Study, taxonomy: judgement.Taxonomy, ids: np.ndarray,
           flipped: np.ndarray, robust: np.ndarray, labelled: np.ndarray,
           fields: dict[str, np.ndarray]) -> tuple[dict, np.ndarray]:
  """People's plausible robust accuracy and the explanation effect
  (`metrics.adversarial_metrics`) and, per example, float [N] the share of
  annotators accepting its adversarial label (NaN: not judged)."""
  tasks = study.key.ids("adversarial")
  rows = study_rows(ids, [study.key.tasks[t].example_id for t in tasks])
  if not flipped[rows].all():
    raise DataError("the study's adversarial tasks are not this run's "
                    "flipped images (config.study.key)")
  proxies = {name: fields[column][rows]
             for name, column in taxonomy.proxy_columns().items()}
  summary, scores = metrics.adversarial_metrics(
      study, num_labelled=int(labelled.sum()),
      num_robust=int((robust & labelled).sum()),
      num_flipped=int((flipped & labelled).sum()), proxies=proxies)
  accepted = np.full(len(ids), np.nan)
  accepted[rows] = scores
  return summary, accepted


def _record_rows(ctx: StageContext, name: str, result: dict, e: int,
                 ex: _Examples, robust: np.ndarray,
                 fields: dict[str, np.ndarray], local: dict) -> dict:
  """This process's rows for one attack at its e-th epsilon."""
  rows, n = ex.rows, len(ex.rows)
  class_names = np.asarray(ctx.model.class_names, dtype=object)
  adv = local["adv_class"][:, e]
  columns = {
      "id": ctx.data.ids,
      "attack": np.full(n, name, dtype=object),
      "norm_type": np.full(n, result["norm_type"], dtype=object),
      "epsilon": np.full(n, float(result["eps"][e])),
      "epsilon_label": np.full(n, result["eps_labels"][e], dtype=object),
      "label": ex.labels[rows],
      "correct_before": ex.correct_local,
      "success": local["success"][:, e],
      "robust": robust[rows],
      "norm": local["norm"][:, e].astype(np.float64),
      "min_norm": local["min_norm"].astype(np.float64),
      "adv_class": adv.astype(np.int64),
      "adv_class_name": class_names[adv],
  }
  columns.update({k: v[rows] for k, v in fields.items()})
  return columns


def _gallery(ctx: StageContext, results: dict, gathered: dict,
             artifacts: dict) -> tuple[list, str]:
  """Clean / adversarial / perturbation tiles of a few fooled, clean-correct
  examples, from the gallery attack's stored adversarials (no attack re-run)."""
  cfg = ctx.config.attack
  name = gallery_attack(ctx.config)
  if cfg.gallery_size <= 0 or not name:
    return [], ""
  result = results[name]
  chosen = np.flatnonzero(result["success"][:, -1]
                          & (gathered["prediction"] == gathered["label"]))
  ids = gathered["id"][chosen[:cfg.gallery_size]]
  adversarial = ctx.executor.rows_of(
      artifacts[f"attack.{_ADVERSARIAL}.{name}"], ids)
  if jax.process_index() != 0 or not len(ids):
    return [], ""
  rows = chosen[:cfg.gallery_size]
  images = ctx.data.fetch(ids).astype(np.float32) / 255.0
  tiles = report.gallery_rows(
      images, adversarial, gathered["label"][rows],
      gathered["prediction"][rows], result["adv_class"][rows, -1],
      ctx.model.class_names)
  return tiles, (f"{name} at {result['eps_labels'][-1]}: clean / adversarial /"
                 " perturbation")
