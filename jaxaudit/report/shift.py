"""The shift stage's report: accuracy and rectified accuracy against the
severity, calibration and flips under shift, corruption errors, and the
images whose prediction flips at the mildest severity."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaudit.data.pixels import to_uint8
from jaxaudit.report import items as rs

_METRICS = (("top1", "top-1"), ("rectified_top1", "rectified top-1"),
            ("ece", "ECE"), ("flip_rate", "flip rate"))


@dataclasses.dataclass
class Flipped:
  """Images one corruption flips at its mildest severity.

  Attributes:
    corruption, severity: what made them.
    clean, corrupted: float [G, H, W, 3] in [0, 1].
    labels, clean_classes, shifted_classes: int [G] (label -1: unknown).
    class_names: the model's classes.
  """
  corruption: str
  severity: int
  clean: np.ndarray
  corrupted: np.ndarray
  labels: np.ndarray
  clean_classes: np.ndarray
  shifted_classes: np.ndarray
  class_names: tuple[str, ...]


def _headline(summary: dict) -> rs.Table:
  row = {"parameters": summary["parameter_set"],
         "corruptions": len(summary["corruptions"]),
         "severities": ", ".join(map(str, summary["severities"])),
         "examples": summary["num_examples"]}
  for key, label in _METRICS[:3]:
    row[f"clean {label}"] = summary["clean"][key]
    row[f"corrupted {label}"] = float(np.mean(list(
        summary["mean_over_corruptions"][key].values())))
  row["flip rate"] = float(np.mean(list(
      summary["mean_over_corruptions"]["flip_rate"].values())))
  if "mce" in summary:
    row["mCE"] = summary["mce"]
    row["relative mCE"] = summary["relative_mce"]
  return rs.Table([row])


def _per_corruption(summary: dict) -> rs.Table:
  rows = []
  for name in summary["corruptions"]:
    row = {"corruption": name, "family": summary["families"][name],
           "mean error": summary["mean_error"][name]}
    if name in summary.get("ce", {}):
      row["CE"] = summary["ce"][name]
      row["relative CE"] = summary["relative_ce"][name]
    for severity, value in summary["top1"][name].items():
      row[f"top-1 @{severity}"] = value
    for severity, value in summary["rectified_top1"][name].items():
      row[f"rectified @{severity}"] = value
    rows.append(row)
  return rs.Table(rows, title="Per corruption")


def _accepted(summary: dict) -> rs.Table:
  rows = []
  for name in summary["corruptions"]:
    row = {"corruption": name}
    for severity, share in summary["accepted_errors"][name].items():
      count = summary["num_errors"][name][severity]
      row[f"@{severity}"] = (f"{share:.2f} of {count}" if count else "-")
    rows.append(row)
  return rs.Table(rows, title="Errors under shift a person would accept "
                              "(the job's judgement)")


def _plots(summary: dict) -> list[rs.Plot]:
  """Per family, top-1 (and rectified top-1) against the severity; ECE and
  flip rate averaged over the corruptions of each family."""
  severities = [int(s) for s in summary["severities"]]
  by_family: dict[str, list[str]] = {}
  for name in summary["corruptions"]:
    by_family.setdefault(summary["families"][name], []).append(name)
  plots = []
  for family, names in by_family.items():
    series = {}
    for name in names:
      series[name] = (severities, list(summary["top1"][name].values()))
      series[f"{name} (rectified)"] = (
          severities, list(summary["rectified_top1"][name].values()))
    plots.append(rs.Plot(f"{family}: accuracy against severity", series,
                         xlabel="severity", ylabel="top-1"))
  for key, label in _METRICS[2:]:
    series = {family: (severities, [float(np.mean(
        [summary[key][n][str(s)] for n in names])) for s in severities])
              for family, names in by_family.items()}
    if key == "ece":
      series["clean"] = (severities,
                         [summary["clean"]["ece"]] * len(severities))
    plots.append(rs.Plot(f"{label} under shift, mean per family", series,
                         xlabel="severity", ylabel=label))
  return plots


def _gallery(flipped: Flipped) -> rs.Gallery:
  names = flipped.class_names
  tiles = []
  for x, c, y, k, s in zip(flipped.clean, flipped.corrupted, flipped.labels,
                           flipped.clean_classes, flipped.shifted_classes):
    truth = names[y] if y >= 0 else "?"
    tiles += [rs.Tile(to_uint8(x), f"clean: {names[k]}\n(true: {truth})"),
              rs.Tile(to_uint8(c), f"{flipped.corruption} "
                                   f"{flipped.severity}: {names[s]}")]
  rows = [tiles[i:i + 6] for i in range(0, len(tiles), 6)]
  return rs.Gallery(f"{flipped.corruption}: flips at severity "
                    f"{flipped.severity} (clean / corrupted)", rows)


def _natural(natural: dict, clean_top1: float | None) -> rs.Table:
  rows = []
  for label, got in natural.items():
    row = {"set": label, "examples": got["num_examples"],
           "classes": got["classes"], "top-1": got["top1"],
           "rectified top-1": got["rectified_top1"],
           "accepted errors": got["accepted_errors"], "ECE": got["ece"],
           "NLL": got["nll"]}
    if clean_top1 is not None:
      row["top-1 drop from the job's data"] = clean_top1 - got["top1"]
    rows.append(row)
  return rs.Table(rows, title="Natural shift sets (TFDS); a set of 200 "
                              "classes is scored among those 200 logits")


def _corruption_items(summary: dict, flipped: list[Flipped]) -> list[rs.Item]:
  items: list[rs.Item] = [_headline(summary)]
  items += [_per_corruption(summary), _accepted(summary), *_plots(summary)]
  if "family_ce" in summary:
    items.append(rs.Table([{"family": f, "mean CE": v}
                           for f, v in summary["family_ce"].items()],
                          title="Corruption error per family (AlexNet = 1)"))
  items += [_gallery(f) for f in flipped]
  items.append(rs.timing_table(summary["timing"]["corruptions"],
                               "corruption", "Compile and run time"))
  return items


def sections(summary: dict, flipped: list[Flipped]) -> list[rs.Section]:
  """Args: the stage summary; the gallery's flipped images per corruption."""
  items: list[rs.Item] = [rs.Text(note) for note in summary["notes"]]
  if "corruptions" in summary:
    corruption = _corruption_items(summary, flipped)
    items = corruption[:1] + items + corruption[1:]
  if "natural" in summary:
    clean = summary.get("clean", {}).get("top1")
    items.append(_natural(summary["natural"], clean))
  return [rs.Section("Shift: common corruptions and natural shift", items)]
