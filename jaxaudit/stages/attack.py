"""Attacks: robust accuracy under gradient attacks, plain and plausibility-adjusted.

Each attack `config.attack.attacks` names (see `jaxaudit.attacks.ATTACKS`) runs
over every example at every epsilon of its `config.attack.<name>` section;
`autoattack` runs its sub-attacks in sequence, each only on the examples the
previous ones left robust, re-batched. Random starts use per-example keys, so
results do not depend on the device count. As in the paper, only images the
model classifies correctly can be flipped: an example is robust at an epsilon
when it was correct and the model still predicts its label; it is plausibly
robust when it is robust or the adversarial label is one a person would accept
(Stock & Cisse 2018), by the job's one judgement (`config.taxonomy`,
`jaxaudit.taxonomy.judgement`). Misclassified images are counted apart.
Minimal-norm attacks (DeepFool, C&W, FMN) also give the whole robust-accuracy-
vs-epsilon curve from their per-example minimal perturbations.

Epsilon units: L-inf epsilons are in 1/255 (`1.0` = one grey level), L2
epsilons in [0, 1]-pixel units.

Artifacts, per attack A with E epsilons: `attack.adv_class.A` [N, E] (-1 where
no correctly classified image was flipped), `attack.success.A` [N, E] (flipped
from correct), `attack.min_norm.A` [N] (the smallest adversarial perturbation
found: inf if none, NaN for images misclassified before) and, on request of a
later stage (and always for the gallery attack), `attack.adversarial.A`
[N, S, S, 3]: the adversarial at the largest epsilon, written to disk once and
read back batch by batch.
"""

from __future__ import annotations

import functools
import time

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import attacks as attacks_lib
from jaxaudit.artifacts import ArtifactSpec, Contract, Need
from jaxaudit.attacks import autoattack as autoattack_lib
from jaxaudit.attacks import trust
from jaxaudit.data.pixels import unit_images
from jaxaudit.errors import ConfigError, DataError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import attack as report
from jaxaudit.report import human as human_report
from jaxaudit.sharding import example_keys
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import local_rows, study_rows
from jaxaudit.study import metrics
from jaxaudit.study.metrics import Study
from jaxaudit.taxonomy import judgement

_FLIP_REASONS = ("plausible", "in_label_set", "same_superclass",
                 "near_duplicate", "close_in_wordnet")
_ADVERSARIAL = "adversarial"


def default_config() -> ml_collections.ConfigDict:
  """Small enough for EfficientNet-Lite0 on a CPU (its input gradient costs
  ~0.3 s per image there); `configs/*_attack.py` hold the full sweeps."""
  # A few steps from the image beat FGSM; random starts need more steps.
  pgd = dict(steps=3, rel_stepsize=0.5, restarts=1, random_start=False,
             loss="ce", targeted=False)
  return ml_collections.ConfigDict({
      # People's judgements of the study's adversarial tasks (comma-separated
      # files or folders from python -m jaxaudit.annotate's page), scored
      # into a finished run: jaxaudit.study_inputs.
      "judgements": "",
      "attacks": "fgsm,pgd_linf,deepfool,cw_l2",
      "batch_size": 0,  # 0 = config.batch_size.
      # Its largest epsilon fills the gallery (the first attack if it is not
      # among config.attack.attacks).
      "gallery_attack": "pgd_linf",
      "gallery_size": 6,
      "tolerance": 0.0,  # Slack of the trust checks (accuracy units).
      "fgsm": {"epsilons": (0.25, 0.5, 1.0)},
      "pgd_linf": dict(pgd, epsilons=(0.25, 0.5, 1.0)),
      "pgd_l2": dict(pgd, epsilons=(0.05, 0.1, 0.25)),
      # DeepFool stops once a batch is fooled, so 50 steps cost what the
      # slowest example needs. C&W's Adam moves every pixel by about
      # `stepsize` per step: 1e-4 suits 224 x 224 images (0.01, Foolbox's
      # default, oversteps a minimal perturbation there tenfold).
      "deepfool": {"epsilons": (0.05, 0.1, 0.25), "norm": "l2", "steps": 50,
                   "candidates": 4, "overshoot": 0.02},
      "cw_l2": {"epsilons": (0.05, 0.1, 0.25), "binary_search_steps": 2,
                "steps": 40, "stepsize": 1e-4, "confidence": 0.0,
                "initial_const": 1.0},
      "fmn_linf": {"epsilons": (0.25, 0.5, 1.0), "steps": 20},
      "fmn_l2": {"epsilons": (0.05, 0.1, 0.25), "steps": 20},
      "apgd_ce": {"epsilons": (0.25, 0.5, 1.0), "norm": "linf", "steps": 100,
                  "restarts": 1},
      "apgd_t": {"epsilons": (0.25, 0.5, 1.0), "norm": "linf", "steps": 100,
                 "restarts": 1, "num_target_classes": 9},
      "fab_t": {"epsilons": (0.25, 0.5, 1.0), "norm": "linf", "steps": 100,
                "restarts": 1, "num_target_classes": 9},
      "square": {"epsilons": (0.25, 0.5, 1.0), "norm": "linf",
                 "queries": 5000, "restarts": 1},
      # Standard AutoAttack (jaxaudit.attacks.autoattack).
      "autoattack": {"epsilons": (0.5, 1.0), "norm": "linf",
                     "attacks": ",".join(autoattack_lib.SUBATTACKS),
                     "steps": 100, "restarts": 1, "num_target_classes": 9,
                     "queries": 5000},
      # Points of each minimal-norm attack's robust-accuracy-vs-epsilon curve.
      "curve_points": 16,
  })


