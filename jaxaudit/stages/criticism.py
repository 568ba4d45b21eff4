"""Bias uncovering (Stock & Cisse): MMD-critic prototypes and criticisms per group.

In the model's penultimate feature space, each group's prototypes are the images
that best summarise what the model treats as that group and its criticisms the
images least well represented by them (`jaxaudit.criticism`). Groups are true or
predicted classes, the taxonomy's superclasses (`config.taxonomy`) or everything
at once. Where the attack stage ran, each group's correctly classified
criticisms are also ranked by their minimal adversarial distance
(`attack.min_norm.<attack>`), so fragile atypical images surface first; the
misclassified ones are listed apart.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh
import ml_collections
import numpy as np

from jaxaudit import criticism
from jaxaudit import sharding
from jaxaudit.artifacts import Contract, Need
from jaxaudit.errors import ConfigError
from jaxaudit.models.classifier import ModelDims
from jaxaudit.report import criticism as report
from jaxaudit.stages.base import NO_FEATURES, StageContext, StageOutput
from jaxaudit.stages.base import config_field
from jaxaudit.taxonomy import judgement, superclasses

GROUP_BY = ("auto", "true_class", "predicted_class", "superclass", "global")
REGULARIZERS = ("logdet", "none")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # auto: true_class with >= min_group_size examples per labelled class,
      # else superclass (where the taxonomy has them), else global.
      "group_by": "auto",
      "min_group_size": 5,
      "num_prototypes": 4,
      "num_criticisms": 4,
      "gamma": 0.0,  # RBF width; 0 = 1 / median squared distance per group.
      "regularizer": "logdet",  # or "none".
      "block_size": 512,  # Kernel tile side.
      # The attack whose minimal adversarial distances (attack.min_norm.<it>)
      # rank criticisms when the attack stage ran before ("" = none).
      "adversarial_attack": "deepfool",
      "report_groups": 40,  # Groups shown in report.html.
  })


def check_config(config: ml_collections.ConfigDict, dims: ModelDims) -> None:
  del dims
  cfg = config.criticism
  if cfg.group_by not in GROUP_BY:
    raise ConfigError(f"config.criticism.group_by: unknown '{cfg.group_by}'; "
                      f"valid: {', '.join(GROUP_BY)}")
  if cfg.regularizer not in REGULARIZERS:
    raise ConfigError(f"config.criticism.regularizer: unknown "
                      f"'{cfg.regularizer}'; valid: {', '.join(REGULARIZERS)}")
  for field in ("gamma", "num_prototypes", "num_criticisms", "min_group_size"):
    if cfg[field] < 0:
      raise ConfigError(f"config.criticism.{field} must be >= 0, got "
                        f"{cfg[field]}")
  if cfg.block_size < 1:
    raise ConfigError("config.criticism.block_size must be >= 1")


def contract(config: ml_collections.ConfigDict, dims: ModelDims) -> Contract:
  del dims
  consumes = [Need("evaluate.features", optional=True),
              Need("evaluate.prediction")]
  if config.criticism.adversarial_attack:
    consumes.append(Need(
        f"attack.min_norm.{config.criticism.adversarial_attack}",
        optional=True))
  return Contract(consumes=tuple(consumes))


def resolve_group_by(config: ml_collections.ConfigDict,
                     groups: superclasses.Superclasses | None,
                     class_counts: np.ndarray) -> tuple[str, list[str]]:
  """`config.criticism.group_by`, with "auto" made concrete, and notes.

  Args:
    config: the job config.
    groups: the taxonomy's superclasses, or None.
    class_counts: int [K] labelled examples of each class, over all processes.

  Returns:
    (a concrete `GROUP_BY` mode, notes for the summary).
  """
  group_by = config.criticism.group_by
  notes = []
  if group_by == "superclass" and groups is None:
    notes.append(f"{superclasses.NO_TAXONOMY}: group_by=superclass fell back "
                 "to auto (config.taxonomy.superclass: a .json of {class: "
                 "group})")
    group_by = "auto"
  if group_by != "auto":
    return group_by, notes
  labelled, present = int(class_counts.sum()), np.flatnonzero(class_counts)
  minimum = config.criticism.min_group_size
  if labelled >= minimum * len(present) > 0:
    return "true_class", notes
  if groups is not None and labelled:
    if labelled >= minimum * len(np.unique(groups.groups[present])):
      return "superclass", notes
  return "global", notes


def group_examples(group_by: str, labels: np.ndarray,
                   predictions: np.ndarray, class_names: tuple[str, ...],
                   groups: superclasses.Superclasses | None = None
                   ) -> tuple[np.ndarray, list[str]]:
  """Group index of every example (-1 = none) and the group names.

  Args:
    group_by: a concrete `GROUP_BY` mode.
    labels: int [N] true classes, -1 = unlabelled (in no class group).
    predictions: int [N] predicted classes.
    class_names: the model's K class names.
    groups: the superclasses (for group_by="superclass").

  Returns:
    (int [N] group index, names of the groups by index).
  """
  if group_by == "global":
    return np.zeros(len(labels), np.int64), ["all"]
  if group_by == "superclass":
    return (np.where(labels >= 0, groups.groups[np.maximum(labels, 0)], -1),
            list(groups.names))
  classes = labels if group_by == "true_class" else predictions
  counts: dict[str, int] = {}
  for name in class_names:
    counts[name] = counts.get(name, 0) + 1
  names = [f"{n} ({k})" if counts[n] > 1 else n
           for k, n in enumerate(class_names)]
  return np.where(classes >= 0, classes, -1).astype(np.int64), names


def group_owners(sizes: np.ndarray, num_processes: int) -> np.ndarray:
  """int [G]: the process that selects each group's prototypes and
  criticisms: largest group first to the least loaded process (the same on
  every process)."""
  owners = np.zeros(len(sizes), np.int64)
  load = np.zeros(num_processes, np.int64)
  for g in np.argsort(-sizes, kind="stable"):
    owners[g] = int(np.argmin(load))
    load[owners[g]] += sizes[g]
  return owners


def _select_owned(ctx: StageContext, mine: dict[str, np.ndarray],
                  num_groups: int) -> dict[str, np.ndarray]:
  """MMD-critic of the groups whose rows this process received, packed per
  group: ids, witness values and distances of the chosen examples (padding:
  id -1), MMD^2 and gamma. Computed on this process's devices alone."""
  config = ctx.config.criticism
  local_mesh = Mesh(np.asarray(jax.local_devices()), (sharding.DATA_AXIS,))
  try:
    selection = criticism.select_groups(
        mine["features"], mine["group"].astype(np.int64),
        config.num_prototypes, config.num_criticisms, config.gamma or None,
        config.regularizer, mesh=local_mesh, block_size=config.block_size)
  except ValueError as e:
    raise ConfigError(f"config.criticism: {e}") from e
  owned = np.flatnonzero(selection.sizes[:num_groups] > 0)
  width = {"prototype": config.num_prototypes, "criticism": config.num_criticisms}
  packed = {"mmd2": selection.mmd2[owned], "gamma": selection.gamma[owned]}
  for role, chosen in (("prototype", selection.prototypes),
                       ("criticism", selection.criticisms)):
    ids = np.full((len(owned), width[role]), -1, np.int64)
    witness = np.full((len(owned), width[role]), np.nan)
    distance = np.full((len(owned), width[role]), np.nan)
    for k, g in enumerate(owned):
      rows = chosen[g]
      ids[k, :len(rows)] = mine["id"][rows]
      witness[k, :len(rows)] = selection.witness[rows]
      if "distance" in mine:
        distance[k, :len(rows)] = mine["distance"][rows]
    packed.update({f"{role}_id": ids, f"{role}_witness": witness,
                   f"{role}_distance": distance})
  return sharding.gather_to_all(packed, owned)


