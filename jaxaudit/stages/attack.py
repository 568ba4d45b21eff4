"""Attacks: robust accuracy under gradient attacks, plain and plausibility-adjusted.

Each attack `config.attack.attacks` names (see `jaxaudit.attacks.ATTACKS`) runs
over every example at every epsilon of its `config.attack.<name>` section.
Random starts use per-example keys, so results do not depend on the device
count. An example is robust at an epsilon when the model still predicts its
label; it is plausibly robust when it is robust or the adversarial label is one
a person would accept (Stock & Cisse 2018), by the job's one judgement
(`config.taxonomy`, `jaxaudit.taxonomy.judgement`).

Epsilon units: L-inf epsilons are in 1/255 (`1.0` = one grey level), L2
epsilons in [0, 1]-pixel units.

Artifacts, per attack A with E epsilons: `attack.adv_class.A` [N, E] (-1 where
the attack failed), `attack.success.A` [N, E], `attack.min_norm.A` [N] (the
smallest adversarial perturbation found, inf if none) and, on request of a
later stage (and always for the gallery attack), `attack.adversarial.A`
[N, S, S, 3]: the adversarial at the largest epsilon, written to disk once and
read back batch by batch.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import attacks as attacks_lib
from jaxaudit.artifacts import ArtifactSpec, Contract, Need
from jaxaudit.data.pixels import unit_images
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import attack as report
from jaxaudit.sharding import example_keys
from jaxaudit.stages.base import StageContext, StageOutput, config_field
from jaxaudit.stages.base import local_rows
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
      "deepfool": {"epsilons": (0.05, 0.1, 0.25), "norm": "l2", "steps": 3,
                   "candidates": 4, "overshoot": 0.02},
      "cw_l2": {"epsilons": (0.05, 0.1, 0.25), "binary_search_steps": 2,
                "steps": 4, "stepsize": 0.01, "confidence": 0.0,
                "initial_const": 1.0},
  })


def set_full_sweep(cfg: ml_collections.ConfigDict, linf: tuple[float, ...],
                   pgd_l2: tuple[float, ...],
                   minimal_l2: tuple[float, ...]) -> None:
  """Sets `config.attack` to full-strength attacks over epsilon sweeps.

  Args:
    cfg: `config.attack`, changed in place.
    linf: FGSM and PGD-L-inf epsilons (in 1/255).
    pgd_l2: PGD-L2 epsilons ([0, 1]-pixel units).
    minimal_l2: DeepFool and C&W-L2 epsilons at which their minimal
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
  """The attack whose adversarials fill the gallery."""
  names = attack_names(config)
  return (config.attack.gallery_attack
          if config.attack.gallery_attack in names else names[0])


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
        ArtifactSpec(f"attack.min_norm.{name}", (), "float32"),
        ArtifactSpec(f"attack.{_ADVERSARIAL}.{name}", (size, size, 3),
                     "float32", large=True)]
  return Contract(consumes=(Need("evaluate.prediction"),),
                  produces=tuple(produces))