def set_full_sweep(cfg: ml_collections.ConfigDict, linf: tuple[float, ...],
                   pgd_l2: tuple[float, ...],
                   minimal_l2: tuple[float, ...]) -> None:
  """Sets `config.attack` to full-strength attacks over epsilon sweeps.

  Args:
    cfg: `config.attack`, changed in place.
    linf: FGSM, PGD-L-inf, FMN-L-inf and AutoAttack (L-inf, standard)
      epsilons (in 1/255).
    pgd_l2: PGD-L2 epsilons ([0, 1]-pixel units).
    minimal_l2: DeepFool, C&W-L2 and FMN-L2 epsilons at which their minimal
      perturbations are scored.
  """
  cfg.fgsm.epsilons = linf
  cfg.pgd_linf.epsilons = linf
  cfg.pgd_l2.epsilons = pgd_l2
  for name in ("pgd_linf", "pgd_l2"):
    cfg[name].steps = 10
    cfg[name].rel_stepsize = 0.25
    cfg[name].random_start = True
  cfg.deepfool.epsilons = minimal_l2
  cfg.deepfool.steps = 50
  cfg.deepfool.candidates = 10
  cfg.cw_l2.epsilons = minimal_l2
  cfg.cw_l2.binary_search_steps = 5
  cfg.cw_l2.steps = 50
  cfg.cw_l2.initial_const = 0.01
  cfg.fmn_linf.epsilons = linf
  cfg.fmn_l2.epsilons = minimal_l2
  for name in ("fmn_linf", "fmn_l2"):
    cfg[name].steps = 100
  cfg.autoattack.epsilons = linf


def attack_norm(name: str, section: ml_collections.ConfigDict) -> str:
  return attacks_lib.NORMS.get(name) or section.get("norm", "l2")


def epsilons(name: str, section: ml_collections.ConfigDict
             ) -> tuple[np.ndarray, list[str]]:
  """Sorted epsilons in [0, 1]-pixel units [E] and their labels ("2/255")."""
  values = section.get("epsilons")
  if isinstance(values, (int, float)):
    values = (values,)
  if not values or any(not isinstance(v, (int, float)) or v < 0
                       for v in values):
    raise ConfigError(f"config.attack.{name}.epsilons must be a non-empty "
                      f"tuple of numbers >= 0, got {values!r}")
  values = sorted(float(v) for v in values)
  if attack_norm(name, section) == "linf":
    return (np.asarray(values, np.float32) / 255.0,
            [f"{v:g}/255" for v in values])
  return np.asarray(values, np.float32), [f"{v:g}" for v in values]


def _hyperparameters(section: ml_collections.ConfigDict) -> dict:
  return {k: v for k, v in section.items() if k not in ("epsilons", "targeted")}


