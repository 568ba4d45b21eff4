"""Bias uncovering (Stock & Cisse): MMD-critic prototypes and criticisms per group.

In the model's penultimate feature space, each group's prototypes are the images
that best summarise what the model treats as that group and its criticisms the
images least well represented by them (`jaxaudit.criticism`). Groups are true or
predicted classes, ImageNet superclasses or everything at once. Where the attack
stage ran, each group's criticisms are also ranked by their DeepFool distance, so
fragile atypical images surface first.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from jaxaudit import criticism
from jaxaudit.errors import ConfigError
from jaxaudit.report import sections as rs
from jaxaudit.stages import forward
from jaxaudit.stages.base import StageContext, StageOutput
from jaxaudit.taxonomy import superclasses

DEFAULT_ADVERSARIAL_ARRAY = "min_norm/deepfool"
GROUP_BY = ("auto", "true_class", "predicted_class", "superclass", "global")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # auto: true_class with >= min_group_size examples per labelled class,
      # else superclass (where the label space has them), else global.
      "group_by": "auto",
      "superclass": "auto",  # As config.mistakes.superclass.
      "wordnet_depth": 7,
      "min_group_size": 5,
      "num_prototypes": 4,
      "num_criticisms": 4,
      "gamma": 0.0,  # RBF width; 0 = 1 / median squared distance per group.
      "regularizer": "logdet",  # or "none".
      "block_size": 512,  # Kernel tile side.
      # Attack-stage array of minimal adversarial distances (DeepFool's L2 by
      # default; "min_norm/cw_l2" for C&W) ranking criticisms when it ran.
      "adversarial_array": DEFAULT_ADVERSARIAL_ARRAY,
      "report_groups": 40,  # Groups shown in report.html.
  })


def resolve_group_by(config: ml_collections.ConfigDict,
                     groups: superclasses.Superclasses | None,
                     labels: np.ndarray) -> tuple[str, list[str]]:
  """`config.criticism.group_by`, with "auto" made concrete, and notes.

  Returns:
    (a concrete `GROUP_BY` mode, notes for the summary).
  """
  group_by = config.criticism.group_by
  if group_by not in GROUP_BY:
    raise ConfigError(f"config.criticism.group_by: unknown '{group_by}'; "
                      f"valid: {', '.join(GROUP_BY)}")
  notes = []
  if group_by == "superclass" and groups is None:
    notes.append(f"{superclasses.NO_TAXONOMY}: group_by=superclass fell back "
                 "to auto (config.criticism.superclass: a .json of {class: "
                 "group})")
    group_by = "auto"
  if group_by != "auto":
    return group_by, notes
  labelled = labels[labels >= 0]
  minimum = config.criticism.min_group_size
  if len(labelled) >= minimum * len(np.unique(labelled)) > 0:
    return "true_class", notes
  if groups is not None and len(labelled):
    if len(labelled) >= minimum * len(np.unique(groups.groups[labelled])):
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


def _adversarial_distance(ctx: StageContext, num: int) -> np.ndarray | None:
  """The attack stage's minimal adversarial distance [N] (inf where none was
  found) from `config.criticism.adversarial_array`, or None."""
  attack = ctx.outputs.get("attack")
  key = ctx.config.criticism.adversarial_array
  if attack is None or (key == DEFAULT_ADVERSARIAL_ARRAY
                        and key not in attack.arrays):
    return None
  if key not in attack.arrays:
    raise ConfigError(f"config.criticism.adversarial_array: no attack array "
                      f"'{key}'; have {', '.join(sorted(attack.arrays))}")
  distance = np.asarray(attack.arrays[key], np.float64)
  if distance.shape != (num,):
    raise ConfigError(f"config.criticism.adversarial_array: '{key}' has shape "
                      f"{distance.shape}, expected [{num}]")
  return distance


def run(ctx: StageContext) -> StageOutput:
  """Prototypes and criticisms of every group; see the module docstring."""
  config = ctx.config.criticism
  arrays = forward.forward(ctx)
  if "features" not in arrays:
    return StageOutput(
        summary={"skipped": forward.NO_FEATURES},
        records={"id": np.zeros(0, np.int64)},
        sections=[rs.Section("Prototypes and criticisms (MMD-critic)",
                             [rs.Text(f"Skipped: {forward.NO_FEATURES}.")])])
  taxonomy = superclasses.resolve(config.superclass, ctx.model.class_names,
                                  config.wordnet_depth,
                                  "config.criticism.superclass")
  group_by, notes = resolve_group_by(ctx.config, taxonomy, arrays["label"])
  groups, names = group_examples(group_by, arrays["label"],
                                 arrays["prediction"], ctx.model.class_names,
                                 taxonomy)
  if config.gamma < 0:
    raise ConfigError(f"config.criticism.gamma must be >= 0, got {config.gamma}")
  try:
    selection = criticism.select_groups(
        arrays["features"], groups, config.num_prototypes,
        config.num_criticisms, config.gamma or None, config.regularizer,
        mesh=ctx.mesh, block_size=config.block_size)
  except ValueError as e:
    raise ConfigError(f"config.criticism: {e}") from e
  distance = _adversarial_distance(ctx, len(arrays["id"]))
  ids = arrays["id"]
  present = [g for g in range(len(names)) if selection.sizes[g]]
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
    summary["criticisms_by_adversarial_distance"] = {
        names[g]: ids[_by_distance(selection.criticisms[g], distance)].tolist()
        for g in present}
  rows = _rows(selection, present, names, distance)
  local = np.isin(ids[rows["row"]], ctx.data.ids)
  records = {"id": ids[rows["row"]][local]}
  records.update({k: np.asarray(v)[local] for k, v in rows.items()
                  if k != "row"})
  return StageOutput(summary=summary, records=records,
                     sections=_sections(ctx, selection, present, names, ids,
                                        distance, group_by))


def _by_distance(rows: np.ndarray, distance: np.ndarray) -> np.ndarray:
  """`rows` sorted by ascending adversarial distance (NaN last), stable."""
  return rows[np.argsort(np.nan_to_num(distance[rows], nan=np.inf),
                         kind="stable")]


def _rows(selection, present, names, distance) -> dict[str, list]:
  """One record per (group, selected example): role, rank, witness."""
  out = {k: [] for k in ("row", "group", "role", "rank", "witness",
                         "adversarial_distance", "adversarial_rank")}
  for g in present:
    fragile = (list(_by_distance(selection.criticisms[g], distance))
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
            fragile.index(row) if role == "criticism" and fragile else -1)
  return out


def _sections(ctx, selection, present, names, ids, distance,
              group_by) -> list[rs.Section]:
  table = rs.Table([{"group": names[g], "examples": int(selection.sizes[g]),
                     "prototypes": len(selection.prototypes[g]),
                     "criticisms": len(selection.criticisms[g]),
                     "MMD^2": float(selection.mmd2[g]),
                     "gamma": float(selection.gamma[g])} for g in present],
                   title=f"Groups ({group_by})")
  items: list = [rs.Text(
      "MMD-critic in the model's penultimate feature space: per group, a row "
      "of prototypes (the images that best summarise it) and a row of "
      "criticisms (the images the prototypes represent worst), with witness "
      "values w = mean kernel to the group - mean kernel to the prototypes."),
                 table]
  shown = sorted(present, key=lambda g: (-len(selection.criticisms[g]), g))
  for g in sorted(shown[:ctx.config.criticism.report_groups]):
    gallery_rows = []
    labelled = [("prototype", selection.prototypes[g]),
                ("criticism", selection.criticisms[g])]
    if distance is not None and len(selection.criticisms[g]):
      labelled.append(("most fragile criticism",
                       _by_distance(selection.criticisms[g], distance)))
    for role, chosen in labelled:
      if not len(chosen):
        continue
      images = ctx.data.fetch(ids[chosen])
      gallery_rows.append([rs.Tile(
          img, f"{role} {k + 1}\nw = {selection.witness[row]:+.4f}"
          + (f"\nadversarial dist. {distance[row]:.3g}" if distance is not None
             else "")) for k, (img, row) in enumerate(zip(images, chosen))])
    items.append(rs.Gallery(f"{names[g]} ({selection.sizes[g]} examples)",
                            gallery_rows))
  return [rs.Section("Prototypes and criticisms (MMD-critic)", items)]
