"""Attacks: robust accuracy under gradient attacks, plain and plausibility-adjusted.

Each attack `config.attack.attacks` names (see `jaxaudit.attacks.ATTACKS`) runs
batch-sharded over every example at every epsilon of its `config.attack.<name>`
section. Random starts use per-example keys, so results do not depend on the
device count. An example is robust at an epsilon when the model still predicts
its label; it is plausibly robust when it is robust or the adversarial label is
one a person would accept (Stock & Cisse 2018): same superclass, in the image's
multi-label set, or a near-duplicate class (`jaxaudit.taxonomy.plausibility`).

Epsilon units: L-inf epsilons are in 1/255 (`1.0` = one grey level), L2
epsilons in [0, 1]-pixel units.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxaudit import attacks as attacks_lib
from jaxaudit import compile_options
from jaxaudit import sharding
from jaxaudit.attacks import report as attack_report
from jaxaudit.errors import ConfigError
from jaxaudit.stages import forward
from jaxaudit.stages.base import StageContext, StageOutput
from jaxaudit.taxonomy import label_sets as label_sets_lib
from jaxaudit.taxonomy import plausibility, superclasses

_PLAUSIBILITY_KEYS = ("wordnet_distance", "same_superclass", "in_label_set",
                      "near_duplicate", "plausible")


def default_config() -> ml_collections.ConfigDict:
  """Small enough for EfficientNet-Lite0 on a CPU (its input gradient costs
  ~0.3 s per image there); `configs/*_attack.py` hold the full sweeps."""
  # A few steps from the image beat FGSM; random starts need more steps.
  pgd = dict(steps=3, rel_stepsize=0.5, restarts=1, random_start=False,
             loss="ce", targeted=False)
  return ml_collections.ConfigDict({
      "attacks": "fgsm,pgd_linf,deepfool,cw_l2",
      "batch_size": 0,  # 0 = config.batch_size.
      "gallery_attack": "pgd_linf",  # Its largest epsilon fills the gallery.
      "gallery_size": 6,
      # auto (metaclasses on ImageNet-1k, the shipped groups on CIFAR-10) |
      # metaclass | wordnet (ancestor at wordnet_depth) | none | a .json path.
      "superclass": "auto",
      "wordnet_depth": 7,
      "multilabel": "auto",  # Label sets; see jaxaudit.taxonomy.label_sets.
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


def attack_names(cfg: ml_collections.ConfigDict) -> list[str]:
  """`config.attack.attacks` -> validated names, in order."""
  if not isinstance(cfg.attacks, str):
    raise ConfigError("config.attack.attacks must be a comma-separated string")
  names = [n.strip() for n in cfg.attacks.split(",") if n.strip()]
  if not names:
    raise ConfigError("config.attack.attacks is empty; valid: "
                      + ", ".join(attacks_lib.ATTACKS.names()))
  for name in names:
    attacks_lib.ATTACKS.check(name)
    if name not in cfg:
      raise ConfigError(f"config.attack.{name}: missing section")
  if len(set(names)) != len(names):
    raise ConfigError(f"config.attack.attacks lists an attack twice: "
                      f"{cfg.attacks}")
  return names


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


def _run_attack(ctx: StageContext, name: str, section, eps: np.ndarray,
                attack_labels: np.ndarray) -> dict[str, np.ndarray]:
  """Sharded attack over the local examples -> per-example [n, E] results."""
  model = ctx.model

  def step(state, batch):
    params, rng = state
    attack = make_attack(model.logits_fn(params), name, section, eps)
    result = attack(forward.unit_images(batch["image"]), batch["label"],
                    sharding.example_keys(rng, batch["id"]))
    return {"success": result.success.T, "norm": result.norm.T,
            "adv_class": result.adv_class.T, "min_norm": result.min_norm}

  return ctx.map_batches(
      name, step, (ctx.params, jax.random.fold_in(ctx.rng, 0)),
      {"image": ctx.data.images, "label": attack_labels,
       "id": ctx.data.ids.astype(np.int32)},
      batch_size=ctx.config.attack.batch_size or None)


def _plausibility(labels: np.ndarray, other: np.ndarray, sets, superclass,
                  label_space: str) -> dict[str, np.ndarray]:
  """Plausibility fields [N] of `other` for labelled examples where it differs
  from the label (False / -1 elsewhere)."""
  rows = np.flatnonzero((labels >= 0) & (other != labels))
  out = {"wordnet_distance": np.full(len(labels), -1, np.int64)}
  out.update({k: np.zeros(len(labels), bool) for k in _PLAUSIBILITY_KEYS[1:]})
  if len(rows):
    judged = plausibility.plausibility(
        labels[rows], other[rows],
        None if sets is None else [sets[i] for i in rows], superclass,
        label_space)
    for key in _PLAUSIBILITY_KEYS:
      out[key][rows] = judged[key]
  return out


def _accuracy(values: np.ndarray, labelled: np.ndarray) -> float:
  return float(values[labelled].mean()) if labelled.any() else float("nan")


def run(ctx: StageContext) -> StageOutput:
  """Runs every configured attack; see the module docstring."""
  cfg = ctx.config.attack
  names = attack_names(cfg)
  space = ctx.model.label_space
  groups = superclasses.resolve(cfg.superclass, ctx.model.class_names,
                                cfg.wordnet_depth, "config.attack.superclass")
  superclass = None if groups is None else groups.groups
  arrays = forward.forward(ctx)
  labels = arrays["label"]
  labelled = labels >= 0
  multilabel = label_sets_lib.resolve_source(ctx.data, cfg.multilabel,
                                             ctx.model.class_names)
  sets = (None if multilabel is None else label_sets_lib.label_sets_for(
      ctx.data, multilabel, ids=arrays["id"],
      class_names=ctx.model.class_names))
  judge = functools.partial(_plausibility, labels, sets=sets,
                            superclass=superclass, label_space=space)
  clean_plausible = judge(arrays["prediction"])["plausible"]
  summary = {
      "num_examples": int(labelled.sum()),
      "clean_accuracy": _accuracy(arrays["prediction"] == labels, labelled),
      "plausible_clean_accuracy": _accuracy(
          (arrays["prediction"] == labels) | clean_plausible, labelled),
      "robust_accuracy": {}, "plausible_robust_accuracy": {},
      "median_min_perturbation": {}, "epsilons": {},
      "plausibility_sources": {
          "superclass": None if groups is None else groups.about,
          "multilabel": multilabel},
  }
  if groups is None and sets is None:
    summary["notes"] = [f"{superclasses.NO_TAXONOMY}: plausible robust accuracy"
                        " equals robust accuracy (config.attack.superclass, "
                        "config.attack.multilabel)"]
  local_rows = np.searchsorted(arrays["id"], ctx.data.ids)
  # Unlabelled examples are attacked away from the model's own prediction.
  attack_labels = np.where(ctx.data.labels >= 0, ctx.data.labels,
                           arrays["prediction"][local_rows]).astype(np.int32)
  records, variants, adv_columns, results = [], [], [], {}
  for name in names:
    section = cfg[name]
    eps, eps_labels = epsilons(name, section)
    local = _run_attack(ctx, name, section, eps, attack_labels)
    result = sharding.gather_to_all(local, ctx.data.ids)
    results[name] = dict(result, eps=eps, eps_labels=eps_labels,
                         norm_type=attack_norm(name, section))
    plain, plausible = {}, {}
    for e, eps_label in enumerate(eps_labels):
      adv = result["adv_class"][:, e]
      fields = judge(adv)
      robust = adv == labels
      plain[eps_label] = _accuracy(robust, labelled)
      plausible[eps_label] = _accuracy(robust | fields["plausible"], labelled)
      variants.append(f"{name}@{eps_label}")
      adv_columns.append(np.where(result["success"][:, e], adv, -1))
      records.append(attack_report.record_rows(
          ctx, local_rows, name, results[name], e, labels, robust, fields))
    summary["robust_accuracy"][name] = plain
    summary["plausible_robust_accuracy"][name] = plausible
    summary["epsilons"][name] = dict(zip(eps_labels, eps.tolist()))
    if name in attacks_lib.MINIMAL:
      summary["median_min_perturbation"][name] = _median_min(
          result["min_norm"], labelled & (arrays["prediction"] == labels))
  summary["warnings"] = trust_warnings(summary, results, cfg.tolerance)
  gathered = {k: np.concatenate([r[k] for r in records])
              for k in records[0]}
  return StageOutput(
      summary=summary, records=gathered,
      sections=attack_report.sections(summary, results, names,
                                     *_gallery(ctx, results, arrays)),
      arrays=dict({"id": arrays["id"],
                   "adv_class": np.stack(adv_columns, axis=1).astype(np.int64),
                   "variant": np.asarray(variants)},
                  **{f"min_norm/{name}": results[name]["min_norm"]
                     for name in names if name in attacks_lib.MINIMAL}))


def gallery_adversary(cfg: ml_collections.ConfigDict, logits_fn, rng: jax.Array):
  """The gallery attack at its largest epsilon, for this stage and later ones.

  Args:
    cfg: `config.attack`.
    logits_fn: [B, H, W, C] images in [0, 1] -> [B, K] logits.
    rng: the attack stage's key (`stage_rng(seed, "attack")` in a job).

  Returns:
    A jittable `(images [B, H, W, C], labels [B], ids [B]) -> (adversarial
    images [B, H, W, C], adversarial classes [B])`: per-example keys, so the
    same adversarials the stage found when `cfg.gallery_attack` is among
    `cfg.attacks` (callers check).
  """
  name = cfg.gallery_attack
  eps, _ = epsilons(name, cfg[name])
  attack = make_attack(logits_fn, name, cfg[name], eps[-1:])
  key = jax.random.fold_in(rng, 0)

  def adversary(images, labels, ids):
    out = attack(images, labels, sharding.example_keys(key, ids))
    return out.clipped[0], out.adv_class[0]

  return adversary


def _gallery(ctx: StageContext, results: dict, arrays: dict
             ) -> tuple[list, str]:
  """Re-runs the gallery attack at its largest epsilon on a few fooled,
  clean-correct examples (same per-example keys) for clean / adversarial /
  perturbation tiles."""
  cfg = ctx.config.attack
  name = cfg.gallery_attack
  if jax.process_index() != 0 or cfg.gallery_size <= 0 or name not in results:
    return [], ""
  result = results[name]
  rows = np.flatnonzero(result["success"][:, -1]
                        & (arrays["prediction"] == arrays["label"]))
  rows = rows[:cfg.gallery_size]
  if not len(rows):
    return [], ""
  ids = arrays["id"][rows]
  images = ctx.data.fetch(ids).astype(np.float32) / 255.0
  adversary = gallery_adversary(cfg, ctx.model.logits_fn(ctx.params), ctx.rng)
  adv_images, adv_class = compile_options.jit(adversary)(
      jnp.asarray(images), jnp.asarray(arrays["label"][rows], jnp.int32),
      jnp.asarray(ids, jnp.int32))
  tiles = attack_report.gallery_rows(
      images, np.asarray(adv_images), arrays["label"][rows],
      arrays["prediction"][rows], np.asarray(adv_class),
      ctx.model.class_names)
  return tiles, f"{name} at {result['eps_labels'][-1]}: clean / adversarial / perturbation"


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