def make_attack(logits_fn, name: str, section: ml_collections.ConfigDict,
                eps: np.ndarray):
  """(images [B, ...], labels [B], keys [B]) -> AttackResult, hyperparameters
  and epsilons bound."""
  fn = functools.partial(attacks_lib.ATTACKS.get(name), logits_fn,
                         **_hyperparameters(section))
  targeted = bool(section.get("targeted", False))

  def attack(images, labels, keys):
    targets = None
    if targeted:
      num_classes = jax.eval_shape(logits_fn, images[:1]).shape[-1]
      shift = jax.vmap(lambda k: jax.random.randint(
          jax.random.fold_in(k, 1), (), 1, num_classes))(keys)
      targets = (labels + shift) % num_classes
    extra = {} if targets is None else {"targets": targets}
    return fn(images, labels, jnp.asarray(eps), keys, **extra)

  return attack


def attack_names(config: ml_collections.ConfigDict) -> list[str]:
  """`config.attack.attacks`, checked."""
  return attacks_lib.ATTACKS.parse(config.attack.attacks)


def gallery_attack(config: ml_collections.ConfigDict) -> str:
  """The attack whose adversarials fill the gallery ("" = none)."""
  names = [n for n in attack_names(config) if n != "autoattack"]
  if config.attack.gallery_attack in names:
    return config.attack.gallery_attack
  return names[0] if names else ""


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  """Names, epsilons and every attack's hyperparameters (traced abstractly on
  a tiny input, so a bad value fails here, naming its field)."""
  cfg = config.attack
  names = attack_names(config)
  if cfg.gallery_size < 0:
    raise ConfigError("config.attack.gallery_size must be >= 0")
  images = jax.ShapeDtypeStruct((1, 4, 4, 3), jnp.float32)
  logits_fn = lambda x: jnp.zeros((x.shape[0], dims.num_classes)) + x.mean()
  for name in names:
    if name not in cfg:
      raise ConfigError(f"config.attack.{name}: missing section")
    eps, _ = epsilons(name, cfg[name])
    attack = make_attack(logits_fn, name, cfg[name], eps)
    with config_field(f"config.attack.{name}"):
      try:
        jax.eval_shape(attack, images, jnp.zeros((1,), jnp.int32),
                       jax.random.split(jax.random.key(0), 1))
      except TypeError as e:
        raise ConfigError(f"config.attack.{name}: {e}") from e


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  size = dims.input_size
  produces = []
  for name in attack_names(config):
    num_eps = len(epsilons(name, config.attack[name])[0])
    produces += [
        ArtifactSpec(f"attack.adv_class.{name}", (num_eps,), "int64"),
        ArtifactSpec(f"attack.success.{name}", (num_eps,), "bool"),
        ArtifactSpec(f"attack.min_norm.{name}", (), "float32")]
    if name != "autoattack":  # Its adversarials come from 4 sub-attacks.
      produces.append(ArtifactSpec(f"attack.{_ADVERSARIAL}.{name}",
                                   (size, size, 3), "float32", large=True))
  return Contract(consumes=(Need("evaluate.prediction"),
                            Need("evaluate.logits")),
                  produces=tuple(produces))


def _run_attack(ctx: StageContext, name: str, eps: np.ndarray,
                attack_labels: np.ndarray, store: bool) -> dict:
  """One attack over the local examples -> per-example [n, E] results (and
  the adversarials at the largest epsilon, on disk, when `store`)."""
  model, section = ctx.model, ctx.config.attack[name]

  def step(state, batch):
    params, rng = state
    logits_fn = model.logits_fn(params)
    images = unit_images(batch["image"])
    attack = make_attack(logits_fn, name, section, eps)
    result = attack(images, _padding_fooled(logits_fn, images, batch),
                    example_keys(rng, batch["id"]))
    out = {"success": result.success.T, "norm": result.norm.T,
           "adv_class": result.adv_class.T, "min_norm": result.min_norm}
    if store:
      out[_ADVERSARIAL] = result.clipped[-1]
    return out

  return ctx.executor.run(
      name, step, (ctx.params, jax.random.fold_in(ctx.rng, 0)),
      {"image": ctx.data.images, "label": attack_labels,
       "id": ctx.data.ids.astype(np.int32)},
      batch_size=ctx.batch_size, keep_on_disk=(_ADVERSARIAL,))