def _as_selection(packed: dict[str, np.ndarray], sizes: np.ndarray
                  ) -> tuple[criticism.GroupSelection, np.ndarray, np.ndarray]:
  """Every group's results as one `GroupSelection` over the chosen examples
  only: its rows index the returned ids [R] and distances [R]."""
  num_groups = len(sizes)
  out = criticism.GroupSelection([np.zeros(0, np.int64)] * num_groups,
                                 [np.zeros(0, np.int64)] * num_groups,
                                 np.zeros(0), np.full(num_groups, np.nan),
                                 np.full(num_groups, np.nan), sizes)
  ids, witness, distance = [], [], []
  for k, g in enumerate(packed["id"]):
    out.mmd2[g], out.gamma[g] = packed["mmd2"][k], packed["gamma"][k]
    for role in ("prototype", "criticism"):
      chosen = packed[f"{role}_id"][k] >= 0
      rows = np.arange(len(ids), len(ids) + chosen.sum())
      ids += packed[f"{role}_id"][k][chosen].tolist()
      witness += packed[f"{role}_witness"][k][chosen].tolist()
      distance += packed[f"{role}_distance"][k][chosen].tolist()
      if role == "prototype":
        out.prototypes[g] = rows
      else:
        out.criticisms[g] = rows
  out.witness = np.asarray(witness, np.float64)
  return out, np.asarray(ids, np.int64), np.asarray(distance, np.float64)


