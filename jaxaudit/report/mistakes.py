"""The mistakes stage's report: plain vs rectified accuracy, error categories
and a gallery per category (the errors a person would forgive, and the rest)."""

from __future__ import annotations

import numpy as np

from jaxaudit.report import items as rs

_ROW = 6  # gallery tiles per row.
_ABOUT = {
    "multi_object": "the prediction is another object in the image (in its "
                    "multi-label set)",
    "near_duplicate_class": "label and prediction are a known duplicate "
                            "class pair",
    "fine_grained": "same superclass or close in WordNet",
    "real_error": "none of the above",
}


def _fmt(interval: list) -> str:
  low, high = interval
  if low is None or not np.isfinite(low):
    return "n/a"
  return f"[{low:.3f}, {high:.3f}]"


def _accuracy_items(summary: dict) -> list[rs.Item]:
  sources = list(summary["rectified_top1"])
  if not sources:
    return []
  rows = [{"truth source": s, "about": summary["truth_sources"].get(s, ""),
           "examples": summary["examples_per_source"][s],
           "excluded (empty set)":
               summary["excluded_empty_label_set"].get(s, 0),
           "top-1": summary["top1"][s],
           "rectified top-1": summary["rectified_top1"][s],
           "95% CI rectified": _fmt(
               summary["confidence_intervals"][s]["rectified_top1"]),
           "95% CI gain": _fmt(summary["confidence_intervals"][s]["gain"])}
          for s in sources]
  plot = rs.Plot("Top-1 accuracy: plain vs rectified", {
      "plain": (sources, [summary["top1"][s] for s in sources]),
      "rectified": (sources, [summary["rectified_top1"][s] for s in sources]),
  }, xlabel="truth source", ylabel="accuracy", kind="bar")
  return [rs.Table(rows, title="Rectified accuracy"), plot]


def _category_items(summary: dict) -> list[rs.Item]:
  shares = summary["error_categories"]
  cats = list(shares)
  rows = [{"category": c, "share of errors": shares[c],
           "95% CI": _fmt(summary["error_category_intervals"][c]),
           "meaning": _ABOUT[c]} for c in cats]
  plot = rs.Plot(f"Top-1 errors by category ({summary['num_errors']} errors)",
                 {"share": (cats, [shares[c] for c in cats])},
                 ylabel="share of errors", kind="bar")
  return [rs.Table(rows, title="Error categories"), plot]


def _gallery(arrays: dict, columns: dict, sets, category: str,
             group_names: list[str], superclass, names, fetch,
             size: int) -> rs.Gallery | None:
  rows = np.flatnonzero(columns["category"] == category)
  rows = rows[np.argsort(-arrays["top1_prob"][rows], kind="stable")][:size]
  if not len(rows):
    return None
  images = fetch(arrays["id"][rows])
  tiles = []
  for image, i in zip(images, rows):
    label, pred = arrays["label"][i], arrays["prediction"][i]
    lines = [f"true: {names[label]}",
             f"predicted: {names[pred]} ({arrays['top1_prob'][i]:.2f})"]
    if columns["wordnet_distance"][i] >= 0:
      lines.append(f"WordNet distance {columns['wordnet_distance'][i]}")
    if superclass is not None and columns["same_superclass"][i]:
      lines.append(f"both {group_names[superclass[label]]}")
    if sets is not None and sets[i]:
      lines.append("accepts: " + ", ".join(names[c] for c in sets[i][:4]))
    tiles.append(rs.Tile(image, "\n".join(lines)))
  title = f"{category}: {_ABOUT[category]}"
  return rs.Gallery(title, [tiles[k:k + _ROW]
                            for k in range(0, len(tiles), _ROW)])


def sections(arrays: dict, columns: dict, sets, summary: dict,
             group_names: list[str], superclass, class_names: tuple[str, ...],
             fetch, gallery_size: int) -> list[rs.Section]:
  """The report section of the mistakes stage.

  Args:
    arrays: `id`, `label`, `prediction`, `top1_prob` [N], sorted by id.
    columns: per-example columns of `mistakes.analyse`, aligned with arrays.
    sets: label sets aligned with arrays, or None.
    summary: the stage summary.
    group_names: superclass names; superclass: int [K] or None.
    class_names: the model's classes.
    fetch: decodes images by global id.
    gallery_size: images per error category.
  """
  items: list[rs.Item] = [rs.Text(n) for n in summary["notes"]]
  items += _accuracy_items(summary) + _category_items(summary)
  if summary["confusions"]:
    items.append(rs.Table(summary["confusions"],
                          title="Most frequent confusions"))
  for category in summary["error_categories"]:
    gallery = _gallery(arrays, columns, sets, category, group_names,
                       superclass, class_names, fetch, gallery_size)
    if gallery is not None:
      items.append(gallery)
  return [rs.Section("Mistakes", items)]