def _run_autoattack(ctx: StageContext, eps: np.ndarray, eps_labels: list[str],
                    attack_labels: np.ndarray, correct: np.ndarray
                    ) -> tuple[dict, dict, dict[str, int]]:
  """AutoAttack, each sub-attack only on the local examples still robust.

  Returns:
    (per-example results as `_run_attack`'s, per epsilon the robust accuracy
    and seconds after each sub-attack, per epsilon how many examples the
    black-box Square fooled that the white-box attacks missed).
  """
  settings = {k: v for k, v in ctx.config.attack.autoattack.items()
              if k != "epsilons"}
  with config_field("config.attack.autoattack"):
    sub_attacks = autoattack_lib.plan(**settings)
  model = ctx.model
  n = len(ctx.data.ids)
  local = {"success": np.zeros((n, len(eps)), bool),
           "norm": np.zeros((n, len(eps)), np.float32),
           "adv_class": np.repeat(attack_labels[:, None], len(eps), 1),
           "min_norm": np.full(n, np.inf, np.float32)}
  labelled = ctx.executor.reduce(float((ctx.data.labels >= 0).sum()))
  stats, by_square = {}, {}
  for e, (value, eps_label) in enumerate(zip(eps, eps_labels)):
    remaining = np.flatnonzero(correct)
    after, seconds = {}, {}
    for i, (sub, attack) in enumerate(sub_attacks):
      start = time.time()

      def step(state, batch, attack=attack, i=i, value=value):
        params, rng = state
        keys = autoattack_lib.sub_attack_keys(example_keys(rng, batch["id"]),
                                              i)
        logits_fn = model.logits_fn(params)
        images = unit_images(batch["image"])
        result = attack(logits_fn, images,
                        _padding_fooled(logits_fn, images, batch),
                        jnp.asarray([value]), keys)
        return {"success": result.success[0], "norm": result.norm[0],
                "adv_class": result.adv_class[0]}

      fooled = 0
      total = ctx.executor.reduce(float(len(remaining)))
      if total > 0:
        out = ctx.executor.run(
            f"autoattack_{e}_{sub}", step,
            (ctx.params, jax.random.fold_in(ctx.rng, 0)),
            {"image": ctx.data.images[remaining],
             "label": attack_labels[remaining],
             "id": ctx.data.ids[remaining].astype(np.int32)},
            batch_size=_shrunk_batch(ctx.batch_size, int(total)),
            ids=ctx.data.ids[remaining])
        hit = out["success"].astype(bool)
        rows = remaining[hit]
        local["success"][rows, e] = True
        local["norm"][rows, e] = out["norm"][hit]
        local["adv_class"][rows, e] = out["adv_class"][hit]
        remaining = remaining[~hit]
        fooled = int(ctx.executor.reduce(float(hit.sum())))
      after[sub] = ctx.executor.reduce(float(len(remaining))) / max(labelled, 1)
      seconds[sub] = round(time.time() - start, 1)
      if sub == "square":
        by_square[eps_label] = fooled
      logging.info("autoattack at %s: robust accuracy %.4f after %s (%.1f s)",
                   eps_label, after[sub], sub, seconds[sub])
    stats[eps_label] = {"robust_accuracy_after": after, "seconds": seconds}
  found = np.where(local["success"], local["norm"], np.inf)
  local["min_norm"] = found.min(axis=1).astype(np.float32)
  return local, stats, by_square


def _padding_fooled(logits_fn, images: jax.Array, batch: dict) -> jax.Array:
  """The batch's labels [B], padding rows (`mask` False) given a class the
  model does not predict: searches that stop once a whole batch is fooled
  (APGD, DeepFool, Square) then never wait on them. Full batches, the usual
  case, skip the extra forward pass."""
  labels = batch["label"].astype(jnp.int32)

  def relabel():
    logits = logits_fn(images)
    wrong = (jnp.argmax(logits, -1) + 1) % logits.shape[-1]
    return jnp.where(batch["mask"], labels, wrong.astype(jnp.int32))

  return jax.lax.cond(jnp.all(batch["mask"]), lambda: labels, relabel)


def _shrunk_batch(batch_size: int, remaining: int) -> int:
  """The batch for a sub-attack on `remaining` examples: at most
  `batch_size`, else the next power of two (few compilations), so examples
  already fooled cost no padding rows."""
  return min(batch_size, 1 << max(remaining - 1, 0).bit_length())


def _accuracy(values: np.ndarray, labelled: np.ndarray) -> float:
  return float(values[labelled].mean()) if labelled.any() else float("nan")