def run(ctx: StageContext) -> StageOutput:
  """Prototypes and criticisms of every group; see the module docstring.

  Each group is selected by one process (`group_owners`), which receives its
  members' features from the others (`sharding.exchange`): no process holds
  more features than its own groups' and its own examples'.
  """
  config = ctx.config.criticism
  features = ctx.artifacts.get("evaluate.features")
  if features is None:
    return StageOutput(summary={"skipped": NO_FEATURES},
                       records={"id": np.zeros(0, np.int64)},
                       sections=report.skipped(NO_FEATURES))
  with config_field("config.taxonomy"):
    taxonomy = judgement.build(ctx.config.taxonomy, ctx.labels, ctx.data)
  labels = ctx.data.labels
  class_counts = ctx.executor.sum_counts(
      np.bincount(labels[labels >= 0], minlength=len(ctx.labels)))
  group_by, notes = resolve_group_by(ctx.config, taxonomy.superclasses,
                                     class_counts)
  groups, names = group_examples(group_by, labels,
                                 ctx.artifacts["evaluate.prediction"],
                                 ctx.model.class_names, taxonomy.superclasses)
  sizes = ctx.executor.sum_counts(
      np.bincount(groups[groups >= 0], minlength=len(names)))
  owners = group_owners(sizes, jax.process_count())
  columns = {"id": ctx.data.ids, "group": groups,
             "features": np.asarray(features, np.float32)}
  distance_name = f"attack.min_norm.{config.adversarial_attack}"
  has_distance = bool(config.adversarial_attack) and (
      distance_name in ctx.artifacts)
  if has_distance:
    columns["distance"] = ctx.artifacts[distance_name].astype(np.float32)
  mine = sharding.exchange(columns, np.where(groups >= 0,
                                             owners[np.maximum(groups, 0)], -1))
  selection, ids, distance = _as_selection(
      _select_owned(ctx, mine, len(names)), sizes)
  distance = distance if has_distance else None
  present = [g for g in range(len(sizes)) if sizes[g]]
  summary = {
      "group_by": group_by,
      "notes": notes,
      "prototypes": {names[g]: ids[selection.prototypes[g]].tolist()
                     for g in present},
      "criticisms": {names[g]: ids[selection.criticisms[g]].tolist()
                     for g in present},
      "mmd2": {names[g]: float(selection.mmd2[g]) for g in present},
      "gamma": {names[g]: float(selection.gamma[g]) for g in present},
      "group_sizes": {names[g]: int(selection.sizes[g]) for g in present},
  }
  if distance is not None:
    # Only images the model classifies correctly have an adversarial
    # distance (NaN for the others): they alone are ranked.
    summary["criticisms_by_adversarial_distance"] = {
        names[g]: ids[report.fragile(selection.criticisms[g],
                                     distance)].tolist()
        for g in present}
    summary["misclassified_criticisms"] = {
        names[g]: ids[[r for r in selection.criticisms[g]
                       if np.isnan(distance[r])]].tolist() for g in present}
  rows = _rows(selection, present, names, distance)
  local = np.isin(ids[rows["row"]], ctx.data.ids)
  records = {"id": ids[rows["row"]][local]}
  records.update({k: np.asarray(v)[local] for k, v in rows.items()
                  if k != "row"})
  return StageOutput(summary=summary, records=records,
                     sections=report.sections(
                         selection, present, names, ids, distance, group_by,
                         notes, ctx.data.fetch, config.report_groups))


def _rows(selection, present, names, distance) -> dict[str, list]:
  """One record per (group, selected example): role, rank, witness."""
  out = {k: [] for k in ("row", "group", "role", "rank", "witness",
                         "adversarial_distance", "adversarial_rank")}
  for g in present:
    fragile = (report.fragile(selection.criticisms[g], distance).tolist()
               if distance is not None else [])
    for role, chosen in (("prototype", selection.prototypes[g]),
                         ("criticism", selection.criticisms[g])):
      for rank, row in enumerate(chosen.tolist()):
        out["row"].append(row)
        out["group"].append(names[g])
        out["role"].append(role)
        out["rank"].append(rank)
        out["witness"].append(float(selection.witness[row]))
        out["adversarial_distance"].append(
            float(distance[row]) if distance is not None else float("nan"))
        out["adversarial_rank"].append(
            fragile.index(row) if role == "criticism" and row in fragile
            else -1)
  return out
