"""The criticism stage's report: groups, prototypes, criticisms, fragile ones."""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxaudit.report import items as rs

TITLE = "Prototypes and criticisms (MMD-critic)"


def fragile(rows: np.ndarray, distance: np.ndarray) -> np.ndarray:
  """`rows` with an adversarial distance (not NaN: correctly classified),
  by ascending distance, stable."""
  rows = np.asarray(rows)[~np.isnan(distance[rows])]
  return rows[np.argsort(distance[rows], kind="stable")]


def skipped(reason: str) -> list[rs.Section]:
  return [rs.Section(TITLE, [rs.Text(f"Skipped: {reason}.")])]


def sections(selection, present: list[int], names: list[str], ids: np.ndarray,
             distance: np.ndarray | None, group_by: str, notes: list[str],
             fetch: Callable[[np.ndarray], np.ndarray],
             report_groups: int) -> list[rs.Section]:
  """Args:
    selection: the stage's `criticism.GroupSelection`.
    present: indices of the groups with examples.
    names: group names.
    ids: int [N] global ids of the selection's rows.
    distance: float [N] minimal adversarial distances, or None.
    group_by: the grouping used.
    notes: the stage's notes.
    fetch: decodes images by global id.
    report_groups: groups shown.
  """
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
      "values w = mean kernel to the group - mean kernel to the prototypes.")]
  items += [rs.Text(n) for n in notes] + [table]
  shown = sorted(present, key=lambda g: (-len(selection.criticisms[g]), g))
  for g in sorted(shown[:report_groups]):
    gallery_rows = []
    labelled = [("prototype", selection.prototypes[g]),
                ("criticism", selection.criticisms[g])]
    if distance is not None and len(selection.criticisms[g]):
      labelled.append(("most fragile criticism",
                       fragile(selection.criticisms[g], distance)))
    for role, chosen in labelled:
      if not len(chosen):
        continue
      gallery_rows.append([rs.Tile(
          img, f"{role} {k + 1}\nw = {selection.witness[row]:+.4f}"
          + (f"\nadversarial dist. {distance[row]:.3g}" if distance is not None
             else ""))
          for k, (img, row) in enumerate(zip(fetch(ids[chosen]), chosen))])
    items.append(rs.Gallery(f"{names[g]} ({selection.sizes[g]} examples)",
                            gallery_rows))
  return [rs.Section(TITLE, items)]