def _flip_fields(taxonomy: judgement.Taxonomy, labels: np.ndarray,
                 other: np.ndarray, sets, flipped: np.ndarray
                 ) -> dict[str, np.ndarray]:
  """The judgement of `other` where `flipped` (False / -1 elsewhere)."""
  judged = taxonomy.judge(labels, other, sets)
  return {k: np.where(flipped, v, -1 if k == "wordnet_distance" else False)
          for k, v in judged.items()}


def _curve(min_norm: np.ndarray, correct: np.ndarray, labelled: np.ndarray,
           points: np.ndarray) -> list[float]:
  """Robust accuracy at each epsilon from minimal perturbations: correct and
  no adversarial within epsilon."""
  total = max(int(labelled.sum()), 1)
  return [float((labelled & correct & ~(min_norm <= p)).sum() / total)
          for p in points]


def _trust_probe(ctx: StageContext, attack_labels: np.ndarray) -> list[str]:
  """Zero gradients, probability-like outputs, determinism (`attacks.trust`)."""
  model = ctx.model

  def step(params, batch):
    out = trust.probe(model.logits_fn(params), unit_images(batch["image"]),
                      batch["label"])
    reference = batch["reference"]
    return {"zero_gradient": out["zero_gradient"],
            "probability_like": out["probability_like"],
            "change": jnp.abs(out["logits"] - reference).max(-1),
            "scale": jnp.abs(reference).max(-1)}

  local = ctx.executor.run("trust", step, ctx.params,
                           {"image": ctx.data.images, "label": attack_labels,
                            "reference": ctx.artifacts["evaluate.logits"]},
                           batch_size=ctx.batch_size)
  gathered = ctx.executor.gather(local)
  return trust.model_warnings(gathered["zero_gradient"],
                              gathered["probability_like"],
                              gathered["change"], gathered["scale"])