def _run_attack(ctx: StageContext, name: str, eps: np.ndarray,
                attack_labels: np.ndarray, store: bool) -> dict:
  """One attack over the local examples -> per-example [n, E] results (and
  the adversarials at the largest epsilon, on disk, when `store`)."""
  model, section = ctx.model, ctx.config.attack[name]

  def step(state, batch):
    params, rng = state
    attack = make_attack(model.logits_fn(params), name, section, eps)
    result = attack(unit_images(batch["image"]), batch["label"],
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


def _accuracy(values: np.ndarray, labelled: np.ndarray) -> float:
  return float(values[labelled].mean()) if labelled.any() else float("nan")


def _flip_fields(taxonomy: judgement.Taxonomy, labels: np.ndarray,
                 other: np.ndarray, sets) -> dict[str, np.ndarray]:
  """The judgement of `other` where it flips a labelled example (False / -1
  elsewhere)."""
  judged = taxonomy.judge(labels, other, sets)
  flipped = (labels >= 0) & (other >= 0) & (other != labels)
  return {k: np.where(flipped, v, -1 if k == "wordnet_distance" else False)
          for k, v in judged.items()}


def run(ctx: StageContext) -> StageOutput:
  """Runs every configured attack; see the module docstring."""
  cfg = ctx.config.attack
  names = attack_names(ctx.config)
  with config_field("config.taxonomy"):
    taxonomy = judgement.build(ctx.config.taxonomy, ctx.model.class_names,
                               ctx.data)
  prediction = ctx.artifacts["evaluate.prediction"]
  # Unlabelled examples are attacked away from the model's own prediction.
  attack_labels = np.where(ctx.data.labels >= 0, ctx.data.labels,
                           prediction).astype(np.int32)
  gathered = ctx.executor.gather({"label": ctx.data.labels,
                                  "prediction": prediction})
  labels = gathered["label"]
  labelled = labels >= 0
  sets = taxonomy.label_sets(ctx.data, gathered["id"])
  clean = _flip_fields(taxonomy, labels, gathered["prediction"], sets)
  correct = gathered["prediction"] == labels
  summary = {
      "num_examples": int(labelled.sum()),
      "clean_accuracy": _accuracy(correct, labelled),
      "plausible_clean_accuracy": _accuracy(correct | clean["plausible"],
                                            labelled),
      "robust_accuracy": {}, "plausible_robust_accuracy": {},
      "plausibility_of_flips": {}, "median_min_perturbation": {},
      "epsilons": {}, "plausibility_sources": taxonomy.sources(),
  }
  if not summary["plausibility_sources"]:
    summary["notes"] = [f"{judgement.NO_TAXONOMY}: plausible robust accuracy "
                        "equals robust accuracy (config.taxonomy)"]
  rows = local_rows(gathered["id"], ctx.data.ids)
  records, results, artifacts = [], {}, {}
  for name in names:
    eps, eps_labels = epsilons(name, cfg[name])
    store = (name == gallery_attack(ctx.config)
             or f"attack.{_ADVERSARIAL}.{name}" in ctx.needed)
    local = _run_attack(ctx, name, eps, attack_labels, store)
    result = ctx.executor.gather({k: v for k, v in local.items()
                                  if k != _ADVERSARIAL})
    results[name] = dict(result, eps=eps, eps_labels=eps_labels,
                         norm_type=attack_norm(name, cfg[name]))
    plain, plausible, flips = {}, {}, {}
    for e, eps_label in enumerate(eps_labels):
      adv = result["adv_class"][:, e]
      fields = _flip_fields(taxonomy, labels, adv, sets)
      robust = adv == labels
      plain[eps_label] = _accuracy(robust, labelled)
      plausible[eps_label] = _accuracy(robust | fields["plausible"], labelled)
      flipped = (labels >= 0) & (adv != labels)
      flips[eps_label] = {"num_flipped": int(flipped.sum()), **{
          k: float(fields[k][flipped].mean()) if flipped.any() else float("nan")
          for k in _FLIP_REASONS}}
      records.append(_record_rows(ctx, name, results[name], e, rows, labels,
                                  robust, fields, local))
    summary["robust_accuracy"][name] = plain
    summary["plausible_robust_accuracy"][name] = plausible
    summary["plausibility_of_flips"][name] = flips
    summary["epsilons"][name] = dict(zip(eps_labels, eps.tolist()))
    if name in attacks_lib.MINIMAL:
      summary["median_min_perturbation"][name] = _median_min(
          result["min_norm"], labelled & correct)
    artifacts[f"attack.adv_class.{name}"] = np.where(
        local["success"], local["adv_class"], -1).astype(np.int64)
    artifacts[f"attack.success.{name}"] = local["success"].astype(bool)
    artifacts[f"attack.min_norm.{name}"] = local["min_norm"].astype(np.float32)
    if store:
      artifacts[f"attack.{_ADVERSARIAL}.{name}"] = local[_ADVERSARIAL]
  summary["warnings"] = trust_warnings(summary, results, cfg.tolerance)
  gallery = _gallery(ctx, results, gathered, artifacts)
  return StageOutput(
      summary=summary,
      records={k: np.concatenate([r[k] for r in records]) for k in records[0]},
      sections=report.sections(summary, results, names, *gallery),
      artifacts=artifacts)


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
  if cfg.gallery_size <= 0:
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


def trust_warnings(summary: dict, results: dict, tolerance: float) -> list[str]:
  """Signs of a broken attack or gradient masking (as AutoAttack checks).

  Checks: adversarials inside their norm ball; robust accuracy at most the
  clean one and non-increasing in epsilon; PGD-L-inf at least as strong as
  FGSM at equal epsilons; the strongest attack flips some label.
  """
  warnings = []
  clean = summary["clean_accuracy"]
  robust = summary["robust_accuracy"]
  for name, result in results.items():
    accs = [robust[name][e] for e in result["eps_labels"]]
    slack = 1e-4 if result["norm_type"] == "l2" else 1e-6
    outside = result["norm"] > result["eps"][None, :] * (1 + 1e-4) + slack
    if outside.any():
      warnings.append(f"{name}: {int(outside.sum())} adversarials outside "
                      "their epsilon ball")
    if any(a > clean + tolerance for a in accs):
      warnings.append(f"{name}: robust accuracy {max(accs):.3f} exceeds clean "
                      f"accuracy {clean:.3f}")
    if any(b > a + tolerance for a, b in zip(accs, accs[1:])):
      warnings.append(f"{name}: robust accuracy increases with epsilon "
                      f"({', '.join(f'{a:.3f}' for a in accs)}): possible "
                      "gradient masking")
    if clean > 0 and accs and accs[-1] >= clean and result["eps"][-1] > 0:
      warnings.append(f"{name}: no label flipped even at the largest epsilon "
                      f"({result['eps_labels'][-1]}): possible gradient masking")
  if "fgsm" in robust and "pgd_linf" in robust:
    for eps_label, fgsm_acc in robust["fgsm"].items():
      pgd_acc = robust["pgd_linf"].get(eps_label)
      if pgd_acc is not None and pgd_acc > fgsm_acc + tolerance:
        warnings.append(f"pgd_linf weaker than fgsm at {eps_label} "
                        f"({pgd_acc:.3f} > {fgsm_acc:.3f}): possible gradient "
                        "masking")
  return warnings