def run(ctx: StageContext) -> StageOutput:
  """Runs every configured attack; see the module docstring."""
  cfg = ctx.config.attack
  names = attack_names(ctx.config)
  with config_field("config.taxonomy"):
    taxonomy = judgement.build(ctx.config.taxonomy, ctx.labels,
                               ctx.data)
  prediction = ctx.artifacts["evaluate.prediction"]
  # Unlabelled examples are attacked away from the model's own prediction.
  attack_labels = np.where(ctx.data.labels >= 0, ctx.data.labels,
                           prediction).astype(np.int32)
  correct_local = prediction == attack_labels
  gathered = ctx.executor.gather({"label": ctx.data.labels,
                                  "prediction": prediction})
  labels = gathered["label"]
  labelled = labels >= 0
  correct = gathered["prediction"] == labels
  sets = taxonomy.label_sets(ctx.data, gathered["id"])
  clean = _flip_fields(taxonomy, labels, gathered["prediction"], sets,
                       labelled & ~correct)
  summary = {
      "num_examples": int(labelled.sum()),
      "clean_accuracy": _accuracy(correct, labelled),
      "plausible_clean_accuracy": _accuracy(correct | clean["plausible"],
                                            labelled),
      "misclassified_before_attack": int((labelled & ~correct).sum()),
      "robust_accuracy": {}, "plausible_robust_accuracy": {},
      "plausibility_of_flips": {}, "median_min_perturbation": {},
      "minimal_norm_curve": {}, "epsilons": {},
      "plausibility_sources": taxonomy.sources(),
  }
  if not summary["plausibility_sources"]:
    summary["notes"] = [f"{judgement.NO_TAXONOMY}: plausible robust accuracy "
                        "equals robust accuracy (config.taxonomy)"]
  rows = local_rows(gathered["id"], ctx.data.ids)
  records, results, artifacts, curves, by_square = [], {}, {}, {}, {}
  studied = _studied_point(ctx) if ctx.study is not None else None
  for name in names:
    eps, eps_labels = epsilons(name, cfg[name])
    store = (name != "autoattack" and (
        name == gallery_attack(ctx.config)
        or f"attack.{_ADVERSARIAL}.{name}" in ctx.needed))
    if name == "autoattack":
      local, summary["autoattack"], by_square = _run_autoattack(
          ctx, eps, eps_labels, attack_labels, correct_local)
    else:
      local = _run_attack(ctx, name, eps, attack_labels, store)
    # Only correctly classified images can be flipped (the paper's flips).
    local["success"] = local["success"] & correct_local[:, None]
    local["correct_before"] = correct_local
    local["min_norm"] = np.where(correct_local, local["min_norm"], np.nan)
    result = ctx.executor.gather({k: v for k, v in local.items()
                                  if k not in (_ADVERSARIAL, "correct_before")})
    results[name] = dict(result, eps=eps, eps_labels=eps_labels,
                         norm_type=attack_norm(name, cfg[name]))
    plain, plausible, flips = {}, {}, {}
    for e, eps_label in enumerate(eps_labels):
      flipped = result["success"][:, e]
      adv = np.where(flipped, result["adv_class"][:, e], labels)
      fields = _flip_fields(taxonomy, labels, adv, sets, flipped)
      robust = correct & ~flipped
      plain[eps_label] = _accuracy(robust, labelled)
      plausible[eps_label] = _accuracy(robust | fields["plausible"], labelled)
      flips[eps_label] = {"num_flipped": int(flipped.sum()), **{
          k: float(fields[k][flipped].mean()) if flipped.any() else float("nan")
          for k in _FLIP_REASONS}}
      records.append(_record_rows(ctx, name, results[name], e, rows, labels,
                                  robust, fields, local))
      if studied == (name, eps_label):
        summary["human"], accepted = _human(
            ctx.study, taxonomy, gathered["id"], flipped, robust, labelled,
            fields)
        records[-1]["human_adversarial_accepted"] = accepted[rows]
    summary["robust_accuracy"][name] = plain
    summary["plausible_robust_accuracy"][name] = plausible
    summary["plausibility_of_flips"][name] = flips
    summary["epsilons"][name] = dict(zip(eps_labels, eps.tolist()))
    if name in attacks_lib.MINIMAL:
      summary["median_min_perturbation"][name] = _median_min(
          result["min_norm"], labelled & correct)
      points = np.linspace(0.0, float(eps[-1]), int(cfg.curve_points) + 1)
      accuracy = _curve(result["min_norm"], correct, labelled, points)
      summary["minimal_norm_curve"][name] = {
          "norm": results[name]["norm_type"], "epsilons": points.tolist(),
          "robust_accuracy": accuracy}
      curves[name] = {"norm_type": results[name]["norm_type"],
                      "curve": lambda p, m=result["min_norm"]: _curve(
                          m, correct, labelled, [p])[0]}
    artifacts[f"attack.adv_class.{name}"] = np.where(
        local["success"], local["adv_class"], -1).astype(np.int64)
    artifacts[f"attack.success.{name}"] = local["success"].astype(bool)
    artifacts[f"attack.min_norm.{name}"] = local["min_norm"].astype(np.float32)
    if store:
      artifacts[f"attack.{_ADVERSARIAL}.{name}"] = local[_ADVERSARIAL]
  summary["warnings"] = (
      trust.attack_warnings(summary, results, cfg.tolerance, curves)
      + trust.square_warnings(by_square) + _trust_probe(ctx, attack_labels))
  gallery = _gallery(ctx, results, gathered, artifacts)
  sections = report.sections(summary, results, names, *gallery)
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
  if source.attack in attack_names(ctx.config):
    eps, eps_labels = epsilons(source.attack, ctx.config.attack[source.attack])
    for value, label in zip(eps.tolist(), eps_labels):
      if label == source.epsilon_label and np.isclose(value, source.epsilon):
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
                 rows: np.ndarray, labels: np.ndarray, robust: np.ndarray,
                 fields: dict[str, np.ndarray], local: dict) -> dict:
  """This process's rows for one attack at its e-th epsilon."""
  n = len(rows)
  class_names = np.asarray(ctx.model.class_names, dtype=object)
  adv = local["adv_class"][:, e]
  columns = {
      "id": ctx.data.ids,
      "attack": np.full(n, name, dtype=object),
      "norm_type": np.full(n, result["norm_type"], dtype=object),
      "epsilon": np.full(n, float(result["eps"][e])),
      "epsilon_label": np.full(n, result["eps_labels"][e], dtype=object),
      "label": labels[rows],
      "correct_before": local["correct_before"],
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


def _median_min(min_norm: np.ndarray, rows: np.ndarray) -> dict:
  """Median minimal perturbation over clean-correct examples where found."""
  found = rows & np.isfinite(min_norm)
  return {"median": float(np.median(min_norm[found])) if found.any()
                    else float("nan"),
          "found": float(found.sum() / max(rows.sum(), 1))}
